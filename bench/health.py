"""``python -m bench health``: customer health and the digest against one SQL statement.

On demo data (``seed_demo``, BENCH_CUSTOMERS customers with BENCH_DAYS days of usage),
for the digest dated the day after the last usage day, measures in this process (warm:
one counted run, then BENCH_RUNS timed runs, wall time, median reported):

- ``customer_health`` for every customer, and for a subset of 1,000 (same query count);
- ``digest_build`` for every recipient of ``digest_recipients``, queries per recipient;
- one hand-written SQL statement computing the same per-customer figures, fetched with
  ``fetchall``, whose figures must agree with ``customer_health``'s for every customer.

Prints a table and the health/SQL ratio, writes ``var/bench/health-<timestamp>.json``
and returns the report's rows; a target is missed when the ratio exceeds 2, a query count
depends on the number of customers, or a figure differs.

Database: the bench's large demo database (``bench.dataset``: BENCH_CUSTOMERS customers,
BENCH_DAYS days, 1,000,000 more tickets), seeded once and reused. Knobs: BENCH_RUNS (3),
and ``bench.dataset``'s.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from bench import RunFiles, database_server, dataset, knob, say
from bench.dataset import DJANGO_ENV
from bench.report import Row

SUBSET = 1_000
TARGET_RATIO = 2.0

# The baseline: every figure customer_health reports (and the baseline it flags error
# rates against), for every non-churned customer, written from docs/product.md as one
# statement of per-customer aggregates joined to the customers. Like customer_health,
# it gives the week-ago WAU and the error-rate baseline only next to a report for D-1.
BASELINE_SQL = """
WITH yesterday AS (
  SELECT customer_id, active_users_7d, requests, errors
  FROM customers_usagedaily WHERE date = %(yesterday)s
), week_ago AS (
  SELECT customer_id, active_users_7d FROM customers_usagedaily WHERE date = %(week_ago)s
), rates AS (
  SELECT customer_id, errors::float8 / requests AS rate
  FROM customers_usagedaily
  WHERE date >= %(baseline_from)s AND date < %(yesterday)s AND requests > 0
), medians AS (
  SELECT customer_id, count(*) AS days,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY rate) AS median
  FROM rates GROUP BY customer_id
), mads AS (
  SELECT customer_id,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(rate - median)) AS mad
  FROM rates JOIN medians USING (customer_id) GROUP BY customer_id
), logins AS (
  SELECT customer_id, max(last_login_at) AS last_login_at
  FROM customers_usagedaily WHERE date < %(date)s GROUP BY customer_id
), contract_ends AS (
  SELECT customer_id, min(end_date) AS end_date
  FROM customers_contract WHERE status = %(active)s AND end_date >= %(date)s
  GROUP BY customer_id
), urgent AS (
  SELECT customer_id, count(*) AS tickets
  FROM support_ticket WHERE priority = %(urgent)s AND status = ANY(%(open)s)
  GROUP BY customer_id
), seats AS (
  SELECT customer_id, sum(seats) AS seats
  FROM customers_contract
  WHERE status = %(active)s AND start_date <= %(yesterday)s
    AND (end_date IS NULL OR end_date >= %(yesterday)s)
  GROUP BY customer_id
), overdue AS (
  SELECT customer_id, count(*) AS invoices
  FROM billing_invoice WHERE status = %(invoice_open)s AND due_at < %(overdue_before)s
  GROUP BY customer_id
), findings AS (
  SELECT customer_id, count(*) AS cases
  FROM support_case WHERE state = ANY(%(case_open)s) AND kind = ANY(%(finding_kinds)s)
  GROUP BY customer_id
), breached AS (
  SELECT customer_id, count(*) AS tickets
  FROM support_ticket WHERE status = %(ticket_open)s AND sla_due_at <= %(now)s
  GROUP BY customer_id
), stalled AS (
  SELECT l.customer_id, %(date)s - min(t.due_date) AS days
  FROM onboarding_checklisttask t
  JOIN onboarding_checklist l ON l.id = t.checklist_id
  JOIN customers_contract k ON k.id = l.contract_id
  WHERE k.status = %(active)s AND t.state = %(task_open)s AND t.due_date < %(date)s
  GROUP BY l.customer_id
)
SELECT c.id, y.active_users_7d, w.active_users_7d, l.last_login_at, y.requests, y.errors,
       y.errors::float8 / nullif(y.requests, 0), m.median, d.mad,
       CASE WHEN y.customer_id IS NOT NULL THEN coalesce(m.days, 0) END,
       e.end_date, coalesce(u.tickets, 0), s.seats, coalesce(o.invoices, 0),
       coalesce(f.cases, 0), coalesce(b.tickets, 0), coalesce(st.days, 0)
FROM customers_customer c
LEFT JOIN yesterday y ON y.customer_id = c.id
LEFT JOIN week_ago w ON w.customer_id = y.customer_id
LEFT JOIN medians m ON m.customer_id = y.customer_id
LEFT JOIN mads d ON d.customer_id = y.customer_id
LEFT JOIN logins l ON l.customer_id = c.id
LEFT JOIN contract_ends e ON e.customer_id = c.id
LEFT JOIN urgent u ON u.customer_id = c.id
LEFT JOIN seats s ON s.customer_id = c.id
LEFT JOIN overdue o ON o.customer_id = c.id
LEFT JOIN findings f ON f.customer_id = c.id
LEFT JOIN breached b ON b.customer_id = c.id
LEFT JOIN stalled st ON st.customer_id = c.id
WHERE c.status <> %(churned)s
"""
FIGURES = (
    "wau",
    "wau_week_ago",
    "last_login_at",
    "requests",
    "errors",
    "error_rate",
    "baseline_median",
    "baseline_mad",
    "baseline_days",
    "contract_end",
    "urgent_open_tickets",
    "contracted_seats",
    "overdue_invoices",
    "billing_findings",
    "sla_breached_tickets",
    "onboarding_days_overdue",
)


@dataclass(frozen=True)
class Config:
    runs: int

    @classmethod
    def from_env(cls) -> Config:
        return cls(runs=knob("BENCH_RUNS", 3))


@dataclass
class Measurement:
    """One measured call: the customers and queries of its counted run, and the seconds
    of its timed runs."""

    name: str
    customers: int
    queries: int
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def summary(self) -> dict:
        return {**asdict(self), "median_seconds": round(self.median, 4)}


def _measure(name: str, runs: int, call: Callable[[], list]) -> tuple[Measurement, list]:
    """Run ``call`` (one item per customer) once counting its queries, then ``runs`` times
    timed; the measurement and the counted run's result."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        result = call()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return Measurement(name, len(result), len(captured), seconds), result


def _prepare(env: dict[str, str], cleanup: contextlib.ExitStack) -> dict:
    """Point ``env`` at the bench's large demo database (``bench.dataset``)."""
    prepared = dataset.prepare(database_server(env, cleanup), dataset.large())
    env.update(DJANGO_ENV, DATABASE_URL=prepared.pop("url"))
    return prepared


def _baseline(date: dt.date, now: dt.datetime) -> list[tuple]:
    """The figures of every customer, one statement, fetched into Python; tickets'
    service levels judged at ``now``."""
    from django.conf import settings
    from django.db import connection

    from billing.models import Invoice
    from customers.models import Contract, Customer
    from onboarding.models import ChecklistTask
    from opsdesk.health.flags import BILLING_FINDING_KINDS
    from support.models import Case, Ticket

    yesterday = date - dt.timedelta(days=1)
    params = {
        "date": date,
        "yesterday": yesterday,
        "week_ago": date - dt.timedelta(days=8),
        "baseline_from": yesterday - dt.timedelta(days=settings.OPSDESK_HEALTH_BASELINE_DAYS),
        "active": Contract.Status.ACTIVE,
        "urgent": Ticket.Priority.URGENT,
        "open": list(Ticket.OPEN_STATES),
        "churned": Customer.Status.CHURNED,
        "invoice_open": Invoice.Status.OPEN,
        "overdue_before": date - dt.timedelta(days=settings.OPSDESK_OVERDUE_AFTER_DAYS),
        "case_open": list(Case.OPEN_STATES),
        "finding_kinds": list(BILLING_FINDING_KINDS),
        "ticket_open": Ticket.Status.OPEN,
        "now": now,
        "task_open": ChecklistTask.State.OPEN,
    }
    with connection.cursor() as cursor:
        cursor.execute(BASELINE_SQL, params)
        return cursor.fetchall()


def _differences(date: dt.date, health: list, baseline: list[tuple]) -> list[str]:
    """Where the SQL's figures differ from customer_health's (and from the baselines
    ``usage_days`` gives it), one line per customer and figure."""
    from opsdesk.health.flags import usage_days

    yesterday = date - dt.timedelta(days=1)
    ids = [h.customer_id for h in health]
    days = {d.customer_id: d for d in usage_days(customer_ids=ids, first=yesterday, last=yesterday)}
    expected = {}
    for h in health:
        day = days.get(h.customer_id)
        baseline_figures = (
            (day.baseline_median, day.baseline_mad, day.baseline_days) if day else (None,) * 3
        )
        expected[h.customer_id] = (
            h.wau, h.wau_week_ago, h.last_login_at, h.requests, h.errors, h.error_rate,
            *baseline_figures, h.contract_end, h.urgent_open_tickets, h.contracted_seats,
            h.overdue_invoices, h.billing_findings, h.sla_breached_tickets,
            h.onboarding_days_overdue,
        )  # fmt: skip
    found = {row[0]: row[1:] for row in baseline}
    lines = [
        f"customer {pk}: only in {'customer_health' if pk in expected else 'the SQL'}"
        for pk in sorted(expected.keys() ^ found.keys())
    ]
    for pk in sorted(expected.keys() & found.keys()):
        for name, want, got in zip(FIGURES, expected[pk], found[pk], strict=True):
            same = (
                math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-12)
                if isinstance(want, float) and isinstance(got, float)
                else want == got
            )
            if not same:
                lines.append(f"customer {pk} {name}: customer_health {want}, SQL {got}")
    return lines


def _run(config: Config) -> dict:
    """Measure (a) customer_health, (b) the digests, (c) the SQL; check the figures."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from opsdesk.health.digest import digest_build, digest_recipients
    from opsdesk.health.flags import customer_health

    with connection.cursor() as cursor:
        cursor.execute("SELECT max(date) + 1, count(*) FROM customers_usagedaily")
        date, usage_rows = cursor.fetchone()
    say(f"digest date {date} (the day after the last usage day); {usage_rows} usage rows")
    runs = config.runs
    now = timezone.now()  # tickets' service levels, the same instant on both sides
    health_all, health = _measure(
        "customer_health, all", runs, lambda: customer_health(date=date, now=now)
    )
    subset_ids = sorted(h.customer_id for h in health)[:SUBSET]
    health_subset, _ = _measure(
        "customer_health, subset",
        runs,
        lambda: customer_health(date=date, customer_ids=subset_ids, now=now),
    )

    def digests() -> list:
        built = [digest_build(date=date, recipient=r) for r in digest_recipients()]
        return [h for digest in built for h in digest.attention + digest.others]

    digest = _measure("digest_build, every recipient", runs, digests)[0]
    per_recipient = []
    for recipient in digest_recipients():
        with CaptureQueriesContext(connection) as captured:
            built = digest_build(date=date, recipient=recipient)
        customers = len(built.attention) + len(built.others)
        per_recipient.append(
            {"key": recipient.key, "customers": customers, "queries": len(captured)}
        )
    sql, baseline = _measure("one SQL statement", runs, lambda: _baseline(date, now))
    differences = _differences(date, health, baseline)
    return {
        "date": date,
        "usage_rows": usage_rows,
        "measurements": [health_all, health_subset, digest, sql],
        "per_recipient": per_recipient,
        "differences": differences,
    }


def _report(measured: dict, ratio: float) -> None:
    health_all, health_subset = measured["measurements"][:2]
    print(f"{'measurement':<32}{'customers':>10}{'queries':>9}{'median s':>10}{'best s':>9}")
    for m in measured["measurements"]:
        print(f"{m.name:<32}{m.customers:>10}{m.queries:>9}{m.median:>10.3f}{min(m.seconds):>9.3f}")
    print(
        f"ratio customer_health/SQL = {ratio:.2f} (target <= {TARGET_RATIO:.2f}); "
        f"customer_health queries: {health_all.queries} for {health_all.customers} customers, "
        f"{health_subset.queries} for {health_subset.customers}"
    )
    print(
        "digest queries per recipient: "
        + ", ".join(
            f"{r['key']} {r['queries']} ({r['customers']} customers)"
            for r in measured["per_recipient"]
        )
    )


def _failures(measured: dict, ratio: float) -> list[str]:
    health_all, health_subset, _, _ = measured["measurements"]
    failures = []
    if ratio > TARGET_RATIO:
        failures.append(f"customer_health takes {ratio:.2f}x the SQL (target <= {TARGET_RATIO})")
    if health_all.queries != health_subset.queries:
        failures.append("customer_health's query count depends on the number of customers")
    if len({r["queries"] for r in measured["per_recipient"]}) > 1:
        failures.append("digest_build's query count depends on the recipient's customers")
    differences = measured["differences"]
    if differences:
        examples = "\n  ".join(differences[:8])
        failures.append(f"{len(differences)} figures differ, e.g.:\n  {examples}")
    return failures


def main() -> list[Row]:
    config = Config.from_env()
    files = RunFiles("health")
    env = dict(os.environ)
    service = "external" if env.get("DATABASE_URL") else "embedded"
    with contextlib.ExitStack() as cleanup:
        database = _prepare(env, cleanup)
        dataset.use(env["DATABASE_URL"])  # Django runs in this process
        from django.db import connections

        cleanup.callback(connections.close_all)
        measured = _run(config)

    health_all, *_, sql = measured["measurements"]
    ratio = health_all.median / sql.median
    _report(measured, ratio)
    failures = _failures(measured, ratio)
    for failure in failures:
        say(f"FAILED: {failure}")
    result = {
        "timestamp": files.stamp,
        "config": asdict(config),
        "database": {"service": service, **database},
        "digest_date": measured["date"].isoformat(),
        "usage_rows": measured["usage_rows"],
        "measurements": [m.summary() for m in measured["measurements"]],
        "per_recipient": measured["per_recipient"],
        "ratio": round(ratio, 3),
        "targets": {"ratio_max": TARGET_RATIO, "queries_independent_of_customers": True},
        "figure_differences": len(measured["differences"]),
        "failures": failures,
    }
    files.write_results(result)
    health_subset, digest = measured["measurements"][1:3]
    per_recipient = measured["per_recipient"]
    return [
        Row.held(
            "health", f"customer_health, {health_all.customers} customers",
            f"{health_all.median * 1000:.0f} ms", f"{sql.median * 1000:.0f} ms (one SQL statement)",
            ratio, TARGET_RATIO,
        ),
        Row.check(
            "health", "customer_health queries",
            f"{health_all.queries} for {health_all.customers} customers, "
            f"{health_subset.queries} for {health_subset.customers}",
            health_all.queries == health_subset.queries, "same",
        ),
        Row(
            "health", "digest_build, every recipient", f"{digest.median * 1000:.0f} ms",
        ),
        Row.check(
            "health", "digest queries per recipient",
            ", ".join(f"{r['key']} {r['queries']}" for r in per_recipient),
            len({r["queries"] for r in per_recipient}) <= 1, "same for every recipient",
        ),
        Row.check(
            "health", "figures agree with the SQL",
            f"{len(measured['differences'])} differing", not measured["differences"], "0",
        ),
    ]  # fmt: skip
