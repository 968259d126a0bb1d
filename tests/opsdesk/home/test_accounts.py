"""An account manager's home: my customers needing attention today (their open signals
once today's sweep has run, else the digest's flags computed live), renewals in the next
60 days, my customers' onboarding tasks overdue and due, my customers' open cases; each
count linked to the page listing exactly its rows."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from audit.context import acting_as
from customers.models import Contract
from onboarding.models import Checklist, ChecklistTask, Role
from opsdesk.health.digest import digest_build, recipient_for
from opsdesk.health.models import HealthSignal, HealthSweep
from opsdesk.health.signals import signal_acknowledge, signal_snooze
from opsdesk.home.selectors import (
    customers_needing_attention,
    my_customers_cases_tally,
    onboarding_tallies,
    renewals_coming,
)
from support.models import Case
from tests import builders
from tests.opsdesk.casework.cases import make_case
from tests.opsdesk.home.records import listed, managed_customer

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def seed_attention(manager, other_manager, n: int = 1) -> list:
    """``n`` flagged customers of ``manager`` (no usage data; one also with an urgent
    ticket), one healthy, one churned without data, and one flagged of someone else."""
    flagged = []
    for i in range(n):
        flagged.append(
            managed_customer(manager, date=TODAY, healthy_usage=False, name=f"Quiet {i:02}")
        )
    with acting_as("test:fixture"):
        builders.ticket(customer=flagged[0], priority="urgent")
    managed_customer(manager, date=TODAY, name="Healthy")
    managed_customer(manager, date=TODAY, healthy_usage=False, name="Gone", status="churned")
    managed_customer(other_manager, date=TODAY, healthy_usage=False, name="Bob's")
    return flagged


def test_my_customers_needing_attention_are_the_digests(manager, other_manager):
    flagged = seed_attention(manager, other_manager, n=2)
    attention = customers_needing_attention(user=manager, date=TODAY)
    assert attention.tally.count == 2
    # Flagged most first, as the digest lists them, each with its page.
    assert [(h.name, [f.code for f in h.flags]) for h, _ in attention.customers] == [
        ("Quiet 00", ["dormant", "no_data", "urgent_tickets"]),
        ("Quiet 01", ["dormant", "no_data"]),
    ]
    assert attention.customers[0][1] == f"/admin/customers/customer/{flagged[0].pk}/change/"
    digest = digest_build(date=TODAY, recipient=recipient_for(f"user:{manager.pk}"))
    assert [h.customer_id for h in digest.attention] == [
        h.customer_id for h, _ in attention.customers
    ]


@pytest.mark.parametrize("n", [1, 20])
def test_the_attention_count_links_to_exactly_those_customers(
    client, manager, other_manager, n, django_assert_num_queries
):
    seed_attention(manager, other_manager, n=n)
    with django_assert_num_queries(3):  # today's sweep not run: it, and the live health (2)
        attention = customers_needing_attention(user=manager, date=TODAY)
    assert attention.live and attention.tally.count == n
    client.force_login(manager)
    assert listed(client, attention.tally.url) == n


def seed_renewals(manager, other_manager, n: int = 1) -> None:
    """``n`` active contracts of mine ending in 10 days, one on the 60th day; out: one on
    the 61st, an ended one, a draft, one of Bob's."""
    with acting_as("test:fixture"):
        for i in range(n):
            builders.contract(
                customer=builders.customer(account_manager=manager, name=f"Renew {i:02}"),
                end_date=TODAY + dt.timedelta(days=10),
            )
        mine = builders.customer(account_manager=manager, name="Edge")
        builders.contract(customer=mine, end_date=TODAY + dt.timedelta(days=60))
        builders.contract(customer=mine, end_date=TODAY + dt.timedelta(days=61))
        builders.contract(
            customer=mine, end_date=TODAY + dt.timedelta(days=5), status=Contract.Status.ENDED
        )
        builders.contract(
            customer=mine, end_date=TODAY + dt.timedelta(days=5), status=Contract.Status.DRAFT
        )
        builders.contract(
            customer=builders.customer(account_manager=other_manager),
            end_date=TODAY + dt.timedelta(days=5),
        )


@pytest.mark.parametrize("n", [1, 20])
def test_renewals_in_the_next_60_days_are_counted_and_linked_exactly(
    client, manager, other_manager, n, django_assert_num_queries
):
    seed_renewals(manager, other_manager, n=n)
    with django_assert_num_queries(1):
        renewals = renewals_coming(user=manager, today=TODAY)
    assert renewals.tally.count == n + 1
    assert [c.customer.name for c in renewals.contracts][-1] == "Edge"
    assert renewals.contracts[-1].end_date == TODAY + dt.timedelta(days=60)
    client.force_login(manager)
    assert listed(client, renewals.tally.url) == n + 1


def test_no_renewal_is_a_zero_without_a_link(manager):
    renewals = renewals_coming(user=manager, today=TODAY)
    assert (renewals.tally.count, renewals.tally.url, renewals.contracts) == (0, "", [])


def _checklist(customer, contract=None):
    contract = contract or Contract.objects.filter(customer=customer).first()
    return Checklist.objects.create(contract=contract, customer=customer)


def _task(checklist, days: int, **fields):
    return ChecklistTask.objects.create(
        checklist=checklist,
        title=f"Task due in {days} d",
        role=Role.ACCOUNT_MANAGER,
        due_date=TODAY + dt.timedelta(days=days),
        **fields,
    )


def seed_tasks(manager, other_manager, agent, n: int = 1) -> None:
    """Per customer of mine (``n``): overdue by 2 d (owned by support: counted all the
    same), due today, due in 6 d; out: due in 7 d, done overdue, not applicable. Out too:
    Bob's customer's overdue task, an overdue task of my ended contract."""
    with acting_as("test:fixture"):
        for _ in range(n):
            checklist = _checklist(managed_customer(manager, date=TODAY))
            _task(checklist, -2, owner=agent)
            _task(checklist, 0)
            _task(checklist, 6)
            _task(checklist, 7)
            _task(checklist, -3, state=ChecklistTask.State.DONE, done_at=NOW)
            _task(checklist, -3, state=ChecklistTask.State.NOT_APPLICABLE)
        _task(_checklist(managed_customer(other_manager, date=TODAY)), -2)
        mine = builders.customer(account_manager=manager)
        ended = builders.contract(customer=mine, status=Contract.Status.ENDED)
        _task(_checklist(mine, ended), -2)


@pytest.mark.parametrize("n", [1, 20])
def test_onboarding_tasks_overdue_and_due_are_counted_and_linked_exactly(
    client, manager, other_manager, agent, n, django_assert_num_queries
):
    seed_tasks(manager, other_manager, agent, n=n)
    with django_assert_num_queries(1):
        tallies = onboarding_tallies(user=manager, today=TODAY)
    assert [(t.key, t.count) for t in tallies] == [("tasks_overdue", n), ("tasks_due", 2 * n)]
    client.force_login(manager)
    for tally in tallies:
        assert listed(client, tally.url) == tally.count, tally.key


@pytest.mark.parametrize("n", [1, 20])
def test_my_customers_open_cases_are_counted_and_linked_exactly(
    client, manager, other_manager, n, django_assert_num_queries
):
    mine = managed_customer(manager, date=TODAY)
    theirs = managed_customer(other_manager, date=TODAY)
    for i in range(n):
        make_case(f"open {i}", customer=mine)
    make_case("acknowledged", customer=mine, state=Case.State.ACKNOWLEDGED)
    make_case("resolved", customer=mine, state=Case.State.RESOLVED)
    make_case("Bob's", customer=theirs)
    make_case("nobody's")
    with django_assert_num_queries(1):
        tally = my_customers_cases_tally(user=manager)
    assert tally.count == n + 1
    client.force_login(manager)
    assert listed(client, tally.url) == n + 1
    assert timezone.now() == NOW


# --- Once today's sweep has run: the signals ----------------------------------------------


def sweep_of(date: dt.date, status=HealthSweep.Status.FINISHED) -> None:
    with acting_as("test:fixture"):
        HealthSweep.objects.create(date=date, status=status, claimed_at=NOW)


def signal(customer, kind: str, *, days_ago: int, **fields) -> HealthSignal:
    with acting_as("test:fixture"):
        return HealthSignal.objects.create(
            customer=customer,
            kind=kind,
            label=kind.replace("_", " ").capitalize(),
            opened_on=TODAY - dt.timedelta(days=days_ago),
            opened_reason=f"{kind} then",
            reason=f"{kind} now",
            **fields,
        )


def seed_signals(manager, other_manager, n: int = 1) -> dict:
    """Of my customers: ``n`` with a signal new today; Acme's dormant for 5 days,
    acknowledged by Alice, its urgent tickets for 9 days, its usage drop snoozed until
    tomorrow, its renewal snoozed until today (shown: its date came), a resolved one. Bob's
    customer's signal is not mine."""
    new = [managed_customer(manager, date=TODAY, name=f"New {i:02}") for i in range(n)]
    for customer in new:
        signal(customer, "no_data", days_ago=0)
    acme = managed_customer(manager, date=TODAY, name="Acme")
    dormant = signal(acme, "dormant", days_ago=5)
    signal_acknowledge(signal=dormant, by=manager)
    signal(acme, "urgent_tickets", days_ago=9)
    drop = signal(acme, "usage_drop", days_ago=2)
    signal_snooze(
        signal=drop, by=manager, until=TODAY + dt.timedelta(days=1), reason="x", today=TODAY
    )
    with acting_as("test:fixture"):
        signal(
            acme,
            "renewal_soon",
            days_ago=20,
            state=HealthSignal.State.SNOOZED,
            snoozed_until=TODAY,
            snooze_reason="y",
        )
        signal(
            acme,
            "error_rate",
            days_ago=20,
            state=HealthSignal.State.RESOLVED,
            resolved_on=TODAY - dt.timedelta(days=1),
        )
    signal(managed_customer(other_manager, date=TODAY, name="Bob's"), "dormant", days_ago=3)
    return {"new": new, "acme": acme}


def test_after_todays_sweep_my_open_signals_are_listed_new_first_then_unhandled(
    manager, other_manager
):
    seeded = seed_signals(manager, other_manager, n=2)
    sweep_of(TODAY)
    attention = customers_needing_attention(user=manager, date=TODAY)
    assert not attention.live and attention.customers == []
    assert [
        (line.signal.customer.name, line.signal.kind, line.age_text, line.handled_by)
        for line, _ in attention.signals
    ] == [
        ("New 00", "no_data", "new today", ""),
        ("New 01", "no_data", "new today", ""),
        ("Acme", "renewal_soon", "20 days", ""),
        ("Acme", "urgent_tickets", "9 days", ""),
        ("Acme", "dormant", "5 days", "Alice"),
    ]
    acme = seeded["acme"]
    assert attention.signals[-1][1] == f"/admin/customers/customer/{acme.pk}/change/"
    assert (attention.tally.count, attention.signal_tally.count) == (3, 5)


@pytest.mark.parametrize("n", [1, 20])
def test_the_signals_counts_link_to_exactly_those_customers_and_signals(
    client, manager, other_manager, n, django_assert_num_queries
):
    seed_signals(manager, other_manager, n=n)
    sweep_of(TODAY)
    with django_assert_num_queries(2):  # the sweep's state, the signals
        attention = customers_needing_attention(user=manager, date=TODAY)
    assert attention.tally.count == n + 1
    client.force_login(manager)
    assert listed(client, attention.tally.url) == n + 1
    # The snooze whose date came was woken by the sweep: the list counts what it stores.
    woken = HealthSignal.objects.get(kind="renewal_soon")
    woken.state = HealthSignal.State.OPEN
    with acting_as("test:sweep"):
        woken.save()
    assert listed(client, attention.signal_tally.url) == attention.signal_tally.count == n + 3


@pytest.mark.parametrize("status", [None, HealthSweep.Status.RUNNING, HealthSweep.Status.FAILED])
def test_until_todays_sweep_finished_the_flags_are_computed_live(manager, other_manager, status):
    seed_signals(manager, other_manager)
    sweep_of(TODAY - dt.timedelta(days=1))
    if status:
        sweep_of(TODAY, status=status)
    attention = customers_needing_attention(user=manager, date=TODAY)
    assert attention.live and attention.signals == []
    assert attention.tally.count == 0  # healthy usage: no flag, whatever the stored signals


def test_the_widget_says_when_it_shows_the_live_rules(client, manager, other_manager):
    seed_signals(manager, other_manager)
    client.force_login(manager)
    html = client.get("/admin/").content.decode()
    assert "as of the live rules" in html
    sweep_of(TODAY)
    html = client.get("/admin/").content.decode()
    widget = html.split('data-testid="widget-attention"')[1].split('data-testid="widget-')[0]
    assert "as of the live rules" not in widget
    assert "#signals" in widget and "being handled by Alice" in widget and "new today" in widget
