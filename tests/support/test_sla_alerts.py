"""Warnings before a ticket's clock runs out and escalation at its breach
(support.sla_alerts, docs/product.md#warnings-and-escalation): who is told, exactly once
per clock and deadline however often (or from however many schedulers) the sweep runs,
a moved deadline told again, nothing while waiting on the customer, stale alarms recorded
untold, and a claim rolled back with notices that could not be stored.

Times are fixed with time_machine; 23 November 2026 is a Monday. The Enterprise policy
counts urgent tickets around the clock: first response 1 h, warned at 45 min."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.bulk import update_with_history
from audit.context import acting_as
from customers.models import Contract
from kit import roles
from opsdesk.models import Notification
from support import sla_alerts, tickets
from support.models import SlaAlert, Ticket
from support.tasks import sla_alerts_send as sla_alerts_task
from tests import builders
from tests.concurrency import at_once
from tests.personas import staff_user
from tests.records import active_contract

UTC = dt.UTC


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def enterprise(db, sla_policies):
    with acting_as("test:fixture"):
        customer = builders.customer(external_id="initech-1", name="Initech")
        active_contract(customer, plan=Contract.Plan.ENTERPRISE)
    return customer


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, list]]:
    """What is handed to the broker after a commit (the notices' deliveries)."""
    tasks: list[tuple[str, list]] = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: tasks.append((name, args)))
    return tasks


@pytest.fixture
def sue(db):
    return staff_user("sue", roles.SUPPORT)


def opened(by, customer, *, when: dt.datetime, priority: str, assignee=None) -> Ticket:
    with time_machine.travel(when, tick=False):
        ticket = tickets.ticket_create(
            by=by,
            subject="Export stuck",
            customer=customer,
            priority=priority,
            requester_email="pat@initech.example",
        )
        if assignee is not None:
            tickets.ticket_assign(ticket=ticket, assignee=assignee, by=by)
    return ticket


def urgent(by, customer, *, when: dt.datetime, assignee=None) -> Ticket:
    return opened(by, customer, when=when, priority="urgent", assignee=assignee)


def sweep(when: dt.datetime) -> sla_alerts.SweepResult:
    with time_machine.travel(when, tick=False), acting_as("task:support.sla_alerts_send"):
        return sla_alerts.sla_alerts_send()


def told() -> list[tuple[str, str, str]]:
    return list(
        Notification.objects.order_by("pk", "recipient__username").values_list(
            "recipient__username", "kind", "subject"
        )
    )


@pytest.mark.django_db
def test_the_assignee_is_warned_once_then_the_leads_hear_of_the_breach(
    agent, sue, ops_lead, enterprise, published
):
    ticket = urgent(agent, enterprise, when=at(23, 10), assignee=sue)
    assert ticket.first_response_warn_at == at(23, 10, 45)

    assert sweep(at(23, 10, 44)) == sla_alerts.SweepResult()
    assert told() == []

    assert sweep(at(23, 10, 45)) == sla_alerts.SweepResult(warned=1)
    assert sweep(at(23, 10, 50)) == sla_alerts.SweepResult()
    warning = f"Ticket #{ticket.pk}: first response due 23 Nov 2026 11:00 UTC: Export stuck"
    assert told() == [("sue", "sla_warning", warning)]

    assert sweep(at(23, 11, 0)) == sla_alerts.SweepResult(breached=1)
    assert sweep(at(23, 11, 5)) == sla_alerts.SweepResult()
    breach = (
        f"Ticket #{ticket.pk} missed its first response target (23 Nov 2026 11:00 UTC): "
        "Export stuck"
    )
    assert told() == [
        ("sue", "sla_warning", warning),
        ("sue", "sla_breach", breach),
        ("olga", "sla_breach", breach),
    ]
    assert list(
        SlaAlert.objects.order_by("pk").values_list("clock", "kind", "due_at", "notified")
    ) == [
        ("first_response", "warning", at(23, 11), True),
        ("first_response", "breach", at(23, 11), True),
    ]
    history = SlaAlert.history.order_by("history_id").values_list("history_type", "history_actor")
    assert list(history) == [("+", "task:support.sla_alerts_send")] * 2


@pytest.mark.django_db
def test_an_unassigned_ticket_warns_the_support_team(agent, sue, ops_lead, enterprise, published):
    urgent(agent, enterprise, when=at(23, 10))
    sweep(at(23, 10, 46))
    assert sorted((name, kind) for name, kind, _ in told()) == [
        ("sam", "sla_warning"),
        ("sue", "sla_warning"),
    ]


@pytest.mark.django_db
def test_the_escalation_group_is_a_setting(agent, sue, ops_lead, enterprise, published, settings):
    settings.OPSDESK_SLA_ESCALATE_TO = roles.SUPPORT
    urgent(agent, enterprise, when=at(23, 10), assignee=sue)
    sweep(at(23, 11, 1))
    assert sorted((name, kind) for name, kind, _ in told()) == [
        ("sam", "sla_breach"),
        ("sue", "sla_breach"),
    ]


@pytest.mark.django_db
def test_a_moved_deadline_is_warned_again(agent, sue, enterprise, published, sla_policies):
    ticket = opened(agent, enterprise, when=at(23, 10), priority="high", assignee=sue)
    # High, around the clock: 4 h, warned at 3 h.
    assert (ticket.first_response_due_at, ticket.first_response_warn_at) == (
        at(23, 14),
        at(23, 13),
    )
    sweep(at(23, 13, 1))
    with time_machine.travel(at(23, 13, 2), tick=False):
        tickets.ticket_set_priority(ticket=ticket, priority="urgent", by=agent)
    ticket.refresh_from_db()
    assert ticket.first_response_due_at == at(23, 11)  # counted from the opening: past
    sweep(at(23, 13, 3))
    assert [(name, kind, subject) for name, kind, subject in told()] == [
        (
            "sue",
            "sla_warning",
            f"Ticket #{ticket.pk}: first response due 23 Nov 2026 14:00 UTC: Export stuck",
        ),
        (
            "sue",
            "sla_breach",
            f"Ticket #{ticket.pk} missed its first response target (23 Nov 2026 11:00 UTC): "
            "Export stuck",
        ),
    ]
    assert list(SlaAlert.objects.order_by("pk").values_list("kind", "due_at")) == [
        ("warning", at(23, 14)),
        ("breach", at(23, 11)),
    ]


@pytest.mark.django_db
def test_a_stopped_or_paused_clock_is_not_told(agent, sue, enterprise, published):
    answered = urgent(agent, enterprise, when=at(23, 10), assignee=sue)
    waiting = urgent(agent, enterprise, when=at(23, 10), assignee=sue)
    solved = urgent(agent, enterprise, when=at(23, 10), assignee=sue)
    with time_machine.travel(at(23, 10, 30), tick=False):
        tickets.ticket_comment(
            ticket=answered, author=sue, kind="reply", body="Looking into it now."
        )
        tickets.ticket_set_status(ticket=waiting, status=Ticket.Status.PENDING, by=sue)
        tickets.ticket_set_status(ticket=solved, status=Ticket.Status.SOLVED, by=sue)

    result = sweep(at(23, 11, 30))
    answered.refresh_from_db()
    # The reply stopped the first response; resolution (5 h, warned at 3 h 45) runs on.
    assert answered.first_response_warn_at is None
    assert answered.resolution_warn_at == at(23, 13, 45)
    assert result == sla_alerts.SweepResult()
    assert told() == []

    assert sweep(at(23, 13, 45)) == sla_alerts.SweepResult(warned=1)
    assert [(kind, subject) for _, kind, subject in told()] == [
        (
            "sla_warning",
            f"Ticket #{answered.pk}: resolution due 23 Nov 2026 15:00 UTC: Export stuck",
        )
    ]


@pytest.mark.django_db
def test_an_alarm_found_after_the_window_is_recorded_not_told(
    agent, sue, enterprise, published, settings
):
    settings.OPSDESK_SLA_ALERT_WINDOW_HOURS = 24
    ticket = urgent(agent, enterprise, when=at(20, 10), assignee=sue)
    # The first sweep in days: the first response was due on the 20th at 11:00.
    result = sweep(at(23, 9))
    assert result == sla_alerts.SweepResult(recorded_late=2)  # the breach; resolution's too
    assert told() == []
    assert list(
        SlaAlert.objects.filter(ticket=ticket)
        .order_by("clock")
        .values_list("clock", "kind", "notified")
    ) == [("first_response", "breach", False), ("resolution", "breach", False)]
    assert sweep(at(23, 9, 5)) == sla_alerts.SweepResult()


@pytest.mark.django_db
def test_a_claim_whose_notices_fail_is_rolled_back_and_tried_again(
    agent, sue, enterprise, published, monkeypatch
):
    from opsdesk.notifications import services

    urgent(agent, enterprise, when=at(23, 10), assignee=sue)

    def broken(**kwargs):
        raise RuntimeError("database hiccup")

    with monkeypatch.context() as patched:
        patched.setattr(services, "notice_record", broken)
        assert sweep(at(23, 10, 50)) == sla_alerts.SweepResult()
    assert SlaAlert.objects.count() == 0
    assert sweep(at(23, 10, 51)) == sla_alerts.SweepResult(warned=1)
    assert [name for name, _, _ in told()] == ["sue"]


@pytest.mark.django_db
def test_an_empty_sweep_reads_one_query_per_clock_and_kind(django_assert_num_queries):
    with django_assert_num_queries(6):
        sla_alerts.sla_alerts_send(now=at(23, 12))


@pytest.mark.django_db
def test_each_alert_costs_the_same_queries_however_many_are_due(agent, sue, enterprise, published):
    def cost(count: int, day: int) -> int:
        with acting_as("test:setup"):  # the earlier round's tickets are done
            update_with_history(Ticket.objects.all(), status=Ticket.Status.SOLVED)
        for _ in range(count):
            urgent(agent, enterprise, when=at(day, 10), assignee=sue)
        with (
            time_machine.travel(at(day, 10, 50), tick=False),
            CaptureQueriesContext(connection) as queries,
        ):
            assert sla_alerts.sla_alerts_send().warned == count
        return len(queries)

    one, five = cost(1, 24), cost(5, 25)
    assert (five - 6) == 5 * (one - 6)


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_once_tell_each_warning_once(agent, sue, ops_lead, enterprise, published):
    for _ in range(3):
        urgent(agent, enterprise, when=at(23, 10), assignee=sue)

    results = at_once(2, lambda i: sweep(at(23, 10, 50)))
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r.warned for r in results) == 3
    assert Notification.objects.filter(kind="sla_warning").count() == 3
    assert SlaAlert.objects.count() == 3


@pytest.mark.django_db
def test_the_task_runs_the_sweep(agent, sue, enterprise, published):
    urgent(agent, enterprise, when=at(23, 10), assignee=sue)
    with time_machine.travel(at(23, 10, 50), tick=False):
        assert sla_alerts_task.apply().get() == {"warned": 1, "breached": 0, "recorded_late": 0}


def test_the_sweep_is_scheduled_with_an_expiry(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["send-sla-alerts"]
    assert entry["task"] == "support.sla_alerts_send"
    assert entry["schedule"] == settings.OPSDESK_SLA_SWEEP_SECONDS
    assert 0 < entry["options"]["expires"] < entry["schedule"]
