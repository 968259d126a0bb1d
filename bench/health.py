"""``python -m bench health``: customer health and the digest against one SQL statement.

On demo data (``seed_demo``, BENCH_CUSTOMERS customers with BENCH_DAYS days of usage),
for the digest dated the day after the last usage day, measures in this process (warm:
one counted run, then BENCH_RUNS timed runs, wall time, median reported):

- ``customer_health`` for every customer, and for a subset of 1,000 (same query count);
- ``digest_build`` for every recipient of ``digest_recipients``, queries per recipient;
- one hand-written SQL statement computing the same per-customer figures, fetched with
  ``fetchall``, whose figures must agree with ``customer_health``'s for every customer.

Prints a table and the health/SQL ratio, writes ``var/bench/health-<timestamp>.json``,
and exits non-zero when the ratio exceeds 2, a query count depends on the number of
customers, or a figure differs.

Database: ``opsdesk_bench_health`` on the server of ``DATABASE_URL``, else the embedded
PostgreSQL. It is seeded once (minutes for 10,000 customers x 365 days) and reused while
it holds exactly BENCH_CUSTOMERS customers and at least BENCH_DAYS days of usage;
BENCH_RESEED=1 drops and seeds it again. Knobs: BENCH_CUSTOMERS (10000), BENCH_DAYS
(365), BENCH_RUNS (3), BENCH_RESEED.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from unittest import mock
from urllib.parse import urlsplit

import psycopg

from bench import knob, say
from opsdesk import embedded
from opsdesk.stack import PY, ROOT, VAR, _database

DATABASE = "opsdesk_bench_health"
SEED = 7
SUBSET = 1_000
TARGET_RATIO = 2.0
DJANGO_ENV = {
    "DJANGO_SETTINGS_MODULE": "opsdesk.settings",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "opsdesk-bench-only-secret-key-not-for-production-use-0123456789",
}

# The baseline: every figure customer_health reports (and the baseline it flags error
# rates against), for every non-churned customer, written from PRODUCT.md as one
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
)
SELECT c.id, y.active_users_7d, w.active_users_7d, l.last_login_at, y.requests, y.errors,
       y.errors::float8 / nullif(y.requests, 0), m.median, d.mad,
       CASE WHEN y.customer_id IS NOT NULL THEN coalesce(m.days, 0) END,
       e.end_date, coalesce(u.tickets, 0)
FROM customers_customer c
LEFT JOIN yesterday y ON y.customer_id = c.id
LEFT JOIN week_ago w ON w.customer_id = y.customer_id
LEFT JOIN medians m ON m.customer_id = y.customer_id
LEFT JOIN mads d ON d.customer_id = y.customer_id
LEFT JOIN logins l ON l.customer_id = c.id
LEFT JOIN contract_ends e ON e.customer_id = c.id
LEFT JOIN urgent u ON u.customer_id = c.id
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
)


@dataclass(frozen=True)
class Config:
    customers: int
    days: int
    runs: int
    reseed: bool

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            customers=knob("BENCH_CUSTOMERS", 10_000),
            days=knob("BENCH_DAYS", 365),
            runs=knob("BENCH_RUNS", 3),
            reseed=os.environ.get("BENCH_RESEED", "") not in ("", "0"),
        )


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


def _contents(url: str) -> tuple[int, int]:
    """The customers and the days of usage (first to last) the database holds."""
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('customers_usagedaily')").fetchone()[0] is None:
            return 0, 0
        customers = conn.execute("SELECT count(*) FROM customers_customer").fetchone()[0]
        first, last = conn.execute(
            "SELECT min(date), max(date) FROM customers_usagedaily"
        ).fetchone()
    return customers, (last - first).days + 1 if first else 0


def _prepare(env: dict[str, str], config: Config, cleanup: contextlib.ExitStack) -> dict:
    """Point ``env`` at the bench database, seeded for ``config`` (reused when it is)."""
    if _database(env):
        cleanup.callback(embedded.postgres_stop, VAR)
        cleanup.callback(say, "stopping the embedded PostgreSQL")
    server = env["DATABASE_URL"]
    url = urlsplit(server)._replace(path=f"/{DATABASE}").geturl()
    env.update(DJANGO_ENV, DATABASE_URL=url)
    with psycopg.connect(server, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
        customers, days = _contents(url) if exists.fetchone() else (0, 0)
        reuse = not config.reseed and customers == config.customers and days >= config.days
        if not reuse:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    subprocess.run([PY, "manage.py", "migrate", "--verbosity=0"], cwd=ROOT, env=env, check=True)
    if reuse:
        say(f"reusing {DATABASE}: {customers} customers, {days} days of usage")
        return {"reused": True, "seed_seconds": None}
    say(f"seeding {DATABASE}: {config.customers} customers x {config.days} days (minutes)")
    started = time.monotonic()
    subprocess.run(
        [PY, "manage.py", "seed_demo", f"--customers={config.customers}",
         f"--days={config.days}", f"--seed={SEED}", "--force"],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # as autovacuum would have, before it is measured
    seconds = round(time.monotonic() - started, 1)
    say(f"seeded and vacuumed {DATABASE} in {seconds} s; later runs reuse it")
    return {"reused": False, "seed_seconds": seconds}


def _baseline(date: dt.date) -> list[tuple]:
    """The figures of every customer, one statement, fetched into Python."""
    from django.conf import settings
    from django.db import connection

    from customers.models import Contract, Customer
    from support.models import Ticket
    from support.tickets import OPEN_STATES

    yesterday = date - dt.timedelta(days=1)
    params = {
        "date": date,
        "yesterday": yesterday,
        "week_ago": date - dt.timedelta(days=8),
        "baseline_from": yesterday - dt.timedelta(days=settings.OPSDESK_HEALTH_BASELINE_DAYS),
        "active": Contract.Status.ACTIVE,
        "urgent": Ticket.Priority.URGENT,
        "open": list(OPEN_STATES),
        "churned": Customer.Status.CHURNED,
    }
    with connection.cursor() as cursor:
        cursor.execute(BASELINE_SQL, params)
        return cursor.fetchall()


def _differences(date: dt.date, health: list, baseline: list[tuple]) -> list[str]:
    """Where the SQL's figures differ from customer_health's (and from the baselines
    ``usage_days`` gives it), one line per customer and figure."""
    from opsdesk.health import usage_days

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
            *baseline_figures, h.contract_end, h.urgent_open_tickets,
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

    from opsdesk.digest import digest_build, digest_recipients
    from opsdesk.health import customer_health

    with connection.cursor() as cursor:
        cursor.execute("SELECT max(date) + 1, count(*) FROM customers_usagedaily")
        date, usage_rows = cursor.fetchone()
    say(f"digest date {date} (the day after the last usage day); {usage_rows} usage rows")
    runs = config.runs
    health_all, health = _measure("customer_health, all", runs, lambda: customer_health(date=date))
    subset_ids = sorted(h.customer_id for h in health)[:SUBSET]
    health_subset, _ = _measure(
        "customer_health, subset",
        runs,
        lambda: customer_health(date=date, customer_ids=subset_ids),
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
    sql, baseline = _measure("one SQL statement", runs, lambda: _baseline(date))
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


def main() -> int:
    config = Config.from_env()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = VAR / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    service = "external" if env.get("DATABASE_URL") else "embedded"
    with contextlib.ExitStack() as cleanup:
        database = _prepare(env, config, cleanup)
        # Django runs in this process; the other benchmarks keep their environment.
        with mock.patch.dict(os.environ, env):
            import django

            django.setup()
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
        "timestamp": stamp,
        "config": asdict(config),
        "database": {"service": service, "name": DATABASE, **database},
        "digest_date": measured["date"].isoformat(),
        "usage_rows": measured["usage_rows"],
        "measurements": [m.summary() for m in measured["measurements"]],
        "per_recipient": measured["per_recipient"],
        "ratio": round(ratio, 3),
        "targets": {"ratio_max": TARGET_RATIO, "queries_independent_of_customers": True},
        "figure_differences": len(measured["differences"]),
        "failures": failures,
    }
    path = out_dir / f"health-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    say(f"results in {path}")
    return 1 if failures else 0
