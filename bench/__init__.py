"""``make bench``: webhook intake under gunicorn, side by side with a bare insert view
(``bench.__main__``); customer health and the digest (``bench.health``) and a month's
billing reconciliation (``bench.reconcile``), each side by side with one hand-written SQL
statement; admin pages at 10,000 customers and at 200 (``bench.pages``); a write with and
without history (``bench.history``); ``make test``'s wall time (``bench.testtime``). One
report of them all (``bench.report``); their data: ``bench.dataset``."""

from __future__ import annotations

import contextlib
import os

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
    from opsdesk import embedded
    from opsdesk.stack import VAR, _database

    if _database(env):
        cleanup.callback(embedded.postgres_stop, VAR)
        cleanup.callback(say, "stopping the embedded PostgreSQL")
    return env["DATABASE_URL"]
