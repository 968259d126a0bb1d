"""``make bench``: webhook intake under gunicorn, side by side with a bare insert view
(``bench.__main__``); customer health and the digest, side by side with one SQL statement
(``bench.health``); a month's billing reconciliation for 10,000 customers, side by side with
one hand-written SQL statement (``bench.reconcile``)."""

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
