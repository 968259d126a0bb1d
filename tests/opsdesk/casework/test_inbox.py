"""The ops exception inbox and a case's pages, through the test client, per role."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from audit.context import acting_as
from customers.models import Order
from support.models import Case
from tests import builders
from tests.opsdesk.casework.cases import (
    BULK,
    INBOX,
    NOTE,
    everything,
    make_case,
    resolve_url,
    shown,
)
from tests.pages import messages_of

pytestmark = pytest.mark.django_db


# --- The list -----------------------------------------------------------------------------


@pytest.fixture
def spread(ops_lead, superuser, customer, globex):
    """One case per thing a filter can pick out; ages in days."""
    make_case("redemption", days_old=0.5, kind=Case.Kind.PROBLEM_REDEMPTION)
    make_case("acknowledged", days_old=2, state=Case.State.ACKNOWLEDGED)
    make_case("resolved", days_old=10, state=Case.State.RESOLVED)
    make_case("waived", days_old=40, state=Case.State.WAIVED)
    make_case("olga's", days_old=4, owner=ops_lead)
    make_case("root's", days_old=8, owner=superuser)
    make_case("acme's", days_old=1.5, customer=customer)
    make_case("globex's", days_old=31, customer=globex)


BEING_WORKED = ["globex's", "root's", "olga's", "acknowledged", "acme's", "redemption"]


def test_the_inbox_shows_the_cases_being_worked_oldest_first(client, ops_lead, spread):
    client.force_login(ops_lead)

    response = client.get(INBOX)

    assert response.status_code == 200
    assert shown(response) == BEING_WORKED
    assert response.context["filterset"].form.cleaned_data["state"] == "active"


def test_cases_opened_at_the_same_moment_keep_the_order_they_were_raised_in(client, ops_lead):
    at = timezone.now() - dt.timedelta(hours=3)
    for summary in ("first", "second", "third"):
        make_case(summary, opened_at=at)
    client.force_login(ops_lead)
    assert shown(client.get(INBOX)) == ["first", "second", "third"]


def test_each_row_shows_how_long_the_case_has_waited(client, ops_lead):
    make_case("a week and more", days_old=8.2)
    make_case("two days", days_old=2.5)
    make_case("hours", days_old=0.25)
    client.force_login(ops_lead)

    response = client.get(INBOX)

    assert [(case.summary, age, tone) for case, age, tone, _ in response.context["rows"]] == [
        ("a week and more", "1\xa0week", "overdue"),
        ("two days", "2\xa0days", "soon"),
        ("hours", "6\xa0hours", "ok"),
    ]
    assert 'class="od-due od-due-overdue" data-testid="case-age">1\xa0week<' in (
        response.content.decode()
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"kind": "problem_redemption"}, ["redemption"]),
        ({"kind": "failed_fulfilment"}, [s for s in BEING_WORKED if s != "redemption"]),
        ({"state": "open"}, [s for s in BEING_WORKED if s != "acknowledged"]),
        ({"state": "acknowledged"}, ["acknowledged"]),
        ({"state": "resolved"}, ["resolved"]),
        ({"state": "waived"}, ["waived"]),
        (
            {"state": "all"},
            ["waived", "globex's", "resolved", "root's", *BEING_WORKED[2:]],
        ),
        ({"owner": "me"}, ["olga's"]),
        ({"owner": "none"}, [s for s in BEING_WORKED if s not in {"olga's", "root's"}]),
        ({"owner": "root"}, ["root's"]),
        ({"customer": "acme"}, ["acme's"]),
        ({"customer": "CORP"}, ["acme's"]),
        ({"customer": "GLOBEX-1"}, ["globex's"]),
        ({"customer": "lobe"}, ["globex's"]),  # the name contains it
        ({"customer": "acme-7f"}, []),  # a tenant id matches whole, not in part
        ({"customer": "  "}, BEING_WORKED),
        ({"age": "1"}, ["globex's", "root's", "olga's", "acknowledged", "acme's"]),
        ({"age": "3"}, ["globex's", "root's", "olga's"]),
        ({"age": "7"}, ["globex's", "root's"]),
        ({"age": "30"}, ["globex's"]),
        ({"age": "30", "state": "all"}, ["waived", "globex's"]),
        ({"kind": "failed_fulfilment", "owner": "none", "age": "3"}, ["globex's"]),
    ],
)
def test_each_filter_narrows_the_inbox_exactly(
    client, ops_lead, superuser, spread, params, expected
):
    if params.get("owner") == "root":
        params = {**params, "owner": str(superuser.pk)}
    client.force_login(ops_lead)

    response = client.get(INBOX, params)

    assert response.status_code == 200
    assert shown(response) == expected
    assert messages_of(response) == []


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "nonsense"},
        {"state": "closed"},
        {"owner": "99999"},
        {"owner": "sam"},  # a person who may not own cases is no choice
        {"age": "2"},
        {"age": "-1"},
    ],
)
def test_a_filter_value_that_means_nothing_is_a_message_not_an_error(
    client, ops_lead, agent, spread, params
):
    if params.get("owner") == "sam":
        params = {"owner": str(agent.pk)}
    client.force_login(ops_lead)

    response = client.get(INBOX, params)

    assert response.status_code == 200
    [message] = messages_of(response)
    assert message.startswith("Some filters were not understood, so nothing is listed: ")
    assert f"{next(iter(params))}: " in message
    assert shown(response) == []


def test_the_inbox_costs_the_same_for_3_cases_and_30(
    client, ops_lead, superuser, customer, globex, django_assert_num_queries
):
    client.force_login(ops_lead)
    order_type = ContentType.objects.get_for_model(Order)

    def add(n: int, start: int) -> None:
        with acting_as("test:fixture"):
            order = builders.order(external_id=f"ord_{start}", tenant_id="x", sku="X", amount=1)
        for i in range(start, start + n):
            make_case(
                f"case {i}",
                days_old=i,
                kind=Case.Kind.PROBLEM_REDEMPTION if i % 2 else Case.Kind.FAILED_FULFILMENT,
                customer=customer if i % 3 else globex,
                owner=(ops_lead, superuser, None)[i % 3],
                state=Case.State.ACKNOWLEDGED if i % 4 == 0 else Case.State.OPEN,
                subject_id=str(order.pk),
                subject_type_id=order_type.pk,
            )

    add(3, 0)
    client.get(INBOX)  # warm the per-process caches (content types, permissions)
    # 7, and the person's saved views of the inbox (opsdesk.saved_views).
    with django_assert_num_queries(8):
        response = client.get(INBOX)
    assert len(response.context["rows"]) == 3
    add(27, 3)
    with django_assert_num_queries(8):
        response = client.get(INBOX)
    assert len(response.context["rows"]) == 30


def test_the_inbox_page_reads_the_open_cases_in_its_order_from_an_index(client, ops_lead):
    """Its default view lists open and acknowledged cases oldest first: a partial index in
    that order lets PostgreSQL read one page of entries instead of sorting every open
    case (and joining each to its customer) at scale."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    make_case("waiting", days_old=2)
    client.force_login(ops_lead)
    with CaptureQueriesContext(connection) as captured:
        client.get(INBOX)
    (page,) = [
        q["sql"]
        for q in captured
        if q["sql"].startswith('SELECT "support_case"."id"') and "ORDER BY" in q["sql"]
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        # An empty test table is always scanned or sorted; leave PostgreSQL neither.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + page)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using case_open_queue on support_case" in plan, plan
    assert " Sort " not in plan and "Sort Key" not in plan, plan


def test_an_ops_lead_sees_the_bulk_controls_and_the_resolutions(
    client, ops_lead, failed_order_case
):
    case = failed_order_case
    client.force_login(ops_lead)

    html = client.get(INBOX).content.decode()

    assert 'data-testid="inbox-bulk"' in html
    assert f'name="cases" value="{case.pk}"' in html
    assert f'<option value="{ops_lead.pk}">Olga (me)</option>' in html
    for url in (
        resolve_url(case, "fulfil"),
        resolve_url(case, "refund"),
        reverse("admin:support_case_resolve_note", args=[case.pk]),
        reverse("admin:support_case_waive", args=[case.pk]),
    ):
        assert f'href="{url}"' in html


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_people_who_only_view_cases_see_the_inbox_without_its_controls(
    client, request, failed_order_case, persona
):
    client.force_login(request.getfixturevalue(persona))

    response = client.get(INBOX)

    assert response.status_code == 200
    assert shown(response) == [failed_order_case.summary]
    html = response.content.decode()
    assert 'data-testid="inbox-bulk"' not in html
    assert 'name="cases"' not in html
    assert "/resolve/" not in html
    assert "/waive/" not in html


def test_an_outsider_is_sent_to_sign_in(client, outsider, failed_order_case):
    client.force_login(outsider)
    response = client.get(INBOX)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_who_may_not_view_cases_get_403(client, failed_order_case):
    client.force_login(User.objects.create_user(username="temp", is_staff=True))
    assert client.get(INBOX).status_code == 403


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_people_who_only_view_cases_get_403_on_every_action(
    client, request, failed_order_case, customer, product, persona
):
    case = failed_order_case
    client.force_login(request.getfixturevalue(persona))
    before = everything()

    posts = {
        BULK: {"action": "acknowledge", "cases": [case.pk]},
        resolve_url(case, "fulfil"): {"customer": customer.pk, "product": product.pk, "note": NOTE},
        resolve_url(case, "refund"): {"reference": "cn_1", "note": NOTE},
        reverse("admin:support_case_resolve_note", args=[case.pk]): {"note": NOTE},
        reverse("admin:support_case_waive", args=[case.pk]): {"note": NOTE},
        reverse("admin:support_case_acknowledge", args=[case.pk]): {},
    }
    for url, data in posts.items():
        assert client.post(url, data).status_code == 403, url
    for url in list(posts)[1:5]:
        assert client.get(url).status_code == 403, url
    assert everything() == before


# --- Bulk actions -------------------------------------------------------------------------


def test_bulk_acknowledge_takes_the_selected_open_cases_and_keeps_the_filters(
    client, ops_lead, superuser
):
    unowned = make_case("unowned", days_old=3)
    roots = make_case("root's", days_old=2, owner=superuser)
    acknowledged = make_case("acknowledged", days_old=1, state=Case.State.ACKNOWLEDGED)
    resolved = make_case("resolved", state=Case.State.RESOLVED)
    untouched = make_case("not selected")
    client.force_login(ops_lead)
    back = f"{INBOX}?kind=failed_fulfilment&owner=none"

    response = client.post(
        BULK,
        {
            "action": "acknowledge",
            "cases": [unowned.pk, roots.pk, acknowledged.pk, resolved.pk],
            "next": back,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == back
    assert messages_of(response) == [
        "2 case(s) acknowledged; 2 left as they were (already so, or closed)."
    ]
    states = dict(Case.objects.values_list("summary", "state"))
    owners = dict(Case.objects.values_list("summary", "owner_id"))
    assert states == {
        "unowned": "acknowledged",
        "root's": "acknowledged",
        "acknowledged": "acknowledged",
        "resolved": "resolved",
        "not selected": "open",
    }
    assert (owners["unowned"], owners["root's"], owners["not selected"]) == (
        ops_lead.pk,
        superuser.pk,
        None,
    )
    assert {r.history_actor for r in Case.history.filter(history_type="~")} == {"olga"}
    for case in (acknowledged, resolved, untouched):
        assert case.history.count() == 1


def test_bulk_assign_gives_the_selected_cases_still_being_worked_to_the_person_chosen(
    client, ops_lead, superuser
):
    first = make_case("first", days_old=2)
    second = make_case("second", days_old=1, state=Case.State.ACKNOWLEDGED, owner=ops_lead)
    closed = make_case("closed", state=Case.State.WAIVED)
    client.force_login(ops_lead)

    response = client.post(
        BULK,
        {
            "action": "assign",
            "owner": superuser.pk,
            "cases": [first.pk, second.pk, closed.pk],
            "next": f"{INBOX}?state=all",
        },
    )

    assert response["Location"] == f"{INBOX}?state=all"
    assert messages_of(response) == [
        "2 case(s) assigned to Root; 1 left as they were (already so, or closed)."
    ]
    assert dict(Case.objects.values_list("summary", "owner_id")) == {
        "first": superuser.pk,
        "second": superuser.pk,
        "closed": None,
    }
    latest = first.history.latest()
    assert (latest.history_actor, latest.history_change_reason) == ("olga", "assigned to Root")


@pytest.mark.parametrize("owner", ["", "sam", "99999"])
def test_bulk_assign_to_nobody_or_to_someone_who_may_not_own_cases_changes_nothing(
    client, ops_lead, agent, owner
):
    case = make_case("open")
    client.force_login(ops_lead)
    before = everything()

    response = client.post(
        BULK,
        {
            "action": "assign",
            "owner": str(agent.pk) if owner == "sam" else owner,
            "cases": [case.pk],
            "next": INBOX,
        },
    )

    assert response["Location"] == INBOX
    assert messages_of(response) == ["Nothing changed. Pick who the cases go to."]
    assert everything() == before


@pytest.mark.parametrize("action", ["acknowledge", "assign"])
def test_bulk_with_nothing_selected_says_to_select_first(client, ops_lead, action):
    make_case("open")
    client.force_login(ops_lead)
    before = everything()
    back = f"{INBOX}?kind=problem_redemption"

    response = client.post(BULK, {"action": action, "owner": ops_lead.pk, "next": back})

    assert response["Location"] == back
    assert messages_of(response) == [
        "Nothing changed. cases: Select the cases first (the boxes on the left)."
    ]
    assert everything() == before


def test_bulk_goes_back_to_the_inbox_when_next_points_elsewhere(client, ops_lead):
    case = make_case("open")
    client.force_login(ops_lead)

    response = client.post(
        BULK, {"action": "acknowledge", "cases": [case.pk], "next": "https://evil.example/"}
    )

    assert response["Location"] == INBOX
    assert messages_of(response) == ["1 case(s) acknowledged."]


def test_bulk_is_post_only(client, ops_lead):
    client.force_login(ops_lead)
    assert client.get(BULK).status_code == 405
