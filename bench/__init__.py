"""``make bench``: webhook intake under gunicorn, side by side with a bare insert view
(``bench.__main__``); customer health and the digest (``bench.health``) and a month's
billing reconciliation (``bench.reconcile``), each side by side with one hand-written SQL
statement; admin pages at 10,000 customers and at 200 (``bench.pages``); a write with and
without history (``bench.history``); the CRM's initial load, ``import_crm`` of 10,000
accounts and 20,000 contracts (``bench.crm_import``); ``make test``'s wall time
(``bench.testtime``). One
report of them all (``bench.report``); their data: ``bench.dataset``."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path

# The Celery queue the bench's webhook tasks go to: no worker consumes it, the runner
# deletes it afterwards.
QUEUE = "opsdesk-bench"


def say(message: str) -> None:
    print(f"bench | {message}", flush=True)


def knob(name: str, default: int) -> int:
    """A positive integer from the environment variable ``name``, else ``default``."""
    value = os.environ.get(name) or str(default)
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def database_server(env: dict[str, str], cleanup: contextlib.ExitStack) -> str:
    """The PostgreSQL server to measure on, also set as ``env["DATABASE_URL"]``: that of
    ``DATABASE_URL``, else the embedded one, stopped when ``cleanup`` closes if this call
    started it."""
    from devstack import embedded
    from devstack.stack import VAR, _database

    if _database(env):
        cleanup.callback(embedded.postgres_stop, VAR)
        cleanup.callback(say, "stopping the embedded PostgreSQL")
    return env["DATABASE_URL"]


class RunFiles:
    """The files one run of benchmark ``name`` writes: ``var/bench/<name>-<timestamp>``
    and a suffix (``.json`` for its results, ``.log``, ``-plans.txt``)."""

    def __init__(self, name: str) -> None:
        from devstack.stack import VAR

        self.name = name
        self.stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.directory = VAR / "bench"
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, suffix: str) -> Path:
        return self.directory / f"{self.name}-{self.stamp}{suffix}"

    def write_results(self, result: dict) -> Path:
        """``result`` as ``<name>-<timestamp>.json`` (dates as text), said where."""
        path = self.path(".json")
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        say(f"results in {path}")
        return path
