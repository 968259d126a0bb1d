"""The bench's demo databases, seeded once and reused: one helper for every benchmark.

``LARGE`` is the large dataset: ``seed_demo --customers 10000 --days 365`` plus
1,000,000 tickets; ``SMALL`` is its few-hundred-row reference (200 customers, 3,000 more
tickets). Each lives in its own database on the server of ``DATABASE_URL`` (else the
embedded PostgreSQL), is migrated on every run and seeded only when it does not hold
its dataset yet (or BENCH_RESEED=1): 10,000 customers take minutes.

The extra tickets are copies of the demo's own tickets (subject numbered, mostly closed,
spread over the year), written with one ``INSERT ... SELECT`` and their ``+`` history
rows, attributed ``bench:dataset``, in the same statement (``python -m bench.dataset``,
run by ``prepare`` in a subprocess with Django set up).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg

from bench import knob, say
from devstack.stack import PY, ROOT

SEED = 7
DJANGO_ENV = {
    "DJANGO_SETTINGS_MODULE": "opsdesk.settings",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "opsdesk-bench-only-secret-key-not-for-production-use-0123456789",
}
TICKETS_ACTOR = "bench:dataset"


@dataclass(frozen=True)
class Dataset:
    name: str
    customers: int
    days: int
    tickets: int  # added on top of seed_demo's

    def url(self, server: str) -> str:
        return urlsplit(server)._replace(path=f"/{self.name}").geturl()


def large() -> Dataset:
    return Dataset(
        "opsdesk_bench_demo",
        customers=knob("BENCH_CUSTOMERS", 10_000),
        days=knob("BENCH_DAYS", 365),
        tickets=int(os.environ.get("BENCH_TICKETS") or 1_000_000),
    )


def small() -> Dataset:
    return Dataset("opsdesk_bench_small", customers=200, days=knob("BENCH_DAYS", 365), tickets=3000)


def reseed() -> bool:
    return os.environ.get("BENCH_RESEED", "") not in ("", "0")


def contents(url: str) -> dict:
    """What the database holds: customers, days of usage (first to last), invoices and
    the tickets added by this module."""
    empty = {"customers": 0, "days": 0, "invoices": 0, "added_tickets": 0, "tickets": 0}
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('billing_invoice')").fetchone()[0] is None:
            return empty
        first, last = conn.execute(
            "SELECT min(date), max(date) FROM customers_usagedaily"
        ).fetchone()
        row = conn.execute(
            "SELECT (SELECT count(*) FROM customers_customer),"
            " (SELECT count(*) FROM billing_invoice),"
            " (SELECT count(*) FROM support_ticket),"
            " (SELECT count(*) FROM support_historicalticket"
            "   WHERE history_actor = %s AND history_type = '+')",
            [TICKETS_ACTOR],
        ).fetchone()
    return {
        "customers": row[0],
        "days": (last - first).days + 1 if first else 0,
        "invoices": row[1],
        "tickets": row[2],
        "added_tickets": row[3],
    }


def _seed_demo(env: dict[str, str], dataset: Dataset) -> dict:
    """Run ``seed_demo``, passing its progress through; its seconds in all and until its
    last chunk of customers was written (then it reconciles the year, and more)."""
    command = [
        PY, "manage.py", "seed_demo", f"--customers={dataset.customers}",
        f"--days={dataset.days}", f"--seed={SEED}", "--force",
    ]  # fmt: skip
    started = time.monotonic()
    chunks_done = 0.0
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, bufsize=1
    ) as seeding:
        for line in seeding.stderr:
            sys.stderr.write(line)
            if line.startswith("seed_demo: customers"):
                chunks_done = time.monotonic() - started
    if seeding.returncode:
        raise SystemExit(f"seed_demo failed with exit code {seeding.returncode}")
    return {
        "seed_seconds": round(time.monotonic() - started, 1),
        "customers_seconds": round(chunks_done, 1),
    }


def prepare(server: str, dataset: Dataset) -> dict:
    """Database ``dataset.name`` on ``server``, migrated and holding ``dataset`` (seeded
    unless it already does): ``{"name", "url", "reused", "seed_seconds", ...}``."""
    url = dataset.url(server)
    env = {**os.environ, **DJANGO_ENV, "DATABASE_URL": url}
    with psycopg.connect(server, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dataset.name])
        held = contents(url) if exists.fetchone() else None
        has_demo = bool(
            held
            and held["customers"] == dataset.customers
            and held["days"] >= dataset.days
            and held["invoices"]
        )
        if reseed() or not has_demo:
            conn.execute(f'DROP DATABASE IF EXISTS "{dataset.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{dataset.name}"')
            has_demo = False
    subprocess.run([PY, "manage.py", "migrate", "--verbosity=0"], cwd=ROOT, env=env, check=True)
    result = {"name": dataset.name, "url": url, "reused": has_demo}
    if not has_demo:
        say(f"seeding {dataset.name}: {dataset.customers} customers x {dataset.days} days")
        result.update(_seed_demo(env, dataset))
        held = contents(url)
    missing = dataset.tickets - held["added_tickets"]
    if missing > 0:
        say(f"adding {missing} tickets to {dataset.name}")
        started = time.monotonic()
        subprocess.run([PY, "-m", "bench.dataset", str(missing)], cwd=ROOT, env=env, check=True)
        result["tickets_seconds"] = round(time.monotonic() - started, 1)
        result["reused"] = False
    if not result["reused"]:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # as autovacuum would have, before it is measured
    result.update(contents(url))
    say(
        f"{'reusing' if result['reused'] else 'seeded'} {dataset.name}: "
        f"{result['customers']} customers, {result['days']} days of usage, "
        f"{result['tickets']} tickets"
    )
    return result


def use(url: str) -> None:
    """Set Django up in this process (once) and point its default connection at ``url``:
    the benchmarks run one after another in one process, on one database or two."""
    from unittest import mock

    import django

    with mock.patch.dict(os.environ, {**DJANGO_ENV, "DATABASE_URL": url}):
        django.setup()
    import dj_database_url
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    connection.close()
    parsed = dj_database_url.parse(url)
    for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT"):
        connection.settings_dict[key] = parsed[key]
    connection.close_pool()  # a pool opened before connects to the previous database
    ContentType.objects.clear_cache()  # ids are per database


# Copies of the demo's tickets, numbered: the n-th copy is of the (n mod count)-th ticket,
# created n mod 365 days (and some minutes) before now; copies older than two weeks are
# closed (as most of a year's tickets are), the newest keep their template's status and
# its service levels, moved by as much as the copy is older or younger (the queue's order
# reads them). ``fingerprint`` is left empty: the copies are not deduplicated alerts.
TICKETS_SQL = """
WITH template AS (
  SELECT row_number() OVER (ORDER BY id) - 1 AS n, * FROM support_ticket
), copies AS (
  SELECT g, t.*, now() - make_interval(days => g %% 365, mins => g %% 1440) AS at
  FROM generate_series(%(first)s, %(last)s) AS g
  JOIN template t ON t.n = g %% (SELECT count(*) FROM template)
), new AS (
  INSERT INTO support_ticket (
    subject, message, requester_email, requester_name, category, priority, status,
    first_response_due_at, first_responded_at, created_at, updated_at, assignee_id,
    customer_id, webhook_event_id, fingerprint, last_seen_at, latest_error_rate,
    occurrence_count, tenant_id, queue, sla_policy_id, first_response_warn_at,
    next_response_due_at, next_response_warn_at, resolution_due_at, resolution_warn_at,
    sla_paused_at, sla_due_at, sla_warn_at
  )
  SELECT left(subject, 180) || ' (#' || g || ')', message, requester_email,
         requester_name, category, priority,
         CASE WHEN kept THEN status ELSE 'closed' END,
         at + interval '8 hours', CASE WHEN at < now() - interval '1 day'
         THEN at + interval '2 hours' END, at, at, assignee_id, customer_id, NULL, '',
         NULL, NULL, occurrence_count, tenant_id, queue, sla_policy_id,
         CASE WHEN kept THEN first_response_warn_at + shift END,
         CASE WHEN kept THEN next_response_due_at + shift END,
         CASE WHEN kept THEN next_response_warn_at + shift END,
         CASE WHEN kept THEN resolution_due_at + shift END,
         CASE WHEN kept THEN resolution_warn_at + shift END,
         CASE WHEN kept THEN sla_paused_at + shift END,
         CASE WHEN kept THEN sla_due_at + shift END,
         CASE WHEN kept THEN sla_warn_at + shift END
  FROM (
    SELECT *, at > now() - interval '14 days' AS kept, at - created_at AS shift FROM copies
  ) AS c
  RETURNING *
)
"""


def add_tickets(count: int, *, batch: int = 100_000) -> None:
    """Insert ``count`` ticket copies and their history rows, ``batch`` per transaction."""
    from django.db import connection, transaction

    from audit.bulk import _history_insert
    from audit.context import acting_as
    from support.models import Ticket

    with acting_as(TICKETS_ACTOR):
        history_sql, history_params = _history_insert(Ticket, "new", "bench dataset")
    with acting_as(TICKETS_ACTOR), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM support_historicalticket WHERE history_actor = %s",
            [TICKETS_ACTOR],
        )
        done = cursor.fetchone()[0]
        for first in range(done, done + count, batch):
            last = min(first + batch, done + count) - 1
            with transaction.atomic():
                cursor.execute(
                    TICKETS_SQL + history_sql.replace("%s", "%(p{})s").format(*range(4)),
                    {
                        "first": first,
                        "last": last,
                        **{f"p{i}": value for i, value in enumerate(history_params)},
                    },
                )
            say(f"tickets {first + 1}-{last + 1} of {done + count}")


if __name__ == "__main__":
    import django

    django.setup()
    add_tickets(int(sys.argv[1]))
