"""Health signals: the lifecycle's one pure step at its edges, each kind's "materially
worse" rule, the sweep (once per date, history), and a week of digests read from the
sent emails: new, still open, resolved, acknowledged, snoozed, woken, reappearing."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command

from audit.context import acting_as
from customers.models import UsageDaily
from opsdesk.health.flags import Flag
from opsdesk.health.models import HealthSignal, HealthSweep
from opsdesk.health.signals import (
    SignalError,
    SignalState,
    materially_worse,
    signal_acknowledge,
    signal_snooze,
    signal_step,
    signals_sweep,
)
from support.models import Ticket
from tests import builders
from tests.opsdesk.health.followed import DAY, follow
from tests.records import active_contract

D = DAY  # Sun 22 Nov 2026


def flag(code="urgent_tickets", reason="1 open urgent ticket", value=1.0, label="Urgent tickets"):
    return Flag(code, label, reason, value)


def stored(**fields) -> SignalState:
    values = {
        "kind": "urgent_tickets",
        "label": "Urgent tickets",
        "state": "open",
        "opened_on": D - dt.timedelta(days=3),
        "opened_reason": "1 open urgent ticket",
        "reason": "1 open urgent ticket",
        "value": 1.0,
        "pk": 7,
        **fields,
    }
    return SignalState(**values)


# --- The step, pure ----------------------------------------------------------------------


def test_nothing_and_no_flag_is_nothing():
    assert signal_step(date=D, signal=None, flag=None, cleared="x") == (None, None)


def test_a_first_flag_opens_a_signal_on_that_date():
    step, after = signal_step(date=D, signal=None, flag=flag(), cleared="x")
    assert step == "opened"
    assert after == SignalState(
        kind="urgent_tickets",
        label="Urgent tickets",
        state="open",
        opened_on=D,
        opened_reason="1 open urgent ticket",
        reason="1 open urgent ticket",
        value=1.0,
    )


def test_the_same_figures_change_nothing_and_new_ones_update():
    signal = stored()
    assert signal_step(date=D, signal=signal, flag=flag(), cleared="x") == (None, signal)
    step, after = signal_step(
        date=D, signal=signal, flag=flag(reason="2 open urgent tickets", value=2.0), cleared="x"
    )
    assert step == "updated"
    assert (after.reason, after.value, after.opened_reason, after.opened_on) == (
        "2 open urgent tickets",
        2.0,
        "1 open urgent ticket",
        D - dt.timedelta(days=3),
    )


@pytest.mark.parametrize("state", ["open", "acknowledged", "snoozed"])
def test_a_cleared_flag_resolves_with_the_figure_that_cleared_it(state):
    signal = stored(state=state, snoozed_until=D + dt.timedelta(days=5))
    step, after = signal_step(date=D, signal=signal, flag=None, cleared="0 open urgent tickets")
    assert step == "resolved"
    assert (after.state, after.resolved_on, after.resolved_reason) == (
        "resolved",
        D,
        "0 open urgent tickets",
    )


def test_a_resolved_signal_and_the_flag_again_open_a_new_one():
    old = stored(state="resolved", resolved_on=D - dt.timedelta(days=1))
    step, after = signal_step(date=D, signal=old, flag=flag(), cleared="x")
    assert step == "opened" and after.opened_on == D and after.pk is None


def test_a_date_before_the_signal_opened_changes_nothing():
    signal = stored(opened_on=D)
    before = D - dt.timedelta(days=1)
    assert signal_step(date=before, signal=signal, flag=None, cleared="x") == (None, signal)


def test_a_snooze_hides_until_its_date_then_wakes_as_it_was():
    snoozed = stored(state="snoozed", snoozed_until=D + dt.timedelta(days=2), snoozed_value=1.0)
    day_before = D + dt.timedelta(days=1)
    assert signal_step(date=day_before, signal=snoozed, flag=flag(), cleared="x") == (None, snoozed)
    assert snoozed.hidden_on(day_before) and not snoozed.hidden_on(D + dt.timedelta(days=2))

    step, after = signal_step(
        date=D + dt.timedelta(days=2), signal=snoozed, flag=flag(), cleared="x"
    )
    assert (step, after.state, after.woke_reason) == ("woke", "open", "snoozed until 24 Nov 2026")

    acknowledged = dataclass_replace(snoozed, acknowledged=True)
    _, after = signal_step(
        date=D + dt.timedelta(days=2), signal=acknowledged, flag=flag(), cleared="x"
    )
    assert after.state == "acknowledged"


def test_a_snoozed_signal_wakes_early_when_materially_worse():
    snoozed = stored(state="snoozed", snoozed_until=D + dt.timedelta(days=9), snoozed_value=1.0)
    worse = flag(reason="2 open urgent tickets", value=2.0)
    step, after = signal_step(date=D, signal=snoozed, flag=worse, cleared="x")
    assert (step, after.state, after.reason) == ("woke", "open", "2 open urgent tickets")
    assert after.woke_reason == "worse since the snooze: 2 open urgent tickets"


def test_a_snoozed_signal_takes_new_figures_quietly_while_not_worse():
    snoozed = stored(
        kind="error_rate",
        label="Error-rate anomaly",
        state="snoozed",
        snoozed_until=D + dt.timedelta(days=9),
        snoozed_value=0.10,
        value=0.10,
    )
    a_bit_worse = flag("error_rate", "error rate 19.9%", 0.199, "Error-rate anomaly")
    step, after = signal_step(date=D, signal=snoozed, flag=a_bit_worse, cleared="x")
    assert (step, after.state, after.reason) == ("updated", "snoozed", "error rate 19.9%")


@pytest.mark.parametrize(
    ("kind", "then", "now", "worse"),
    [
        ("error_rate", 0.10, 0.199, False),
        ("error_rate", 0.10, 0.20, True),
        ("usage_drop", 0.30, 0.44, False),
        ("usage_drop", 0.30, 0.45, True),
        ("dormant", 14, 400, False),
        ("no_data", 1, 1, False),
        ("renewal_soon", 20, 8, False),
        ("renewal_soon", 20, 7, True),
        ("renewal_soon", 7, 3, False),  # snoozed inside the last week: its date decides
        ("renewal_at_risk", 30, 7, True),
        ("urgent_tickets", 1, 1, False),
        ("urgent_tickets", 1, 2, True),
        ("billing_finding", 2, 3, True),
        ("sla_breach", 1, 1, False),
        ("overdue_invoice", 10, 39, False),
        ("overdue_invoice", 10, 40, True),
        ("seats_over", 0.20, 0.29, False),
        ("seats_over", 0.20, 0.31, True),
        ("onboarding_stalled", 8, 21, False),
        ("onboarding_stalled", 8, 22, True),
        ("a_kind_from_the_future", 1, 100, False),
    ],
)
def test_each_kind_wakes_by_its_own_rule(kind, then, now, worse):
    assert materially_worse(kind, then, now) is worse


def dataclass_replace(signal, **changes):
    import dataclasses

    return dataclasses.replace(signal, **changes)


# --- The sweep ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sweep_runs_once_per_date_and_never_for_an_older_one(manager):
    follow("Silent Co", manager, usage_days=0)
    with acting_as("test:sweep"):
        first = signals_sweep(date=D)
        again = signals_sweep(date=D)
        older = signals_sweep(date=D - dt.timedelta(days=1))
    assert (first.status, first.opened, again, older) == ("finished", 2, None, None)
    assert sorted(HealthSignal.objects.values_list("kind", "state", "opened_on")) == [
        ("dormant", "open", D),
        ("no_data", "open", D),
    ]
    assert HealthSweep.objects.count() == 1
    assert {row.history_actor for row in HealthSignal.history.all()} == {"test:sweep"}


@pytest.mark.django_db
def test_only_the_manager_or_an_ops_lead_handles_a_signal(manager, other_manager, ops_lead, agent):
    follow("Silent Co", manager, usage_days=0)
    with acting_as("test:sweep"):
        signals_sweep(date=D)
    signal = HealthSignal.objects.get(kind="dormant")
    for person in (other_manager, agent):
        with pytest.raises(SignalError, match="for the customer's account manager"):
            signal_acknowledge(signal=signal, by=person)
    signal_acknowledge(signal=signal, by=ops_lead, note="calling them")
    with pytest.raises(SignalError, match=r"^Say why you snooze it"):
        signal_snooze(
            signal=signal, by=manager, until=D + dt.timedelta(days=3), reason=" ", today=D
        )
    with pytest.raises(SignalError, match=r"^Snooze until a day after today\.$"):
        signal_snooze(signal=signal, by=manager, until=D, reason="holiday", today=D)
    with pytest.raises(SignalError, match=r"^Snooze for at most 90 days\.$"):
        signal_snooze(
            signal=signal, by=manager, until=D + dt.timedelta(days=91), reason="x", today=D
        )
    signal = signal_snooze(
        signal=signal, by=manager, until=D + dt.timedelta(days=90), reason="holiday", today=D
    )
    assert (signal.state, signal.snoozed_value, signal.acknowledge_note) == (
        "snoozed",
        signal.value,
        "calling them",
    )
    reasons = [row.history_change_reason for row in signal.history.order_by("history_date")]
    assert reasons == ["flag appeared", "signal acknowledged", "signal snoozed: holiday"]


# --- A week of digests -------------------------------------------------------------------


def sections(body: str) -> dict[str, list[str]]:
    """The digest's text as {section: ["Customer: Label", ...]} for the three signal
    sections ("new", "still", "resolved")."""
    found = {"new": [], "still": [], "resolved": []}
    section, customer = None, None
    heads = {
        "NEW SINCE YESTERDAY": "new",
        "STILL OPEN": "still",
        "RESOLVED SINCE YESTERDAY": "resolved",
    }
    for line in body.splitlines():
        head = re.match(r"^([A-Z ]+) \(\d+\)$", line)
        if head:
            section = heads.get(head.group(1))
            continue
        if section is None:
            continue
        if section == "resolved" and line.startswith("* "):
            name, rest = line[2:].split(": ", 1)
            found["resolved"] += [f"{name}: {part.split(' (')[0]}" for part in rest.split("; ")]
        elif line.startswith("* "):
            customer = line[2:].rsplit(" (", 1)[0]
        elif line.startswith("  - "):
            label = re.split(r"[,:]", line[4:], maxsplit=1)[0]
            found[section].append(f"{customer}: {label}")
    return found


def report(customer, day: dt.date, *, errors=2, requests=1000):
    """The usage report of ``day`` (what the digest of ``day`` + 1 reads)."""
    with acting_as("test:fixture"):
        UsageDaily.objects.create(
            customer=customer,
            date=day,
            active_users_1d=8,
            active_users_7d=15,
            last_login_at=dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC),
            requests=requests,
            errors=errors,
        )


def digest_of(day: dt.date) -> tuple[str, dict[str, list[str]], str]:
    mail.outbox.clear()
    with time_machine.travel(dt.datetime.combine(day, dt.time(7, 5), tzinfo=dt.UTC), tick=False):
        call_command("send_digests", "--date", day.isoformat())
    [email] = [m for m in mail.outbox if m.to == ["alice@opsdesk.test"]]
    return email.subject, sections(email.body), email.body


@pytest.mark.django_db
def test_a_week_of_digests_says_what_is_new_what_lasts_and_what_cleared(manager, capsys):
    steady = follow("Steady Co", manager)
    renewing = follow("Renewing Co", manager)
    with acting_as("test:fixture"):
        active_contract(renewing, end_date=D + dt.timedelta(days=20))
    spiky = follow("Spiky Co", manager)
    urgent = follow("Urgent Co", manager)
    first = builders.ticket(customer=urgent, priority=Ticket.Priority.URGENT)
    customers = [steady, renewing, spiky, urgent]

    def day(n: int) -> dt.date:
        return D + dt.timedelta(days=n)

    # Day 0: two signals appear (renewal soon, urgent tickets).
    subject, seen, _ = digest_of(day(0))
    assert subject == "Usage digest Sun 22 Nov 2026: 2 new signals, 0 still open (4 customers)"
    assert seen == {
        "new": ["Renewing Co: Renewal soon", "Urgent Co: Urgent tickets"],
        "still": [],
        "resolved": [],
    }
    # The manager acknowledges the renewal and snoozes the urgent tickets for a week.
    renewal = HealthSignal.objects.get(customer=renewing, kind="renewal_soon")
    tickets = HealthSignal.objects.get(customer=urgent, kind="urgent_tickets")
    signal_acknowledge(signal=renewal, by=manager, note="renewal call booked")
    signal_snooze(signal=tickets, by=manager, until=day(7), reason="waiting on a fix", today=day(0))

    # Day 1: the renewal lasts, marked as handled; the snoozed one is hidden.
    for customer in customers:
        report(customer, day(0), errors=300 if customer is spiky else 2)
    subject, seen, body = digest_of(day(1))
    assert seen == {
        "new": ["Spiky Co: Error-rate anomaly"],
        "still": ["Renewing Co: Renewal soon"],
        "resolved": [],
    }
    assert subject == "Usage digest Mon 23 Nov 2026: 1 new signal, 1 still open (4 customers)"
    assert "  - Renewal soon, open for 1 day, being handled by Alice" in body
    assert "Snoozed: 1 signal of 1 customer, hidden until their dates or until worse." in body

    # Day 2: the spike is gone: resolved with the rate that cleared it.
    for customer in customers:
        report(customer, day(1))
    subject, seen, body = digest_of(day(2))
    assert seen == {
        "new": [],
        "still": ["Renewing Co: Renewal soon"],
        "resolved": ["Spiky Co: Error-rate anomaly"],
    }
    assert "* Spiky Co: Error-rate anomaly (error rate 0.2%, open for 1 day)" in body
    assert subject == "Usage digest Tue 24 Nov 2026: nothing new, 1 still open (4 customers)"

    # Day 3: a second urgent ticket: the snoozed signal is materially worse and wakes.
    builders.ticket(customer=urgent, priority=Ticket.Priority.URGENT)
    for customer in customers:
        report(customer, day(2))
    _, seen, body = digest_of(day(3))
    assert seen["still"] == ["Renewing Co: Renewal soon", "Urgent Co: Urgent tickets"]
    assert "(back from a snooze: worse since the snooze: 2 open urgent tickets)" in body

    # Day 4: the spike comes back: a new signal, not the old one reopened.
    for customer in customers:
        report(customer, day(3), errors=300 if customer is spiky else 2)
    _, seen, _ = digest_of(day(4))
    assert seen["new"] == ["Spiky Co: Error-rate anomaly"]
    assert HealthSignal.objects.filter(customer=spiky).count() == 2

    # Day 5: both urgent tickets solved: resolved; nothing else changed.
    with acting_as("test:fixture"):
        for ticket in Ticket.objects.filter(customer=urgent):
            ticket.status = Ticket.Status.SOLVED
            ticket.save()
    for customer in customers:
        report(customer, day(4), errors=300 if customer is spiky else 2)
    _, seen, body = digest_of(day(5))
    assert seen == {
        "new": [],
        "still": ["Renewing Co: Renewal soon", "Spiky Co: Error-rate anomaly"],
        "resolved": ["Urgent Co: Urgent tickets"],
    }
    assert "* Urgent Co: Urgent tickets (0 open urgent tickets, open for 5 days)" in body
    assert first.pk  # the first ticket was among those solved

    # Every sweep ran once; the signals' history tells the story.
    assert list(
        HealthSweep.objects.order_by("date").values_list("date", "opened", "resolved", "woke")
    ) == [
        (day(0), 2, 0, 0),
        (day(1), 1, 0, 0),
        (day(2), 0, 1, 0),
        (day(3), 0, 0, 1),
        (day(4), 1, 0, 0),
        (day(5), 0, 1, 0),
    ]
    rows = tickets.history.order_by("history_id")  # as written (the clock travelled)
    states = [state for state, _ in itertools.groupby(row.state for row in rows)]
    assert states == ["open", "snoozed", "open", "resolved"]


def test_each_kind_says_which_figure_cleared_it():
    from opsdesk.health.flags import CustomerHealth
    from opsdesk.health.signals import cleared_reason

    health = CustomerHealth(
        customer_id=1,
        name="Acme",
        external_id="acme",
        account_manager_id=None,
        wau=40,
        wau_week_ago=42,
        wau_change=-0.05,
        last_login_at=dt.datetime(2026, 11, 21, 9, tzinfo=dt.UTC),
        requests=1000,
        errors=2,
        error_rate=0.002,
        contract_end=None,
        urgent_open_tickets=1,
        contracted_seats=50,
        onboarding_days_overdue=3,
    )
    assert {
        kind: cleared_reason(kind, health)
        for kind in (
            "error_rate",
            "usage_drop",
            "dormant",
            "urgent_tickets",
            "overdue_invoice",
            "billing_finding",
            "seats_over",
            "sla_breach",
            "onboarding_stalled",
            "renewal_at_risk",
        )
    } == {
        "error_rate": "error rate 0.2%",
        "usage_drop": "WAU 40 vs 42 a week earlier",
        "dormant": "last login 21 Nov 2026",
        "urgent_tickets": "1 open urgent ticket",
        "overdue_invoice": "0 overdue invoices",
        "billing_finding": "0 open billing findings",
        "seats_over": "WAU 40 vs 50 contracted seats",
        "sla_breach": "0 open tickets past their SLA",
        "onboarding_stalled": "most overdue onboarding task 3 days late",
        "renewal_at_risk": "no active contract ending soon",
    }
    assert cleared_reason("dormant", None) == "the customer is no longer followed (churned)"


@pytest.mark.django_db
def test_a_failed_sweep_is_recorded_with_its_error_and_taken_over_by_the_next_run(
    manager, monkeypatch
):
    follow("Silent Co", manager, usage_days=0)

    def broken(**kwargs):
        raise RuntimeError("usage table unreadable")

    monkeypatch.setattr("opsdesk.health.signals.customer_health", broken)
    with acting_as("test:sweep"), pytest.raises(RuntimeError, match="usage table unreadable"):
        signals_sweep(date=D)
    sweep = HealthSweep.objects.get()
    assert (sweep.status, sweep.error) == ("failed", "RuntimeError: usage table unreadable")
    assert not HealthSignal.objects.exists()

    monkeypatch.undo()
    with acting_as("test:sweep"):
        again = signals_sweep(date=D)
    assert (again.pk, again.status, again.opened, again.error) == (sweep.pk, "finished", 2, "")
