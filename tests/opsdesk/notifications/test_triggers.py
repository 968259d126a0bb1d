"""What tells staff, through the real services: a ticket assigned (by someone else, or by
a triage rule), a customer's email on a ticket, a case given to someone, and the service
levels' warning and breach (support.notices.ticket_sla_notify)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.urls import reverse

from audit.context import acting_as
from kit import roles
from opsdesk.models import ChatPost, Notification
from support import cases, tickets
from support.models import Case, TriageRule
from support.notices import ticket_sla_notify
from tests import builders
from tests.personas import staff_user
from tests.support.raw_emails import SUPPORT_FROM, plain_email, processed, raw_email, received

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def support_from(settings):
    """Replies' addresses at the domain the test emails are sent to."""
    settings.OPSDESK_SUPPORT_FROM = SUPPORT_FROM


@pytest.fixture
def told(django_capture_on_commit_callbacks, published):
    """Run the block's on-commit work (the notices), then list what was stored as
    (recipient, kind, subject, url, team)."""

    class Told:
        def __enter__(self):
            self.capture = django_capture_on_commit_callbacks(execute=True)
            self.capture.__enter__()
            return self

        def __exit__(self, *exc):
            self.capture.__exit__(*exc)

        @property
        def rows(self):
            return list(
                Notification.objects.order_by("recipient__username", "pk").values_list(
                    "recipient__username", "kind", "subject", "url", "team"
                )
            )

    return Told()


@pytest.fixture
def sue(db):
    return staff_user("sue", roles.SUPPORT)


def test_a_ticket_assigned_by_someone_else_tells_the_new_assignee(agent, sue, told):
    ticket = builders.ticket(subject="Export stuck", priority="high")
    with told:
        tickets.ticket_assign(ticket=ticket, assignee=sue, by=agent)
    assert told.rows == [
        (
            "sue",
            "ticket_assigned",
            f"Ticket #{ticket.pk} assigned to Sue: Export stuck",
            f"/admin/support/ticket/{ticket.pk}/change/",
            "",
        )
    ]
    assert Notification.objects.get().text == "Assigned by Sam. Priority high, status open."


def test_taking_a_ticket_yourself_tells_nobody(agent, told):
    ticket = builders.ticket(subject="Export stuck")
    with told:
        tickets.ticket_assign(ticket=ticket, assignee=agent, by=agent)
        tickets.ticket_assign(ticket=ticket, assignee=agent, by=agent)  # already: no change
    assert told.rows == []


def test_a_ticket_given_back_and_forth_tells_each_assignment(agent, sue, told):
    ticket = builders.ticket(subject="Export stuck")
    with told:
        tickets.ticket_assign(ticket=ticket, assignee=sue, by=agent)
    with told:
        tickets.ticket_assign(ticket=ticket, assignee=agent, by=sue)
    with told:
        tickets.ticket_assign(ticket=ticket, assignee=sue, by=agent)
    assert [row[0] for row in told.rows] == ["sam", "sue", "sue"]


def test_a_refused_assignment_tells_nobody(agent, manager, sue, told):
    ticket = builders.ticket(subject="Export stuck")
    with told, pytest.raises(tickets.TicketPermissionError):
        tickets.ticket_assign(ticket=ticket, assignee=sue, by=manager)
    assert told.rows == []


def test_a_ticket_a_triage_rule_assigns_tells_its_assignee(agent, sue, told):
    with acting_as("test:fixture"):
        TriageRule.objects.create(name="Sue takes everything", assign_to=sue)
    with told:
        ticket = tickets.ticket_create(subject="Export stuck", by=agent)
    assert told.rows == [
        (
            "sue",
            "ticket_assigned",
            f"Ticket #{ticket.pk} assigned to Sue: Export stuck",
            f"/admin/support/ticket/{ticket.pk}/change/",
            "",
        )
    ]


def test_a_customers_email_on_an_assigned_ticket_tells_its_assignee(agent, sue, told):
    ticket = builders.ticket(subject="CSV export times out", assignee=sue)
    with told:
        inbound = processed(received(raw_email("gmail_reply", ticket=ticket)))
    assert told.rows == [
        (
            "sue",
            "customer_replied",
            f"Pat Jones replied on ticket #{ticket.pk}: CSV export times out",
            f"/admin/support/ticket/{ticket.pk}/change/",
            "",
        )
    ]
    row = Notification.objects.get()
    assert row.text == ticket.comments.get(kind="customer").body[:500].strip()
    assert row.dedupe_key == f"customer_replied:{ticket.pk}:{inbound.pk}"

    with told:  # the same message processed again: no second entry, no second notice
        processed(inbound)
    assert len(told.rows) == 1


def test_a_customers_email_on_an_unassigned_ticket_tells_the_support_team(
    agent, sue, ops_lead, told
):
    staff_user("gone", roles.SUPPORT, is_active=False)
    ticket = builders.ticket(subject="CSV export times out")
    with told:
        processed(received(raw_email("gmail_reply", ticket=ticket)))
    assert [(name, kind, team) for name, kind, _, _, team in told.rows] == [
        ("sam", "customer_replied", "Support"),
        ("sue", "customer_replied", "Support"),
    ]


def test_a_new_ticket_by_email_or_an_auto_reply_tells_nobody(agent, told):
    ticket = builders.ticket(subject="CSV export times out", assignee=agent)
    with told:
        processed(received(plain_email("Hello, the export is stuck.")))
        auto_reply = raw_email("out_of_office", ticket=ticket, mark="Auto-Submitted: auto-replied")
        processed(received(auto_reply))
    assert told.rows == []


def test_cases_given_to_someone_tell_them_once_for_the_lot(ops_lead, told):
    omar = staff_user("omar", roles.OPS_LEADS)
    mine = builders.case(summary="Order failed", owner=omar)
    given = [builders.case(summary=f"Charged twice {n}") for n in (1, 2)]
    closed = builders.case(summary="Done", state=Case.State.RESOLVED)
    chosen = Case.objects.filter(pk__in=[mine.pk, closed.pk, *(c.pk for c in given)])
    with told:
        assert cases.cases_assign(cases=chosen, owner=omar, by=ops_lead) == 2
    [(name, kind, subject, url, _)] = told.rows
    assert (name, kind, subject, url) == (
        "omar",
        "case_assigned",
        "2 cases assigned to Omar",
        "/admin/support/case/inbox/?owner=me",
    )
    assert Notification.objects.get().text == (
        f"Assigned by Olga:\n#{given[0].pk} Failed fulfilment: Charged twice 1\n"
        f"#{given[1].pk} Failed fulfilment: Charged twice 2"
    )


def test_one_case_given_links_the_case_and_taking_cases_yourself_tells_nobody(ops_lead, told):
    omar = staff_user("omar", roles.OPS_LEADS)
    case = builders.case(summary="Order failed")
    with told:
        cases.cases_assign(cases=Case.objects.filter(pk=case.pk), owner=ops_lead, by=ops_lead)
    assert told.rows == []
    with told:
        cases.cases_assign(cases=Case.objects.filter(pk=case.pk), owner=omar, by=ops_lead)
    assert told.rows == [
        (
            "omar",
            "case_assigned",
            f"Case #{case.pk} assigned to Omar: Order failed",
            f"/admin/support/case/{case.pk}/change/",
            "",
        )
    ]


def test_a_case_opened_by_hand_for_someone_else_tells_them(ops_lead, customer, told):
    omar = staff_user("omar", roles.OPS_LEADS)
    with told:
        case, new = cases.case_open_by_hand(
            kind=Case.Kind.MISSING_INVOICE,
            customer=customer,
            summary="No invoice for October",
            by=ops_lead,
            owner=omar,
        )
    assert new
    assert [row[:3] for row in told.rows] == [
        ("omar", "case_assigned", f"Case #{case.pk} assigned to Omar: No invoice for October")
    ]


DUE = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)


def test_an_sla_warning_tells_the_assignee_once_however_often_the_sweep_runs(agent, sue, told):
    ticket = builders.ticket(subject="Export stuck", assignee=sue, priority="urgent")
    with told:
        for _ in range(3):
            ticket_sla_notify(ticket=ticket, clock="first_response", due_at=DUE, breached=False)
    assert told.rows == [
        (
            "sue",
            "sla_warning",
            f"Ticket #{ticket.pk}: first response due 23 Nov 2026 14:00 UTC: Export stuck",
            f"/admin/support/ticket/{ticket.pk}/change/",
            "",
        )
    ]
    assert Notification.objects.get().text == "Priority urgent, assigned to Sue."
    assert Notification.objects.get().dedupe_key == (
        f"sla_warning:{ticket.pk}:first_response:2026-11-23T14:00:00+00:00"
    )
    with told:  # the deadline moved (priority raised): a new warning
        earlier = DUE - dt.timedelta(hours=3)
        ticket_sla_notify(ticket=ticket, clock="first_response", due_at=earlier, breached=False)
    assert len(told.rows) == 2


def test_a_breach_of_an_unassigned_ticket_tells_the_team_and_the_leads(agent, sue, ops_lead, told):
    ticket = builders.ticket(subject="Export stuck")
    with told:
        ticket_sla_notify(
            ticket=ticket, clock="resolution", due_at=DUE, breached=True, leads=roles.OPS_LEADS
        )
        ticket_sla_notify(
            ticket=ticket, clock="resolution", due_at=DUE, breached=True, leads=[ops_lead.pk]
        )
    assert [(name, kind, subject, team) for name, kind, subject, _, team in told.rows] == [
        (
            "olga",
            "sla_breach",
            f"Ticket #{ticket.pk} missed its resolution target (23 Nov 2026 14:00 UTC): "
            "Export stuck",
            "Ops leads",
        ),
        (
            "sam",
            "sla_breach",
            f"Ticket #{ticket.pk} missed its resolution target (23 Nov 2026 14:00 UTC): "
            "Export stuck",
            "Support",
        ),
        (
            "sue",
            "sla_breach",
            f"Ticket #{ticket.pk} missed its resolution target (23 Nov 2026 14:00 UTC): "
            "Export stuck",
            "Support",
        ),
    ]


def test_a_request_that_tells_a_notice_never_waits_for_the_chat_server(
    client, agent, chat, published, django_capture_on_commit_callbacks
):
    """Sam gives Sue a ticket while the chat server hangs: the page answers at once, the
    post waits for a worker."""
    sue = staff_user("sue", roles.SUPPORT)
    ticket = builders.ticket(subject="Export stuck")
    chat.answers = [("hang", 5)]
    client.force_login(agent)

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:support_ticket_act", args=[ticket.pk]),
            {"action": "assign", "assignee": sue.pk},
        )
    took = time.monotonic() - started

    assert response.status_code == 302
    assert took < 1.5
    assert chat.posts == []  # the request posted nothing itself
    post = ChatPost.objects.get()
    assert post.text.startswith(f"Ticket #{ticket.pk} assigned to Sue: Export stuck")
    assert ("opsdesk.chat_post_send", [post.pk]) in published
