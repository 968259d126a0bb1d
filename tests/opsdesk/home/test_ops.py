"""An ops lead's home: open exceptions by kind and age, the oldest of each kind named and
linked, this month's and last month's reconciliation, failed webhook events, and work
per owner; each count linked to the page listing exactly its rows."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from audit.context import acting_as
from billing.models import ReconciliationRun
from kit import roles
from opsdesk.home.selectors import exceptions_by_age, reconciliation_months, work_per_owner
from support.models import Case
from tests.opsdesk.casework.cases import make_case
from tests.opsdesk.home.records import listed
from tests.personas import staff_user
from tests.support.queue_pages import make_ticket

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.UTC)
FULFIL, MISSING = Case.Kind.FAILED_FULFILMENT, Case.Kind.MISSING_INVOICE


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def seed_cases(n: int = 1) -> None:
    """Failed fulfilments: ``n`` opened 12 h ago, one 2 d, one acknowledged 5 d, one 10 d
    ("oldest"); a missing invoice 1 d exactly (the edge: "1-3 days"); out: resolved, waived."""
    for i in range(n):
        make_case(f"new {i}", days_old=0.5)
    make_case("two days", days_old=2)
    make_case("five days", days_old=5, state=Case.State.ACKNOWLEDGED)
    make_case("oldest", days_old=10)
    make_case("a day", days_old=1, kind=MISSING)
    make_case("resolved", days_old=20, state=Case.State.RESOLVED)
    make_case("waived", days_old=20, state=Case.State.WAIVED)


@pytest.mark.parametrize("n", [1, 20])
def test_exceptions_by_kind_and_age_are_exact_and_linked(
    client, ops_lead, n, django_assert_num_queries
):
    seed_cases(n)
    with django_assert_num_queries(2):
        rows = exceptions_by_age(now=NOW)
    assert [(r.kind, [b.count for b in r.buckets], r.total.count) for r in rows] == [
        (FULFIL, [n, 1, 1, 1], n + 3),
        (MISSING, [0, 1, 0, 0], 1),
        ("all", [n, 2, 1, 1], n + 4),
    ]
    assert [r.oldest.summary if r.oldest else None for r in rows] == ["oldest", "a day", None]
    client.force_login(ops_lead)
    for row in rows:
        for tally in (*row.buckets, row.total):
            assert listed(client, tally.url) == tally.count, tally.key


def test_no_open_case_is_no_row():
    make_case("resolved", state=Case.State.RESOLVED)
    assert exceptions_by_age(now=NOW) == []


@pytest.mark.parametrize("n", [1, 20])
def test_reconciliation_of_this_month_and_last(client, ops_lead, n, django_assert_num_queries):
    with acting_as("test:fixture"):
        ReconciliationRun.objects.create(
            month=dt.date(2026, 5, 1), status="failed", started_at=NOW - dt.timedelta(days=2)
        )
        latest = ReconciliationRun.objects.create(
            month=dt.date(2026, 5, 1), status="succeeded", started_at=NOW - dt.timedelta(days=1)
        )
        ReconciliationRun.objects.create(month=dt.date(2026, 4, 1), status="succeeded")
    for i in range(n):
        make_case(f"finding {i}", kind=MISSING, period=dt.date(2026, 5, 1))
    make_case("fixed", kind=MISSING, period=dt.date(2026, 5, 1), state=Case.State.RESOLVED)
    make_case("june", kind=MISSING, period=dt.date(2026, 6, 1))
    with django_assert_num_queries(2):
        months = reconciliation_months(today=NOW.date())
    assert [(m.month, m.run, m.findings.count) for m in months] == [
        (dt.date(2026, 6, 1), None, 1),
        (dt.date(2026, 5, 1), latest, n),
    ]
    assert months[1].run_url == f"/admin/billing/reconciliationrun/{latest.pk}/change/"
    client.force_login(ops_lead)
    for month in months:
        assert listed(client, month.findings.url) == month.findings.count


@pytest.mark.parametrize("n", [1, 20])
def test_work_per_owner_is_exact_and_linked(client, agent, ops_lead, n, django_assert_num_queries):
    gone = staff_user("gail", roles.SUPPORT, is_active=False)
    for i in range(n):
        make_ticket(f"sam's {i}", assignee=agent)
        make_case(f"olga's {i}", owner=ops_lead)
    make_ticket("nobody's")
    make_ticket("gail's", assignee=gone)
    make_ticket("solved", assignee=agent, status="solved")
    make_case("nobody's case")
    with django_assert_num_queries(3):
        rows = work_per_owner()
    people = [("Sam", n, 0), ("Olga", 0, n), ("Gail", 1, 0)]
    busiest_first = sorted(people, key=lambda r: (-(r[1] + r[2]), r[0]))
    assert [(r.name, r.tickets.count, r.cases.count) for r in rows] == [
        *busiest_first,
        ("Nobody", 1, 1),
    ]
    gail = next(r for r in rows if r.name == "Gail")
    assert (gail.tickets.url, gail.cases.url) == ("", "")  # she left: no filter offers her
    client.force_login(ops_lead)
    for row in rows:
        for tally in (row.tickets, row.cases):
            if tally.url:
                assert listed(client, tally.url) == tally.count, tally.key
