"""Who sees which saved views, and who changes or deletes them: a person sees their own
and the shared ones; only the owner, or an ops lead (or a superuser) for a shared one,
changes or deletes a view; nobody else even sees a personal view, a superuser included."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opsdesk.models import SavedView
from opsdesk.saved_views.selectors import saved_views_of_page, saved_views_visible
from opsdesk.saved_views.services import SavedViewError, saved_view_delete, saved_view_update
from tests.opsdesk.saved_views.records import QUEUE, SIDEBAR, VIEWS, saved_view, sidebar_entries

pytestmark = pytest.mark.django_db


@pytest.fixture
def views(agent, manager, ops_lead):
    """Sam's personal and shared queue views, Alice's personal one, Olga's shared inbox one."""
    return {
        "sam's own": saved_view(agent, "Sam's own", "assignee=me"),
        "sam's shared": saved_view(agent, "Urgent", "priority=urgent", shared=True),
        "alice's own": saved_view(manager, "My customers", "customer=acme"),
        "olga's shared": saved_view(
            ops_lead, "Billing", "kind=missing_invoice", page="inbox", shared=True
        ),
    }


SEES = {
    "agent": ["sam's own", "sam's shared", "olga's shared"],
    "manager": ["sam's shared", "alice's own", "olga's shared"],
    "ops_lead": ["sam's shared", "olga's shared"],
    "superuser": ["sam's shared", "olga's shared"],
}


def names(views, keys):
    return sorted(views[key].name for key in keys)


@pytest.mark.parametrize("persona", SEES)
def test_each_person_sees_their_own_views_and_the_shared_ones(request, client, views, persona):
    person = request.getfixturevalue(persona)
    assert sorted(v.name for v in saved_views_visible(user=person)) == names(views, SEES[persona])

    client.force_login(person)
    listed = client.get(VIEWS).context["cl"].result_list
    assert sorted(v.name for v in listed) == names(views, SEES[persona])
    sidebar = [name for _, name, _ in sidebar_entries(client.get(SIDEBAR))]
    assert sorted(name.replace("&#x27;", "'") for name in sidebar) == names(views, SEES[persona])


def test_own_views_come_first_in_the_owners_order(agent, ops_lead, views):
    saved_view(ops_lead, "Olga's queue", "priority=high", shared=True, position=0)
    saved_view(agent, "Late", "overdue=true", position=0)
    listed = [v.name for v in saved_views_of_page(user=agent, page="queue")]
    assert listed == ["Late", "Sam's own", "Urgent", "Olga's queue"]


def test_another_persons_personal_view_is_not_found_even_by_a_superuser(client, superuser, views):
    client.force_login(superuser)
    view = views["alice's own"]
    for page in ("change", "delete"):
        response = client.get(reverse(f"admin:opsdesk_savedview_{page}", args=[view.pk]))
        assert response.status_code == 302, page
        assert response["Location"] == reverse("admin:index")
    history = reverse("admin:opsdesk_savedview_history", args=[view.pk])
    assert client.get(history).status_code == 403
    delete = reverse("admin:opsdesk_savedview_delete", args=[view.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert SavedView.objects.filter(pk=view.pk).exists()


@pytest.mark.parametrize(
    ("persona", "may"),
    [("agent", True), ("manager", False), ("ops_lead", True), ("superuser", True)],
)
def test_a_shared_view_is_changed_by_its_owner_or_an_ops_lead(request, client, views, persona, may):
    person = request.getfixturevalue(persona)
    view = views["sam's shared"]
    client.force_login(person)
    url = reverse("admin:opsdesk_savedview_change", args=[view.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert ('name="name"' in page.content.decode()) is may
    response = client.post(
        url, {"name": "Renamed", "query": "priority=urgent", "shared": "on", "position": "0"}
    )
    view.refresh_from_db()
    if may:
        assert response.status_code == 302
        assert view.name == "Renamed"
        assert view.history.first().history_actor == person.username
    else:
        assert response.status_code == 403
        assert view.name == "Urgent"
        assert view.history.count() == 1


@pytest.mark.parametrize(
    ("persona", "may"),
    [("agent", True), ("manager", False), ("ops_lead", True), ("superuser", True)],
)
def test_a_shared_view_is_deleted_by_its_owner_or_an_ops_lead(request, client, views, persona, may):
    person = request.getfixturevalue(persona)
    view = views["sam's shared"]
    client.force_login(person)
    response = client.post(
        reverse("admin:opsdesk_savedview_delete", args=[view.pk]), {"post": "yes"}
    )
    assert response.status_code == (302 if may else 403)
    assert SavedView.objects.filter(pk=view.pk).exists() is not may
    if may:
        record = view.history.first()
        assert (record.history_type, record.history_actor) == ("-", person.username)
        assert record.history_change_reason == "saved view deleted"


def test_the_services_refuse_what_the_pages_do_not_offer(manager, ops_lead, views):
    with pytest.raises(SavedViewError, match="Only its owner or an ops lead changes a shared view"):
        saved_view_update(view=views["sam's shared"], by=manager, name="Mine now")
    with pytest.raises(SavedViewError, match="Only its owner changes a personal view"):
        saved_view_delete(view=views["sam's own"], by=ops_lead)
    assert SavedView.objects.count() == 4
    assert SavedView.objects.get(pk=views["sam's shared"].pk).name == "Urgent"


def test_a_bulk_delete_with_one_view_not_ones_own_deletes_none(client, manager, views):
    mine, theirs = views["alice's own"], views["sam's shared"]
    client.force_login(manager)
    response = client.post(
        VIEWS,
        {"action": "delete_selected", "_selected_action": [mine.pk, theirs.pk], "post": "yes"},
    )
    assert response.status_code in (200, 403)
    assert SavedView.objects.count() == 4


def test_a_bulk_delete_of_ones_own_goes_through_the_service(client, agent, views):
    client.force_login(agent)
    selected = [views["sam's own"].pk, views["sam's shared"].pk]
    response = client.post(
        VIEWS, {"action": "delete_selected", "_selected_action": selected, "post": "yes"}
    )
    assert response.status_code == 302
    assert set(SavedView.objects.values_list("name", flat=True)) == {"My customers", "Billing"}
    deleted = SavedView.history.filter(history_type="-")
    assert sorted(deleted.values_list("history_actor", "history_change_reason")) == [
        ("sam", "saved view deleted"),
        ("sam", "saved view deleted"),
    ]


def test_no_longer_shared_a_view_leaves_the_others_lists(client, agent, manager, views):
    saved_view_update(view=views["sam's shared"], by=agent, shared=False)
    client.force_login(manager)
    assert "Urgent" not in [name for _, name, _ in sidebar_entries(client.get(SIDEBAR))]
    assert "Urgent</a>" not in client.get(QUEUE).content.decode()
    assert "My customers</a>" in client.get(QUEUE).content.decode()


def test_the_change_page_checks_the_filters_against_the_page(client, agent, views):
    view = views["sam's own"]
    client.force_login(agent)
    url = reverse("admin:opsdesk_savedview_change", args=[view.pk])
    response = client.post(
        url, {"name": "Sam's own", "query": "assignee=me&sort=new", "position": "0"}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "query": [
            "“sort” is not a filter of the triage queue: its filters are status, priority, tag, "
            "assignee, customer, plan, overdue, at_risk."
        ]
    }
    view.refresh_from_db()
    assert view.query == "assignee=me"


def test_a_manager_is_told_on_the_change_page_that_sharing_is_not_theirs(client, manager, views):
    view = views["alice's own"]
    client.force_login(manager)
    url = reverse("admin:opsdesk_savedview_change", args=[view.pk])
    response = client.post(
        url, {"name": "My customers", "query": "customer=acme", "shared": "on", "position": "0"}
    )
    assert response.context["adminform"].form.errors == {
        "shared": ["Only who works the triage queue shares views of it."]
    }
    view.refresh_from_db()
    assert not view.shared


def test_views_are_saved_from_their_page_not_added_here(client, superuser):
    client.force_login(superuser)
    assert client.get(reverse("admin:opsdesk_savedview_add")).status_code == 403
