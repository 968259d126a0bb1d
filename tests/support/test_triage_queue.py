"""The triage queue: its order, its filters, its one-click actions and what they record."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.context import acting_as
from customers.models import Contract, Customer
from support import sla
from support.models import Tag, Ticket
from support.ticket_sla import ticket_sla_refresh
from tests import builders
from tests.pages import messages_of
from tests.records import active_contract
from tests.sla_policies import business_hours, first_response
from tests.support.queue_pages import QUEUE, act_url, make_ticket, shown

pytestmark = pytest.mark.django_db


@pytest.fixture
def starter(db) -> Customer:
    globex = builders.customer(external_id="globex-1", name="Globex")
    active_contract(globex, plan=Contract.Plan.STARTER, seats=5)
    return globex


def test_at_risk_first_by_priority_then_the_nearest_deadline_then_the_rest(client, agent, manager):
    """About to breach: less than a quarter of the target left (each clock here has 8 h,
    so its warning is 2 h before its deadline); who it is assigned to does not matter."""
    client.force_login(agent)
    now = timezone.now()
    make_ticket("low, overdue 2h", due_in_hours=-2, priority="low")
    make_ticket("high, due in 8h", due_in_hours=8, priority="high")
    make_ticket("answered", due_in_hours=-30, first_responded_at=now)
    make_ticket("normal, overdue 1h", due_in_hours=-1, assignee=manager)
    make_ticket("waiting on the customer", status=Ticket.Status.PENDING)
    make_ticket("urgent, due in 20h", due_in_hours=20, priority="urgent")
    make_ticket("urgent, due in 1h", due_in_hours=1, priority="urgent")
    make_ticket("no deadline", due_in_hours=None)
    make_ticket("normal, due in 3h", due_in_hours=3, assignee=agent)

    response = client.get(QUEUE)

    assert response.status_code == 200
    assert shown(response) == [
        # At risk, urgent to low.
        "urgent, due in 1h",
        "normal, overdue 1h",
        "low, overdue 2h",
        # Running, nearest deadline first.
        "normal, due in 3h",
        "high, due in 8h",
        "urgent, due in 20h",
        # No clock running: oldest first.
        "answered",
        "waiting on the customer",
        "no deadline",
    ]


def test_my_tickets_are_in_the_same_order(client, agent):
    client.force_login(agent)
    make_ticket("mine, due in 5h", due_in_hours=5, assignee=agent)
    make_ticket("mine, low, overdue", due_in_hours=-1, priority="low", assignee=agent)
    make_ticket("mine, urgent, due in 1h", due_in_hours=1, priority="urgent", assignee=agent)
    make_ticket("unassigned, overdue", due_in_hours=-3)

    assert shown(client.get(QUEUE, {"assignee": "me"})) == [
        "mine, urgent, due in 1h",
        "mine, low, overdue",
        "mine, due in 5h",
    ]


def test_the_clock_that_matters_is_shown_and_coloured(client, agent):
    client.force_login(agent)
    make_ticket("late", due_in_hours=-3.5)
    make_ticket("soon", due_in_hours=0.5)
    make_ticket("later", due_in_hours=5.5)
    make_ticket("waiting", due_in_hours=2, status=Ticket.Status.PENDING)
    with acting_as("test:fixture"):
        now = timezone.now()
        builders.ticket(
            subject="next",
            first_response_due_at=now - dt.timedelta(hours=2),
            first_responded_at=now - dt.timedelta(hours=3),
            next_response_due_at=now + dt.timedelta(minutes=35, seconds=30),
            next_response_warn_at=now + dt.timedelta(hours=1),
            resolution_due_at=now + dt.timedelta(days=3, hours=1),
            sla_due_at=now + dt.timedelta(minutes=35, seconds=30),
            sla_warn_at=now + dt.timedelta(hours=1),
        )

    response = client.get(QUEUE)

    states = {ticket.subject: (text, tone) for ticket, text, tone in response.context["rows"]}
    assert states == {
        "late": ("first response overdue by 3 h 30 min", "overdue"),
        "soon": ("first response in 29 min", "soon"),
        "later": ("first response in 5 h 29 min", "ok"),
        "waiting": ("paused: waiting on customer", "paused"),
        "next": ("next response in 35 min", "ok"),
    }
    html = response.content.decode()
    assert (
        'class="od-due od-due-overdue" data-testid="time-left">'
        "first response overdue by 3 h 30 min<"
    ) in html


def test_solved_and_closed_tickets_leave_the_queue_unless_asked_for(client, agent):
    client.force_login(agent)
    make_ticket("open")
    make_ticket("waiting", status=Ticket.Status.PENDING)
    make_ticket("solved", status=Ticket.Status.SOLVED)
    make_ticket("closed", status=Ticket.Status.CLOSED)

    assert sorted(shown(client.get(QUEUE))) == ["open", "waiting"]
    assert sorted(shown(client.get(QUEUE, {"status": "all"}))) == [
        "closed",
        "open",
        "solved",
        "waiting",
    ]
    assert shown(client.get(QUEUE, {"status": "solved"})) == ["solved"]


@pytest.fixture
def spread(agent, manager, customer, starter):
    """One ticket per thing a filter can pick out."""
    vip = Tag.objects.create(name="vip")
    make_ticket("urgent one", priority=Ticket.Priority.URGENT)
    make_ticket("vip one").tags.add(vip)
    make_ticket("sam's", assignee=agent)
    make_ticket("alice's", assignee=manager)
    make_ticket("acme's", customer=customer)
    make_ticket("globex's", customer=starter)
    make_ticket("overdue one", due_in_hours=-1)
    make_ticket("unknown tenant's", tenant_id="ghost-42")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"priority": "urgent"}, ["urgent one"]),
        ({"tag": "vip"}, ["vip one"]),
        ({"assignee": "me"}, ["sam's"]),
        ({"assignee": "none"}, "all but sam's and alice's"),
        ({"customer": "acme"}, ["acme's"]),
        ({"customer": "GLOBEX-1"}, ["globex's"]),
        ({"customer": "ghost-42"}, ["unknown tenant's"]),
        ({"plan": "growth"}, ["acme's"]),
        ({"plan": "starter"}, ["globex's"]),
        ({"overdue": "true"}, ["overdue one"]),
        ({"overdue": "false"}, "all but overdue one"),
        ({"priority": "urgent", "overdue": "true"}, []),
    ],
)
def test_each_filter_picks_its_tickets(client, agent, spread, params, expected):
    client.force_login(agent)
    everything = set(shown(client.get(QUEUE)))
    if expected == "all but sam's and alice's":
        expected = everything - {"sam's", "alice's"}
    elif expected == "all but overdue one":
        expected = everything - {"overdue one"}
    assert set(shown(client.get(QUEUE, params))) == set(expected)


def test_filter_by_a_named_assignee(client, agent, manager, spread):
    client.force_login(agent)
    assert shown(client.get(QUEUE, {"assignee": str(manager.pk)})) == ["alice's"]


def test_a_filter_value_that_means_nothing_is_a_message_not_an_error(client, agent, spread):
    client.force_login(agent)
    response = client.get(QUEUE, {"priority": "whenever", "tag": "no-such-tag"})
    assert response.status_code == 200
    assert shown(response) == []
    [message] = messages_of(response)
    assert message.startswith("Some filters were not understood, so nothing is listed: ")
    assert "priority: Select a valid choice. whenever is not one of" in message


def test_the_queue_costs_the_same_for_3_tickets_and_30(client, agent, customer, starter):
    client.force_login(agent)
    vip = Tag.objects.create(name="vip")

    def add(n):
        for i in range(n):
            ticket = make_ticket(f"t{i}", customer=customer if i % 2 else starter)
            ticket.tags.add(vip)

    def count():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(QUEUE).status_code == 200
        return len(captured)

    add(3)
    client.get(QUEUE)  # warm per-process caches
    small = count()
    add(27)
    # The count, the page's ids in order, its rows, their tags: one more than before the
    # risk order (which reads the ids from its indexes, then the rows); and the person's
    # saved views of the queue (opsdesk.saved_views).
    assert count() == small == 12


def test_assign_to_me_records_who_did_it(client, agent, manager):
    client.force_login(agent)
    ticket = make_ticket("help", assignee=manager)

    response = client.post(act_url(ticket), {"action": "assign_me", "next": QUEUE + "?tag=vip"})

    assert response.status_code == 302
    assert response["Location"] == QUEUE + "?tag=vip"
    ticket.refresh_from_db()
    assert ticket.assignee == agent
    assert ticket.history.latest().history_actor == "sam"
    assert messages_of(response) == ["“help” is now assigned to Sam (taken over from Alice)."]


def test_setting_priority_moves_an_unanswered_tickets_deadline(client, agent):
    client.force_login(agent)
    ticket = make_ticket("help", priority=Ticket.Priority.LOW)

    client.post(act_url(ticket), {"action": "priority", "priority": "urgent"})

    ticket.refresh_from_db()
    assert ticket.priority == "urgent"
    # Still counted from the opening, in the default policy's business hours.
    assert ticket.first_response_due_at == sla.business_deadline(
        ticket.created_at, first_response("urgent"), business_hours()
    )


def test_setting_priority_keeps_an_answered_tickets_deadline(client, agent):
    client.force_login(agent)
    opened = timezone.now() - dt.timedelta(hours=3)
    with acting_as("test:fixture"):
        ticket = builders.ticket(
            subject="help", created_at=opened, first_responded_at=opened + dt.timedelta(hours=1)
        )
        ticket_sla_refresh(ticket=ticket)
    due = ticket.first_response_due_at

    client.post(act_url(ticket), {"action": "priority", "priority": "high"})

    ticket.refresh_from_db()
    assert due == sla.business_deadline(opened, first_response("normal"), business_hours())
    assert (ticket.priority, ticket.first_response_due_at) == ("high", due)


def test_add_tag_makes_a_new_tag_or_reuses_one(client, superuser):
    client.force_login(superuser)
    ticket = make_ticket("help")
    Tag.objects.create(name="billing")

    client.post(act_url(ticket), {"action": "tag", "tag": "Billing"})
    response = client.post(act_url(ticket), {"action": "tag", "tag": "needs-engineering"})

    assert sorted(ticket.tags.values_list("name", flat=True)) == ["billing", "needs-engineering"]
    # Messages wait for the next page; nobody followed the first redirect.
    assert messages_of(response) == [
        "“help” is tagged billing.",
        "“help” is tagged needs-engineering.",
    ]
    assert Tag.objects.count() == 2


def test_resolve_solves_once(client, agent):
    client.force_login(agent)
    ticket = make_ticket("help")

    client.post(act_url(ticket), {"action": "resolve"})
    again = client.post(act_url(ticket), {"action": "resolve"})

    ticket.refresh_from_db()
    assert ticket.status == "solved"
    assert messages_of(again) == [
        "“help” is solved.",
        "Nothing changed. “help” is already solved.",
    ]
    assert ticket.history.count() == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "tag", "tag": "not a slug!"}, "Nothing changed. tag: Enter a valid “slug”"),
        ({"action": "tag", "tag": ""}, "Nothing changed. Type a tag name first."),
        ({"action": "priority", "priority": "asap"}, "Nothing changed. priority: Select a valid"),
        ({"action": "delete"}, "Nothing changed. action: Select a valid choice."),
    ],
)
def test_a_bad_action_changes_nothing_and_says_why(client, agent, data, message):
    client.force_login(agent)
    ticket = make_ticket("help")

    response = client.post(act_url(ticket), data)

    assert response.status_code == 302
    [said] = messages_of(response)
    assert said.startswith(message)
    assert ticket.history.count() == 1
    assert not Tag.objects.exists()


def test_next_must_stay_on_this_site(client, agent):
    client.force_login(agent)
    ticket = make_ticket("help")
    response = client.post(
        act_url(ticket), {"action": "assign_me", "next": "https://evil.example/phish"}
    )
    assert response["Location"] == QUEUE


def test_view_only_staff_see_the_queue_but_cannot_act(client, ops_lead):
    client.force_login(ops_lead)
    ticket = make_ticket("help")

    page = client.get(QUEUE)
    assert page.status_code == 200
    assert shown(page) == ["help"]
    assert b"Assign to me" not in page.content

    assert client.post(act_url(ticket), {"action": "resolve"}).status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == "open"


def test_actions_are_posts_only(client, agent):
    client.force_login(agent)
    ticket = make_ticket("help")
    assert client.get(act_url(ticket), {"action": "resolve"}).status_code == 405


def test_people_without_ticket_access_cannot_open_the_queue(client, outsider):
    client.force_login(outsider)
    response = client.get(QUEUE)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_queue_is_first_in_supports_sidebar_and_alone_highlighted(client, agent):
    client.force_login(agent)
    response = client.get(QUEUE)
    support = response.context["sidebar_navigation"][0]
    assert [(i["title"], i["active"]) for i in support["items"][:2]] == [
        ("Triage queue", True),
        ("All tickets", False),
    ]
