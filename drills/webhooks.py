"""The webhook drills, with a product-side sender that behaves like a Standard Webhooks
provider (``docs/contracts/webhooks.md``): each attempt signed afresh (same id, new
timestamp), a 5xx, timeout or connection error retried with backoff, a 2xx or 4xx final.

``redis``: 10,000 distinct deliveries while the broker is ``kill -9``-ed and restarted
mid-burst. ``same_id``: one delivery sent 50 times at once.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from drills import Checks, say
from drills.stack import SECRET, Stack

PATH = "/webhooks/product/"
BURST = 10_000
SENDERS = 24
KILL_AFTER = 3_000  # deliveries answered before the broker is killed
DOWN_SECONDS = 4
MAX_ATTEMPTS = 8


def support_request(number: int, **data) -> dict:
    return {
        "type": "support.request",
        "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {
            "tenant_id": "drills-tenant",
            "user": {"email": "jo@acme.com", "name": "Jo Doe"},
            "subject": f"Cannot export CSV ({number})",
            "message": "The export button spins forever.",
            "category": "bug",
            "severity": "high",
            **data,
        },
    }


def sign(webhook_id: str, body: str, secret: str = SECRET, at: dt.datetime | None = None) -> dict:
    at = at or dt.datetime.now(dt.UTC)
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body),
    }


def post(
    base: str, path: str, body: bytes, headers: dict, method: str = "POST", timeout: float = 30
) -> tuple[int | None, bytes, list]:
    """One HTTP request; (status, body, header pairs), status None on a connection error."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        # Header values as UTF-8 bytes: hostile ones need not be Latin-1.
        raw = {name: value.encode() for name, value in headers.items()}
        conn.request(method, path, body=body, headers=raw)
        response = conn.getresponse()
        return response.status, response.read(), response.getheaders()
    except (OSError, http.client.HTTPException):
        return None, b"", []
    finally:
        conn.close()


@dataclass
class Delivery:
    webhook_id: str
    first: int | None = None
    final: int | None = None
    attempts: int = 0


def deliver(base: str, webhook_id: str, payload: dict) -> Delivery:
    """Send until a 2xx or 4xx answers, like a provider: each retry signed again."""
    body = json.dumps(payload)
    delivery = Delivery(webhook_id)
    while delivery.attempts < MAX_ATTEMPTS:
        delivery.attempts += 1
        status, _, _ = post(base, PATH, body.encode(), sign(webhook_id, body))
        if delivery.first is None:
            delivery.first = status or 0
        delivery.final = status
        if status is not None and status < 500:
            break
        time.sleep(min(0.5 * 2 ** (delivery.attempts - 1), 8))
    return delivery


def _settled(stack: Stack, prefix: str, expected: int, stall: float = 60) -> tuple[bool, float]:
    """Wait until ``expected`` events of ``prefix`` are processed; False once the count has
    not moved for ``stall`` seconds (on a busy 2-core machine processing takes minutes)."""
    started = last_change = time.monotonic()
    last = -1
    while True:
        processed = stack.scalar(
            "SELECT count(*) FROM support_webhookevent WHERE webhook_id LIKE %s "
            "AND status = 'processed'",
            [prefix + "%"],
        )
        if processed >= expected:
            return True, time.monotonic() - started
        if processed != last:
            last, last_change = processed, time.monotonic()
        elif time.monotonic() - last_change > stall:
            return False, time.monotonic() - started
        time.sleep(0.5)


def _outcome(stack: Stack, prefix: str) -> dict:
    rows = stack.sql(
        """
        SELECT e.status, count(DISTINCT e.id), count(t.id),
               count(DISTINCT e.id) FILTER (WHERE t.id IS NULL)
        FROM support_webhookevent e LEFT JOIN support_ticket t ON t.webhook_event_id = e.id
        WHERE e.webhook_id LIKE %s GROUP BY e.status
        """,
        [prefix + "%"],
    )
    events = {status: n for status, n, _, _ in rows}
    tickets = sum(t for _, _, t, _ in rows)
    most = stack.scalar(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM support_ticket t "
        "JOIN support_webhookevent e ON e.id = t.webhook_event_id WHERE e.webhook_id LIKE %s "
        "GROUP BY t.webhook_event_id) per_event",
        [prefix + "%"],
    )
    without = sum(w for _, _, _, w in rows)
    return {
        "events": events,
        "tickets": tickets,
        "most_tickets_per_event": most,
        "events_without_ticket": without,
    }


def redis(stack: Stack) -> list[str]:
    checks = Checks("redis")
    run = uuid.uuid4().hex[:8]
    prefix = f"msg_drill_{run}_"
    ids = [f"{prefix}{n:05d}" for n in range(BURST)]
    answered = 0
    answered_lock = threading.Lock()
    kill_at: dict[str, float] = {}

    def send(n: int) -> Delivery:
        nonlocal answered
        delivery = deliver(stack.base, ids[n], support_request(n))
        with answered_lock:
            answered += 1
        return delivery

    def killer() -> None:
        while answered < KILL_AFTER:
            time.sleep(0.01)
        stack.redis_kill()
        kill_at["killed"] = time.monotonic() - started
        say(f"redis: kill -9 redis-server after {answered} answered deliveries")
        time.sleep(DOWN_SECONDS)
        stack.redis_start()
        kill_at["restarted"] = time.monotonic() - started
        say(f"redis: redis-server restarted on port {stack.redis_port} after {DOWN_SECONDS} s")

    say(f"redis: sending {BURST} signed support.request deliveries with {SENDERS} senders")
    started = time.monotonic()
    chaos = threading.Thread(target=killer, daemon=True)
    chaos.start()
    with ThreadPoolExecutor(SENDERS) as pool:
        deliveries = list(pool.map(send, range(BURST)))
    sent_seconds = time.monotonic() - started
    chaos.join(timeout=30)
    first = Counter(d.first for d in deliveries)
    final = Counter(d.final for d in deliveries)
    retried = sum(1 for d in deliveries if d.attempts > 1)
    accepted = [d.webhook_id for d in deliveries if d.final is not None and 200 <= d.final < 300]
    print(
        f"  sent {BURST} in {sent_seconds:.1f} s ({BURST / sent_seconds:.0f}/s); "
        f"redis killed at {kill_at.get('killed', -1):.1f} s, back at "
        f"{kill_at.get('restarted', -1):.1f} s; first answers {dict(first)}; "
        f"final answers {dict(final)}; retried by the sender: {retried}"
    )
    publish_failures = (
        (stack.logs / "gunicorn.log")
        .read_text(errors="replace")
        .count("could not enqueue support.events_process")
    )
    print(
        f"  hand-overs to the broker that failed while it was down: {publish_failures} "
        "(the events wait in PostgreSQL for beat's sweep)"
    )
    settled, waited = _settled(stack, prefix, len(accepted))
    outcome = _outcome(stack, prefix)
    processed = outcome["events"].get("processed", 0)
    stored = sum(outcome["events"].values())
    lost = len(accepted) - processed
    print(
        f"  processed {processed} in {sent_seconds + waited:.1f} s from the first delivery "
        f"({processed / (sent_seconds + waited):.0f}/s); "
        f"events stored {stored} {outcome['events']}, "
        f"tickets {outcome['tickets']}, lost {max(lost, 0)}, "
        f"duplicate tickets {outcome['tickets'] - processed}"
    )
    checks.check(
        killed := "killed" in kill_at and "restarted" in kill_at,
        "redis-server was killed (-9) and restarted mid-burst",
    )
    checks.check(len(accepted) == BURST, f"every delivery ended 2xx: {len(accepted)} of {BURST}")
    checks.check(
        final.get(None, 0) == 0 and not any((s or 0) >= 500 for s in final),
        "no delivery left with a 5xx or a connection error",
    )
    checks.check(
        settled and processed == len(accepted) == stored,
        f"every accepted event processed: {processed} of {len(accepted)}, "
        f"stored {stored}, lost {max(lost, 0)}",
    )
    checks.check(
        outcome["tickets"] == processed and outcome["most_tickets_per_event"] == 1,
        f"exactly one ticket per event: {outcome['tickets']} tickets for {processed} "
        f"events, at most {outcome['most_tickets_per_event']} per event, "
        f"{outcome['events_without_ticket']} without",
    )
    del killed
    return checks.failures


def same_id(stack: Stack) -> list[str]:
    checks = Checks("same-id")
    webhook_id = f"msg_drill_same_{uuid.uuid4().hex[:8]}"
    body = json.dumps(support_request(0, subject="Same delivery, fifty times"))
    headers = sign(webhook_id, body)
    barrier = threading.Barrier(50)

    def send(_):
        barrier.wait()
        return post(stack.base, PATH, body.encode(), headers)

    started = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(send, range(50)))
    statuses = Counter(status for status, _, _ in answers)
    bodies = Counter(json.loads(b or b"{}").get("status") for _, b, _ in answers)
    print(
        f"  50 concurrent deliveries of {webhook_id} in {time.monotonic() - started:.2f} s: "
        f"statuses {dict(statuses)}, bodies {dict(bodies)}"
    )
    settled, waited = _settled(stack, webhook_id, 1)
    outcome = _outcome(stack, webhook_id)
    print(f"  after {waited:.1f} s: events {outcome['events']}, tickets {outcome['tickets']}")
    checks.check(statuses == {202: 1, 200: 49}, "one 202 accepted, 49 200 duplicate")
    checks.check(settled and outcome["events"] == {"processed": 1}, "one event, processed")
    checks.check(outcome["tickets"] == 1, f"one ticket ({outcome['tickets']})")
    return checks.failures
