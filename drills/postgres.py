"""``postgres-restart``: the drills' PostgreSQL restarted (fast shutdown, down for a few
seconds, started again) in the middle of a burst of signed webhooks whose senders retry
like a Standard Webhooks provider: Svix's schedule (at once, then 5 s, 5 min, 30 min,
2 h, 5 h, 10 h, 10 h after each failure, on any non-2xx answer or connection error),
compressed ``COMPRESSION`` times, each retry the same id and body signed afresh.

Checks: every delivery ends 2xx; a 5xx or a connection error only while the server is
down (and ``GRACE`` seconds after it is back: requests that were under way), a 503 with
Retry-After and never a 500; the web processes recover by themselves (a 2xx within
``RECOVERY_SECONDS`` of the server being back, none of them restarted); every accepted
event stored once and processed once (one ticket per webhook id, none lost). Every
answer is counted: 202, 200 duplicate, 503 (with or without Retry-After), 500,
connection errors.
"""

from __future__ import annotations

import heapq
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from drills import Checks, say
from drills.stack import Stack
from drills.webhooks import PATH, _outcome, _settled, post, sign, support_request

BURST = 2_000
SENDERS = 16
RESTART_AFTER = 700  # deliveries ended before PostgreSQL is stopped
DOWN_SECONDS = 5
# Svix's waits after each failed attempt, in seconds; 8 attempts in all.
SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
COMPRESSION = 50  # 5 s -> 0.1 s, 5 min -> 6 s, 30 min -> 36 s, ...
GRACE = 2.0
# The web answers 2xx again within this long of PostgreSQL being back (a connection pool
# retries its connections with a growing backoff, which delays the first ones).
RECOVERY_SECONDS = 15.0


@dataclass(frozen=True)
class Attempt:
    answered: float  # seconds since the burst started
    sent: float  # when the request went out, likewise
    status: int | None  # None: connection error or timeout
    label: str
    retry_after: str | None


def _label(status: int | None, answer: bytes) -> str:
    if status is None:
        return "connection error"
    if status == 200:
        try:
            duplicate = json.loads(answer).get("status") == "duplicate"
        except (ValueError, AttributeError):
            duplicate = False
        return "200 duplicate" if duplicate else "200"
    return str(status)


def attempt(base: str, webhook_id: str, body: str, started: float) -> Attempt:
    """One attempt, signed afresh (same id and body, a new timestamp and signature)."""
    sent = time.monotonic() - started
    status, answer, headers = post(base, PATH, body.encode(), sign(webhook_id, body))
    retry_after = next((v for k, v in headers if k.lower() == "retry-after"), None)
    return Attempt(time.monotonic() - started, sent, status, _label(status, answer), retry_after)


def provide(
    base: str, messages: list[tuple[str, str]], started: float, on_end: Callable[[], None]
) -> list[list[Attempt]]:
    """Deliver ``(webhook id, body)`` messages like a provider: ``SENDERS`` threads send
    the burst as fast as it is answered; a failed attempt is retried when its wait is
    over, ahead of the rest of the burst (a retry keeps its schedule). Each message's
    attempts, in order."""
    attempts: list[list[Attempt]] = [[] for _ in messages]
    fresh = iter(range(len(messages)))
    due: list[tuple[float, int]] = []  # retries: (seconds since start, index)
    open_messages = len(messages)
    ready = threading.Condition()

    def sender() -> None:
        nonlocal open_messages
        while True:
            with ready:
                while True:
                    if open_messages == 0:
                        return
                    now = time.monotonic() - started
                    if due and due[0][0] <= now:
                        _, index = heapq.heappop(due)
                        break
                    index = next(fresh, None)
                    if index is not None:
                        break
                    ready.wait(min(due[0][0] - now, 0.5) if due else 0.5)
            webhook_id, body = messages[index]
            made = attempt(base, webhook_id, body, started)
            with ready:
                attempts[index].append(made)
                tries = len(attempts[index])
                if (made.status is not None and 200 <= made.status < 300) or tries > len(SCHEDULE):
                    open_messages -= 1
                    on_end()
                    ready.notify_all()
                else:
                    wait = SCHEDULE[tries - 1] / COMPRESSION
                    heapq.heappush(due, (made.answered + wait, index))
                    ready.notify()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return attempts


def _booted_workers(stack: Stack) -> int:
    log = (stack.logs / "gunicorn.log").read_text(errors="replace")
    return len(re.findall(r"Booting worker with pid", log))


def main(stack: Stack) -> list[str]:
    checks = Checks("postgres-restart")
    prefix = f"msg_drill_pg_{uuid.uuid4().hex[:8]}_"
    ids = [f"{prefix}{n:05d}" for n in range(BURST)]
    ended = 0
    ended_lock = threading.Lock()
    window: dict[str, float] = {}
    booted_before = _booted_workers(stack)

    def end() -> None:
        nonlocal ended
        with ended_lock:
            ended += 1

    def restarter() -> None:
        while ended < RESTART_AFTER:
            time.sleep(0.01)
        window["stop"] = time.monotonic() - started
        say(f"postgres-restart: stopping PostgreSQL after {ended} deliveries ended")
        stack.postgres_stop()
        window["stopped"] = time.monotonic() - started
        time.sleep(DOWN_SECONDS)
        stack.postgres_start()
        window["up"] = time.monotonic() - started
        say(
            f"postgres-restart: PostgreSQL down {window['stopped'] - window['stop']:.1f} s "
            f"into the stop, back {window['up'] - window['stop']:.1f} s after it began"
        )

    say(
        f"postgres-restart: {BURST} signed support.request deliveries with {SENDERS} senders "
        f"retrying on Svix's schedule / {COMPRESSION}; PostgreSQL restarted after "
        f"{RESTART_AFTER}, down {DOWN_SECONDS} s"
    )
    started = time.monotonic()
    chaos = threading.Thread(target=restarter, daemon=True)
    chaos.start()
    messages = [(ids[n], json.dumps(support_request(n))) for n in range(BURST)]
    deliveries = provide(stack.base, messages, started, end)
    sent_seconds = time.monotonic() - started
    chaos.join(timeout=120)

    attempts = [a for d in deliveries for a in d]
    answers = Counter(a.label for a in attempts)
    first = Counter(d[0].label for d in deliveries)
    final = Counter(d[-1].label for d in deliveries)
    failures = [a for a in attempts if a.status is None or a.status >= 500]
    restarted = {"stop", "stopped", "up"} <= window.keys()
    until = window.get("up", 0) + GRACE
    # What the outage can explain: a request answered after the stop began that was sent
    # before PostgreSQL was back (+GRACE). One waiting for a pool connection when the
    # server went away is answered 503 when its wait (DJANGO_DB_POOL_TIMEOUT, 10 s) ends,
    # which can be seconds after the server is back: the pool tries to connect again only
    # when a new request asks, and every sync worker was waiting. Any other failure (one
    # answered before the stop, or sent after the server was back) is outside the restart.
    outside = [a for a in failures if not (a.answered >= window.get("stop", 0) and a.sent <= until)]
    after_up = [a for a in failures if a.answered > window.get("up", float("inf"))]
    first_2xx_after_up = min(
        (
            a.answered
            for a in attempts
            if a.label in {"202", "200 duplicate"} and a.answered > window.get("up", float("inf"))
        ),
        default=None,
    )
    with_retry_after = sum(1 for a in attempts if a.status == 503 and a.retry_after)
    retried = Counter(len(d) for d in deliveries)
    accepted = [d for d in deliveries if d[-1].status is not None and 200 <= d[-1].status < 300]
    print(
        f"  sent {BURST} deliveries in {sent_seconds:.1f} s, {len(attempts)} attempts; "
        f"PostgreSQL stopped at {window.get('stop', -1):.1f} s, down at "
        f"{window.get('stopped', -1):.1f} s, up at {window.get('up', -1):.1f} s"
    )
    print(f"  every answer: {dict(answers)}")
    print(f"  first answers: {dict(first)}; final answers: {dict(final)}")
    print(f"  attempts per delivery: {dict(sorted(retried.items()))}")
    print(
        f"  5xx or connection errors: {len(failures)} ({len(after_up)} after PostgreSQL was "
        f"back, {len(outside)} sent outside the window up to {GRACE:.0f} s after it); 503 with "
        f"Retry-After: {with_retry_after} of {answers.get('503', 0)}; first 2xx "
        + (
            f"{first_2xx_after_up - window['up']:.2f} s after it was back"
            if first_2xx_after_up is not None
            else "never after it was back"
        )
    )
    settled, waited = _settled(stack, prefix, len(accepted))
    outcome = _outcome(stack, prefix)
    processed = outcome["events"].get("processed", 0)
    stored = sum(outcome["events"].values())
    booted = _booted_workers(stack) - booted_before
    print(
        f"  after {waited:.1f} s more: events stored {stored} {outcome['events']}, tickets "
        f"{outcome['tickets']}, at most {outcome['most_tickets_per_event']} per event; "
        f"gunicorn workers booted since the burst began: {booted}"
    )
    checks.check(restarted, "PostgreSQL was stopped and started again mid-burst")
    checks.check(len(accepted) == BURST, f"every delivery ended 2xx: {len(accepted)} of {BURST}")
    checks.check(
        not outside,
        f"no 5xx or connection error for a request sent outside the restart (+{GRACE:.0f} s): "
        f"{len(outside)}",
    )
    back_after = first_2xx_after_up - window["up"] if first_2xx_after_up is not None else None
    checks.check(
        booted == 0 and back_after is not None and back_after <= RECOVERY_SECONDS,
        "the web processes recovered by themselves: a 2xx "
        + (f"{back_after:.1f} s" if back_after is not None else "never")
        + f" after PostgreSQL was back (at most {RECOVERY_SECONDS:.0f} s), workers booted: "
        f"{booted}",
    )
    checks.check(
        settled and stored == processed == BURST,
        f"every delivery stored once and processed: {processed} processed of {stored} "
        f"stored, {BURST} webhook ids",
    )
    checks.check(
        outcome["tickets"] == processed and outcome["most_tickets_per_event"] == 1,
        f"exactly one ticket per event: {outcome['tickets']} tickets for {processed} events, "
        f"{outcome['events_without_ticket']} without",
    )
    checks.check(
        answers.get("500", 0) == 0 and with_retry_after == answers.get("503", 0),
        f"an outage is answered 503 with Retry-After, not 500: {answers.get('500', 0)} x 500, "
        f"{with_retry_after} of {answers.get('503', 0)} x 503 with Retry-After",
    )
    return checks.failures
