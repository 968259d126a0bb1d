"""Saving a view: its filters are exactly what its page understands, its name is one line
and its own, and saving it is for who may (docs/product.md#saved-views)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from opsdesk.models import SavedView
from opsdesk.saved_views.pages import PAGES, SavedViewError, query_clean, query_normalise
from opsdesk.saved_views.services import (
    VIEWS_PER_PAGE_MAX,
    saved_view_save,
    saved_view_update,
)
from support.models import Tag
from tests.opsdesk.saved_views.records import INBOX, QUEUE, SAVE, saved_view
from tests.pages import messages_of

pytestmark = pytest.mark.django_db

queue, inbox = PAGES["queue"], PAGES["inbox"]


def stored() -> list[tuple]:
    return list(SavedView.objects.order_by("pk").values_list("owner__username", "page", "name"))


# --- The filters ---------------------------------------------------------------------------


def test_the_filters_are_kept_in_the_pages_order_without_empty_ones_or_defaults(db):
    Tag.objects.create(name="vip")
    raw = "tag=vip&priority=urgent&customer=&status=active&assignee=none&page=3"
    assert query_clean(queue, raw) == "priority=urgent&tag=vip&assignee=none"


def test_a_status_other_than_the_default_is_kept(db):
    assert query_clean(queue, "status=all&priority=low") == "status=all&priority=low"
    assert query_clean(inbox, "state=resolved") == "state=resolved"


def test_values_are_kept_as_typed_and_encoded(db):
    assert query_clean(queue, "customer=%20Acme%20%26%20Co%20") == "customer=Acme+%26+Co"


def test_me_stays_me_for_whoever_opens_the_view(db):
    assert query_clean(queue, "assignee=me") == "assignee=me"
    assert query_clean(inbox, "owner=me&age=7") == "owner=me&age=7"


@pytest.mark.parametrize(
    ("page", "raw", "message"),
    [
        (
            "queue",
            "priority=urgent&sort=oldest",
            "“sort” is not a filter of the triage queue: its filters are status, priority, "
            "tag, assignee, customer, plan, overdue, at_risk.",
        ),
        (
            "inbox",
            "state=open&priority=urgent",
            "“priority” is not a filter of the exceptions inbox: its filters are state, kind, "
            "owner, customer, age, younger, managed, month.",
        ),
        (
            "queue",
            "priority=urgent&priority=low",
            "“priority” is given 2 times: a view keeps one value.",
        ),
        ("queue", "customer=ac%00me", "“customer” is not understood."),
        ("queue", "customer=" + "x" * 201, "“customer” is not understood."),
        (
            "queue",
            "priority=whenever",
            "These filters are not understood by the triage queue: priority: Select a valid "
            "choice. whenever is not one of the available choices.",
        ),
        (
            "queue",
            "tag=no-such-tag",
            "These filters are not understood by the triage queue: tag: Select a valid choice. "
            "That choice is not one of the available choices.",
        ),
        (
            "inbox",
            "month=2026-13",
            "These filters are not understood by the exceptions inbox: month: '2026-13' is not "
            "a month like 2026-10.",
        ),
        ("queue", "overdue=maybe", "“overdue” cannot be “maybe”."),
        (
            "queue",
            "status=active&customer=%20%20&page=2",
            "These are the triage queue as it opens, unfiltered: choose some filters first, "
            "then save them as a view.",
        ),
        (
            "queue",
            "",
            "These are the triage queue as it opens, unfiltered: choose some filters "
            "first, then save them as a view.",
        ),
        (
            "queue",
            "priority=urgent&" + "x" * 1000,
            "A view's filters are at most 1000 characters long.",
        ),
    ],
    ids=[
        "unknown",
        "another page's filter",
        "twice",
        "NUL",
        "too long a value",
        "not a choice",
        "no such tag",
        "not a month",
        "meaningless",
        "only defaults",
        "nothing",
        "too long",
    ],
)
def test_filters_the_page_cannot_apply_are_refused_saying_why(page, raw, message):
    with pytest.raises(SavedViewError) as refused:
        query_clean(PAGES[page], raw)
    assert str(refused.value) == message


def test_an_assignee_who_is_not_active_staff_is_refused(db, manager):
    gone = User.objects.create_user("gone", is_staff=True, is_active=False)
    assert query_clean(queue, f"assignee={manager.pk}") == f"assignee={manager.pk}"
    with pytest.raises(SavedViewError, match="assignee: Select a valid choice"):
        query_clean(queue, f"assignee={gone.pk}")


def test_normalising_the_current_page_ignores_order_empties_and_the_page_number(db):
    from django.http import QueryDict

    shown = QueryDict("page=2&overdue=&tag=vip&status=active&priority=high&junk=1")
    assert query_normalise(queue, shown) == "priority=high&tag=vip"


# --- Saving ------------------------------------------------------------------------------


def test_a_saved_view_is_the_owners_last_with_history_naming_them(agent):
    saved_view(agent, "First", "priority=low", position=4)
    view = saved_view_save(
        by=agent,
        page="queue",
        name="  Urgent,\n unassigned ",
        query="priority=urgent&assignee=none",
    )
    assert (view.owner, view.page, view.name, view.query) == (
        agent,
        "queue",
        "Urgent, unassigned",
        "priority=urgent&assignee=none",
    )
    assert (view.shared, view.position) == (False, 5)
    record = view.history.get()
    assert (record.history_type, record.history_actor) == ("+", "sam")
    assert record.history_change_reason == "saved view saved"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the view a name."),
        (" \n\t", "Give the view a name."),
        ("x" * 61, "A view's name is at most 60 characters long."),
    ],
)
def test_a_name_must_be_given_and_fit(agent, name, message):
    with pytest.raises(SavedViewError) as refused:
        saved_view_save(by=agent, page="queue", name=name, query="priority=low")
    assert str(refused.value) == message
    assert stored() == []


def test_a_name_is_ones_own_once_per_page_whatever_its_case(agent, ops_lead):
    saved_view(agent, "Urgent", "priority=urgent")
    with pytest.raises(SavedViewError) as refused:
        saved_view_save(by=agent, page="queue", name="URGENT", query="priority=high")
    assert str(refused.value) == (
        "You have a view named “URGENT” of the triage queue already: pick another name."
    )
    # Another page, another person: their own names.
    saved_view_save(by=agent, page="inbox", name="urgent", query="state=open")
    saved_view_save(by=ops_lead, page="queue", name="Urgent", query="priority=urgent")
    assert stored() == [
        ("sam", "queue", "Urgent"),
        ("sam", "inbox", "urgent"),
        ("olga", "queue", "Urgent"),
    ]


def test_renaming_to_a_name_taken_is_refused_and_changes_nothing(agent):
    saved_view(agent, "Urgent", "priority=urgent")
    other = saved_view(agent, "Low", "priority=low")
    with pytest.raises(SavedViewError, match="already"):
        saved_view_update(view=other, by=agent, name="urgent")
    other.refresh_from_db()
    assert other.name == "Low"
    assert other.history.count() == 1


def test_one_person_keeps_at_most_30_views_of_a_page(agent):
    for number in range(VIEWS_PER_PAGE_MAX):
        saved_view(agent, f"View {number}", f"customer=c{number}")
    with pytest.raises(SavedViewError) as refused:
        saved_view_save(by=agent, page="queue", name="One more", query="priority=low")
    assert str(refused.value) == "You keep 30 views of the triage queue already: delete one first."
    saved_view_save(by=agent, page="inbox", name="One more", query="state=open")


def test_a_page_that_is_not_one_is_refused(agent):
    with pytest.raises(SavedViewError, match="“tickets” is not a page views are saved of"):
        saved_view_save(by=agent, page="tickets", name="All", query="priority=low")


@pytest.mark.parametrize("who", ["outsider", "inactive"])
def test_who_is_not_active_staff_saves_nothing(who, outsider, ops_lead):
    if who == "inactive":
        ops_lead.is_active = False
        ops_lead.save()
    person = outsider if who == "outsider" else ops_lead
    with pytest.raises(SavedViewError, match="Only active staff keep saved views"):
        saved_view_save(by=person, page="queue", name="Mine", query="priority=low")
    assert stored() == []


def test_a_staff_member_without_the_permission_saves_nothing(db):
    from tests.personas import staff_user

    nobody = staff_user("nina")  # staff, in no group
    with pytest.raises(SavedViewError) as refused:
        saved_view_save(by=nobody, page="queue", name="Mine", query="priority=low")
    assert str(refused.value) == (
        "You may not do this: it needs the permission opsdesk.add_savedview."
    )


# --- Sharing: for who works the page (and ops leads) -----------------------------------------


@pytest.mark.parametrize(
    ("persona", "queue_shared", "inbox_shared"),
    [
        ("agent", True, False),  # support works tickets
        ("manager", False, False),  # account managers read both, work neither
        ("ops_lead", True, True),  # ops leads work cases and look after shared views
        ("superuser", True, True),
    ],
)
def test_who_may_share_a_view_of_each_page(request, persona, queue_shared, inbox_shared):
    person = request.getfixturevalue(persona)
    for page, query, allowed in (
        ("queue", "priority=urgent", queue_shared),
        ("inbox", "state=open", inbox_shared),
    ):
        if allowed:
            view = saved_view_save(by=person, page=page, name="Team", query=query, shared=True)
            assert view.shared
        else:
            with pytest.raises(SavedViewError, match="shares views of it: save it for yourself"):
                saved_view_save(by=person, page=page, name="Team", query=query, shared=True)
            # For themselves, they may.
            assert not saved_view_save(by=person, page=page, name="Mine", query=query).shared


def test_a_manager_cannot_share_a_view_by_changing_it(manager):
    view = saved_view(manager, "Mine", "priority=urgent")
    with pytest.raises(SavedViewError, match="Only who works the triage queue shares views of it"):
        saved_view_update(view=view, by=manager, shared=True)
    view.refresh_from_db()
    assert not view.shared


def test_changing_nothing_writes_nothing(agent):
    view = saved_view(agent, "Urgent", "priority=urgent")
    assert saved_view_update(view=view, by=agent, name="Urgent", query="priority=urgent") == []
    assert view.history.count() == 1


def test_a_change_says_what_changed_and_leaves_history(agent):
    view = saved_view(agent, "Urgent", "priority=urgent")
    done = saved_view_update(
        view=view,
        by=agent,
        name="Hot",
        query="status=active&priority=high",
        shared=True,
        position=3,
    )
    assert done == ["renamed", "filters changed", "shared", "moved"]
    view.refresh_from_db()
    assert (view.name, view.query, view.shared, view.position) == ("Hot", "priority=high", True, 3)
    assert view.history.first().history_change_reason == "saved view changed"


# --- "Save this view" on the page ------------------------------------------------------


def test_save_this_view_opens_the_saved_view_and_says_where_it_is(client, agent):
    client.force_login(agent)
    response = client.post(
        SAVE,
        {
            "page": "queue",
            "query": "priority=urgent&assignee=none",
            "name": "Urgent, nobody on it",
            "shared": "on",
            "next": QUEUE + "?priority=urgent&assignee=none",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == QUEUE + "?priority=urgent&assignee=none"
    assert messages_of(response) == [
        "Saved the view “Urgent, nobody on it” for everyone who sees this page: it is in the "
        "sidebar under Triage queue."
    ]
    assert list(SavedView.objects.values_list("name", "shared")) == [("Urgent, nobody on it", True)]


def test_a_refused_save_goes_back_to_the_page_as_it_was_and_saves_nothing(client, manager):
    client.force_login(manager)
    back = INBOX + "?kind=missing_invoice"
    response = client.post(
        SAVE,
        {"page": "inbox", "query": "kind=missing_invoice&sort=1", "name": "Billing", "next": back},
    )
    assert response.status_code == 302
    assert response["Location"] == back
    assert messages_of(response) == [
        "Not saved. “sort” is not a filter of the exceptions inbox: its filters are state, "
        "kind, owner, customer, age, younger, managed, month."
    ]
    assert stored() == []


def test_a_save_never_sends_the_person_off_the_site(client, agent):
    client.force_login(agent)
    response = client.post(
        SAVE, {"page": "queue", "query": "", "name": "x", "next": "https://evil.example/"}
    )
    assert response["Location"] == QUEUE
    assert stored() == []
