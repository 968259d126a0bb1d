"""``python -m bench crm_import``: the initial load of the CRM's accounts and contracts
(``import_crm``, ``customers.crm_import``) at the size of a real CRM.

Generates, deterministically (seed 7), an accounts file of BENCH_CRM_ACCOUNTS (10,000)
accounts and a contracts file of two contracts each (20,000), with the CRM events' fields
as columns: most accounts with a tenant id and one of 25 account managers (a few with an
address opsdesk does not know: warnings), contracts of every plan, status and currency,
with integrations, four in ten active. Into a fresh database (``opsdesk_bench_crm`` on the
server of ``DATABASE_URL``, else the embedded PostgreSQL; dropped and migrated each run)
it runs ``import_crm`` twice in this process, timing each:

- the first import: every account and contract created, each with its ``+`` history row
  attributed ``command:import_crm`` (counted), and the active contracts' checklists handed
  to the onboarding worker after each batch commits (the tasks go to the ``opsdesk-bench``
  queue, which no worker reads and which is deleted at the end);
- the re-import of the same files: every row unchanged, not one history row written and
  no record's ``updated_at`` moved.

For reference, the same kind of rows taken one at a time by ``account_upsert`` and
``contract_upsert`` (the webhook's path: a lock, a locked read and a save per row; 1,000
accounts and 2,000 contracts of their own), per row and extrapolated to the files' size.

Targets: the first import under 60 s (docs/contracts/crm.md#pull), the re-import under
60 s too, the history and re-import checks exact. Knobs: BENCH_CRM_ACCOUNTS (10000).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from bench import QUEUE, RunFiles, database_server, dataset, knob, say
from bench.report import Row
from devstack.stack import PY, ROOT

DATABASE = "opsdesk_bench_crm"
SEED = 7
TARGET_SECONDS = 60.0
MANAGERS = 25
PER_ROW_ACCOUNTS = 1000
ACTOR = "command:import_crm"
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell")
SUFFIXES = ("GmbH", "Ltd", "Inc.", "S.A.", "B.V.", "AB", "Oy", "plc")
INTEGRATIONS = ("sso", "crm_sync", "data_import", "slack", "api", "warehouse")
ACCOUNT_COLUMNS = "crm_id,name,tenant_id,account_manager_email,status,updated_at"
CONTRACT_COLUMNS = (
    "crm_contract_id,crm_account_id,plan,seats,monthly_fee,price_per_extra_seat,currency,"
    "start_date,end_date,status,integrations,updated_at"
)
SINCE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _moment(minutes: int) -> str:
    return (SINCE + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_files(directory: Path, accounts: int, *, prefix: str = "BENCH") -> tuple[Path, Path]:
    """The accounts and contracts files, the same for the same arguments."""
    rng = random.Random(SEED)
    account_lines, contract_lines = [ACCOUNT_COLUMNS], [CONTRACT_COLUMNS]
    for n in range(accounts):
        crm_id = f"001{prefix}{n:06d}"
        name = f"{rng.choice(COMPANIES)} {n} {rng.choice(SUFFIXES)}"
        tenant = f"{prefix.lower()}-tenant-{n:06d}" if rng.random() < 0.9 else ""
        pick = rng.random()
        manager = (
            f"am{n % MANAGERS:02d}@opsdesk.test"
            if pick < 0.97
            else f"former-{n}@example.com"
            if pick < 0.99
            else ""
        )
        status = rng.choices(("active", "onboarding", "churned"), (80, 15, 5))[0]
        account_lines.append(f'{crm_id},"{name}",{tenant},{manager},{status},{_moment(n)}')
        for k in range(2):
            start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(900))
            if k == 0:
                status, end = "ended", start + dt.timedelta(days=364)
            else:
                status = rng.choices(("active", "draft", "cancelled"), (80, 15, 5))[0]
                end = start + dt.timedelta(days=729) if rng.random() < 0.5 else None
            integrations = " ".join(sorted(rng.sample(INTEGRATIONS, rng.randrange(4))))
            contract_lines.append(
                ",".join(
                    [
                        f"800{prefix}{n:06d}{k}",
                        crm_id,
                        rng.choice(("starter", "growth", "enterprise")),
                        str(rng.randrange(5, 500)),
                        f"{rng.randrange(100, 20000)}.{rng.randrange(100):02d}",
                        f"{rng.randrange(5, 60)}.00",
                        rng.choices(("EUR", "USD", "GBP"), (70, 20, 10))[0],
                        start.isoformat(),
                        end.isoformat() if end else "",
                        status,
                        integrations,
                        _moment(n + k + 1),
                    ]
                )
            )
    paths = directory / f"accounts-{prefix}.csv", directory / f"contracts-{prefix}.csv"
    paths[0].write_text("\n".join(account_lines) + "\n")
    paths[1].write_text("\n".join(contract_lines) + "\n")
    return paths


def _fresh_database(server: str) -> str:
    url = urlsplit(server)._replace(path=f"/{DATABASE}").geturl()
    with psycopg.connect(server, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    say(f"migrating a fresh {DATABASE}")
    import subprocess

    env = {**os.environ, **dataset.DJANGO_ENV, "DATABASE_URL": url}
    subprocess.run([PY, "manage.py", "migrate", "--verbosity=0"], cwd=ROOT, env=env, check=True)
    return url


def _delete_queue() -> int:
    """Delete the bench's queue (and its binding); the number of tasks it held."""
    from kombu import Exchange, Queue

    from opsdesk.celery import app

    with app.connection_for_write() as conn:
        queue = Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE)(conn.default_channel)
        queue.declare()
        purged = queue.purge() or 0
        queue.delete()
    return purged


def _staff() -> None:
    """The account managers the accounts name (am00@ to am24@opsdesk.test)."""
    from django.contrib.auth import get_user_model

    from audit.context import acting_as

    with acting_as("bench:crm_import"):
        for n in range(MANAGERS):
            get_user_model().objects.create_user(
                username=f"am{n:02d}", email=f"am{n:02d}@opsdesk.test", is_staff=True
            )


def _counts() -> dict:
    from customers.models import Contract, Customer

    return {
        "customers": Customer.objects.count(),
        "contracts": Contract.objects.count(),
        "customer_history": Customer.history.filter(history_actor=ACTOR).count(),
        "contract_history": Contract.history.filter(history_actor=ACTOR).count(),
        "customer_history_created": Customer.history.filter(
            history_actor=ACTOR, history_type="+"
        ).count(),
        "contract_history_created": Contract.history.filter(
            history_actor=ACTOR, history_type="+"
        ).count(),
        "last_updated": max(
            filter(
                None,
                [
                    Customer.objects.order_by("-updated_at")
                    .values_list("updated_at", flat=True)[:1]
                    .first(),
                    Contract.objects.order_by("-updated_at")
                    .values_list("updated_at", flat=True)[:1]
                    .first(),
                ],
            ),
            default=None,
        ),
        "active_contracts": Contract.objects.filter(status="active").count(),
    }


def _import(accounts: Path, contracts: Path) -> tuple[float, str]:
    """``import_crm`` as from the shell, in this process: its seconds and summary line."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    try:
        call_command("import_crm", str(accounts), str(contracts), stdout=out, stderr=err)
    except CommandError as exc:
        raise SystemExit(f"import_crm rejected rows: {exc}\n{err.getvalue()[:2000]}") from None
    return time.perf_counter() - started, out.getvalue().strip()


def _per_row(directory: Path) -> dict:
    """``account_upsert`` and ``contract_upsert`` one row at a time (their own rows)."""
    from django.db import transaction

    from customers.crm import CrmAccount, CrmContract, account_upsert, contract_upsert

    accounts, contracts = write_files(directory, PER_ROW_ACCOUNTS, prefix="ROW")
    seconds = {}
    for kind, path, schema, upsert in (
        ("accounts", accounts, CrmAccount, account_upsert),
        ("contracts", contracts, CrmContract, contract_upsert),
    ):
        with path.open(newline="") as text:
            rows = [
                schema.model_validate(
                    {k: v.split() if k == "integrations" else v for k, v in row.items() if v}
                )
                for row in csv.DictReader(text)
            ]
        started = time.perf_counter()
        for row in rows:
            with transaction.atomic():
                upsert(row, actor=ACTOR)
        seconds[kind] = (time.perf_counter() - started) / len(rows)
    return seconds


def main() -> list[Row]:
    accounts_count = knob("BENCH_CRM_ACCOUNTS", 10_000)
    files = RunFiles("crm_import")
    env = dict(os.environ)
    with contextlib.ExitStack() as cleanup:
        url = _fresh_database(database_server(env, cleanup))
        dataset.use(url)
        from django.db import connections

        from kit.publish import publishes_sent
        from opsdesk.celery import app

        cleanup.callback(connections.close_all)
        # The checklists the import hands to the onboarding worker: to a queue of the
        # bench's own, deleted at the end (no worker reads it).
        app.conf.task_default_queue = QUEUE
        cleanup.callback(lambda: say(f"deleted the {QUEUE} queue ({_delete_queue()} tasks)"))
        directory = Path(tempfile.mkdtemp(prefix="opsdesk-bench-crm-"))
        cleanup.callback(shutil.rmtree, directory, ignore_errors=True)
        _staff()
        accounts, contracts = write_files(directory, accounts_count)
        sizes = {p.name: p.stat().st_size for p in (accounts, contracts)}
        say(f"import_crm of {accounts_count} accounts and {2 * accounts_count} contracts: {sizes}")

        first_seconds, first_summary = _import(accounts, contracts)
        say(f"first import: {first_seconds:.1f} s; {first_summary}")
        started = time.perf_counter()
        publishes_sent(timeout=600)
        publish_seconds = time.perf_counter() - started
        after_first = _counts()

        again_seconds, again_summary = _import(accounts, contracts)
        say(f"re-import: {again_seconds:.1f} s; {again_summary}")
        publishes_sent(timeout=600)
        after_again = _counts()

        say(f"per-row reference: {PER_ROW_ACCOUNTS} accounts, {2 * PER_ROW_ACCOUNTS} contracts")
        per_row = _per_row(directory)

    contracts_count = 2 * accounts_count
    expected = {
        "customers": accounts_count,
        "contracts": contracts_count,
        "customer_history": accounts_count,
        "contract_history": contracts_count,
        "customer_history_created": accounts_count,
        "contract_history_created": contracts_count,
    }
    history_ok = all(after_first[name] == value for name, value in expected.items())
    unchanged = (
        f"accounts: 0 created, 0 changed, {accounts_count} unchanged, 0 stale, 0 rejected; "
        f"contracts: 0 created, 0 changed, {contracts_count} unchanged, 0 stale, 0 rejected"
    )
    again_ok = again_summary == f"import_crm: {unchanged}" and after_again == after_first
    per_row_seconds = per_row["accounts"] * accounts_count + per_row["contracts"] * contracts_count
    result = {
        "timestamp": files.stamp,
        "accounts": accounts_count,
        "contracts": contracts_count,
        "file_bytes": sizes,
        "first_import_seconds": round(first_seconds, 2),
        "first_import_summary": first_summary,
        "checklist_tasks_published_after_seconds": round(publish_seconds, 2),
        "reimport_seconds": round(again_seconds, 2),
        "reimport_summary": again_summary,
        "after_first": after_first,
        "after_reimport": after_again,
        "per_row_ms": {kind: round(s * 1000, 2) for kind, s in per_row.items()},
        "per_row_extrapolated_seconds": round(per_row_seconds, 1),
        "target_seconds": TARGET_SECONDS,
    }
    files.write_results(result)
    rows = f"{accounts_count:,} accounts + {contracts_count:,} contracts"
    return [
        Row.held(
            "crm_import", f"first import_crm, {rows}", f"{first_seconds:.1f} s",
            f"{per_row_seconds:.0f} s (a row at a time, extrapolated: "
            f"{per_row['accounts'] * 1000:.1f} / {per_row['contracts'] * 1000:.1f} ms a row)",
            first_seconds / per_row_seconds, 1.0,
        ),
        Row.check(
            "crm_import", "first import_crm under the target", f"{first_seconds:.1f} s",
            first_seconds < TARGET_SECONDS, f"< {TARGET_SECONDS:.0f} s",
        ),
        Row.check(
            "crm_import", "history rows of the first import",
            f"{after_first['customer_history_created']:,} customers + "
            f"{after_first['contract_history_created']:,} contracts ({ACTOR})",
            history_ok, "one '+' row per record",
        ),
        Row.check(
            "crm_import", "re-import of the same files", f"{again_seconds:.1f} s, "
            f"{after_again['customer_history'] - after_first['customer_history']} + "
            f"{after_again['contract_history'] - after_first['contract_history']} history rows",
            again_ok and again_seconds < TARGET_SECONDS,
            f"all unchanged, no history row, < {TARGET_SECONDS:.0f} s",
        ),
    ]  # fmt: skip
