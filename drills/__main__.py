"""``python -m drills [same-id] [hostile] [worker] [beats] [mail-down] [redis]
[postgres-restart]`` (``make drills``):
the drills named, all of them without arguments, against one stack brought up for the
run (``drills.stack``) and torn down after it, also on a failure or Ctrl-C. Each drill
prints what it did and each check it made; exits non-zero when a check fails.

- ``redis``: 10,000 signed webhooks while redis-server is ``kill -9``-ed and restarted
  mid-burst: every accepted event processed exactly once (one ticket), none lost.
- ``same-id``: one webhook id delivered 50 times at once: one event, one ticket.
- ``worker``: the worker SIGKILL-ed in the middle of a month's reconciliation and of a
  digest run: both complete after the restart, one email per manager, no duplicate case.
- ``beats``: two beat schedulers at once fire the digest: one digest per manager.
- ``hostile``: 200 hostile requests to the webhook and the admin's forms: no 5xx, every
  rejection a 4xx or a form with its error, nothing stored that should not be.
- ``mail-down``: the mail server down, then hanging, while a day's digests and ticket
  replies are sent: each delivered exactly once when it is back, none parked, no send
  held longer than ``EMAIL_TIMEOUT``.
- ``postgres-restart``: 2,000 signed webhooks, senders retrying on Svix's schedule, while
  the drills' PostgreSQL is restarted mid-burst: every delivery ends 2xx, 5xx only while
  it is down, the web processes recover by themselves, each event processed exactly once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time

from drills import beats, hostile, mail, postgres, say, webhooks, worker
from drills.stack import Stack

# The quick ones first; the webhook bursts last (PostgreSQL's restart the very last: a
# drill after it would start on a server just restarted).
DRILLS = {
    "same-id": webhooks.same_id,
    "hostile": hostile.main,
    "worker": worker.main,
    "beats": beats.main,
    "mail-down": mail.main,
    "redis": webhooks.redis,
    "postgres-restart": postgres.main,
}


def main(names: list[str]) -> int:
    unknown = set(names) - DRILLS.keys()
    if unknown:
        raise SystemExit(
            f"unknown drill {', '.join(sorted(unknown))}; choose from {', '.join(DRILLS)}"
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill, too
    started = time.monotonic()
    failures: list[str] = []
    timings: dict[str, float] = {}
    with contextlib.ExitStack() as cleanup:
        stack = Stack(cleanup)
        stack.database()
        stack.redis_start()
        stack.smtp_start()
        base = stack.web()
        stack.worker_start()
        stack.beat_start()
        say(
            f"stack up in {time.monotonic() - started:.0f} s: gunicorn at {base}, redis-server "
            f"on port {stack.redis_port}, SMTP on port {stack.smtp.port}, worker, beat "
            f"(logs in {stack.logs})"
        )
        for name in names or DRILLS:
            say(f"--- {name}")
            drill_started = time.monotonic()
            failures += DRILLS[name](stack)
            timings[name] = time.monotonic() - drill_started
            say(f"{name}: {timings[name]:.1f} s")
        say("stopping the stack")
    total = time.monotonic() - started
    say(
        "durations: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
        + f"; total {total:.0f} s"
    )
    for failure in failures:
        say(f"FAILED: {failure}")
    say("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
