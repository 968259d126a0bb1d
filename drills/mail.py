"""``mail-down``: the mail server down (connection refused) while a day's digests and
staff replies to tickets are sent, then up but hanging (it accepts and never answers),
then healthy again (``drills.smtp``, on the port the stack's ``EMAIL_PORT`` names).

The outage (``DOWN_SECONDS`` + ``HANG_SECONDS``) is far shorter than the tasks' retry
bounds (``opsdesk.digest_send``: 6 retries backed off from 60 s; ``reply_send``'s
from 30 s), so each failure is transient: everything must be delivered once the server
is back, each digest and each reply exactly once (counted at the server per Message-ID
and per reply), nothing parked as failed, and no send held longer than ``EMAIL_TIMEOUT``
by the hanging server (a worker process waiting on it is a worker not working).
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
import uuid
from collections import Counter

from celery import Celery

from drills import Checks, say
from drills.stack import EMAIL_TIMEOUT, PY, ROOT, Stack, wait_until
from drills.worker import deliveries, recipient_count

DOWN_SECONDS = 20
HANG_SECONDS = 20
REPLIES = 6  # recorded while the server is down
HANGING_REPLIES = 2  # recorded while it hangs (so that some sends surely meet it)
# How long the drill waits for the retries once the server is back: their backoff is
# jittered (a retry waits 0..60 s, 0..120 s, 0..240 s, ... for a digest).
RECOVERY_SECONDS = 600
SETTLE_SECONDS = 10  # after the last delivery, for a late second copy to show

REPLY_SCRIPT = """
from django.contrib.auth import get_user_model
from support.models import Ticket
from support.tickets import ticket_comment

author = get_user_model().objects.get(username="support")
tickets = (
    Ticket.objects.exclude(requester_email="")
    .exclude(subject__regex=r"[\\r\\n]")
    .order_by("pk")[{start}:{start} + {count}]
)
for n, ticket in enumerate(tickets, start={start}):
    ticket_comment(
        ticket=ticket,
        author=author,
        kind="reply",
        body="{token}-" + str(n) + ": thanks, we found the cause and fixed it.",
    )
"""


def _columns(stack: Stack, table: str) -> set[str]:
    return {
        row[0]
        for row in stack.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", [table]
        )
    }


def _replies(stack: Stack, token: str) -> list[dict]:
    """The drill's replies: sent or not, parked or not, attempts (when recorded)."""
    columns = _columns(stack, "support_ticketcomment")
    failed = "failed_at IS NOT NULL" if "failed_at" in columns else "false"
    attempts = "delivery_attempts" if "delivery_attempts" in columns else "NULL"
    rows = stack.sql(
        f"SELECT id, ticket_id, sent_to, sent_at IS NOT NULL, {failed}, {attempts} "
        "FROM support_ticketcomment WHERE kind = 'reply' AND body LIKE %s ORDER BY id",
        [token + "-%"],
    )
    return [
        {"id": i, "ticket": t, "to": to, "sent": sent, "parked": parked, "attempts": n}
        for i, t, to, sent, parked, n in rows
    ]


def _reply(stack: Stack, token: str, start: int, count: int) -> None:
    """Staff reply to ``count`` tickets through ``ticket_comment`` (as the ticket page
    does), in a Django process of the stack's."""
    script = REPLY_SCRIPT.format(token=token, start=start, count=count)
    subprocess.run(
        [PY, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env={**stack.env, "DJANGO_LOG_LEVEL": "WARNING"},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _at_server(stack: Stack, date: dt.date, token: str) -> tuple[Counter, Counter]:
    """Copies received of each digest (by Message-ID) and of each reply (by its text)."""
    digests: Counter = Counter()
    replies: Counter = Counter()
    pattern = re.compile(re.escape(token) + r"-(\d+):")
    for received in stack.smtp.messages():
        if received.message_id.startswith(f"<digest-{date}-"):
            digests[received.message_id] += 1
        match = pattern.search(received.text())
        if match:
            replies[(int(match.group(1)), received.recipients)] += 1
    return digests, replies


def main(stack: Stack) -> list[str]:
    checks = Checks("mail-down")
    app = Celery(broker=stack.env["CELERY_BROKER_URL"])
    # A date no other drill sends (worker: yesterday, beats: today or tomorrow).
    date = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
    token = f"drill-mail-{uuid.uuid4().hex[:8]}"
    recipients = recipient_count(stack)
    before = len(stack.smtp.messages())

    stack.smtp.down()
    started = time.monotonic()
    say(f"mail-down: the mail server is down (connection refused on port {stack.smtp.port})")
    app.send_task("opsdesk.digests_send", args=[date.isoformat()])
    _reply(stack, token, 0, REPLIES)
    replies = _replies(stack, token)
    say(
        f"mail-down: queued the digests of {date} ({recipients} recipients) and recorded "
        f"{len(replies)} replies through ticket_comment"
    )
    wait_until(lambda: time.monotonic() - started >= DOWN_SECONDS, DOWN_SECONDS + 1)
    down_digests = deliveries(stack, date)
    down_replies = _replies(stack, token)

    stack.smtp.hanging()
    hanging_at = time.monotonic()
    say(f"mail-down: the mail server hangs (accepts, never answers) for {HANG_SECONDS} s")
    _reply(stack, token, REPLIES, HANGING_REPLIES)
    say(f"mail-down: recorded {HANGING_REPLIES} more replies while it hangs")
    wait_until(lambda: time.monotonic() - hanging_at >= HANG_SECONDS, HANG_SECONDS + 1)
    hang_digests = deliveries(stack, date)

    stack.smtp.healthy()
    healthy_at = time.monotonic()
    say("mail-down: the mail server is healthy again")
    received_before_healthy = len(stack.smtp.messages()) - before

    def delivered() -> bool:
        return deliveries(stack, date).get("sent", 0) >= recipients and all(
            reply["sent"] for reply in _replies(stack, token)
        )

    recovered = wait_until(delivered, RECOVERY_SECONDS, interval=1)
    recovery = time.monotonic() - healthy_at
    time.sleep(SETTLE_SECONDS)

    final_digests = deliveries(stack, date)
    digest_attempts = stack.scalar(
        "SELECT coalesce(sum(attempts), 0) FROM opsdesk_digestdelivery WHERE digest_date = %s",
        [date],
    )
    final_replies = _replies(stack, token)
    digests, reply_copies = _at_server(stack, date, token)
    waits = stack.smtp.hanging_waits
    print(
        f"  down {DOWN_SECONDS} s: digest deliveries {down_digests}, replies sent "
        f"{sum(r['sent'] for r in down_replies)} of {len(down_replies)}"
    )
    print(
        f"  hanging {HANG_SECONDS} s: {len(waits) + stack.smtp.left_hanging} connections "
        f"accepted, {len(waits)} hung up by the sender after "
        f"{min(waits, default=0):.1f}-{max(waits, default=0):.1f} s "
        f"(EMAIL_TIMEOUT {EMAIL_TIMEOUT} s), {stack.smtp.left_hanging} still waiting when it "
        f"recovered; digest deliveries {hang_digests}"
    )
    print(
        f"  healthy {healthy_at - started:.0f} s after the outage began: everything delivered "
        f"{recovery:.1f} s later; digest deliveries "
        f"{final_digests} in {digest_attempts} claims; replies "
        f"{[(r['ticket'], r['sent'], r['parked'], r['attempts']) for r in final_replies]} "
        "(ticket, sent, parked, attempts)"
    )
    print(
        f"  at the server: {sum(digests.values())} digest emails for {len(digests)} "
        f"recipients, {sum(reply_copies.values())} reply emails for {len(reply_copies)} "
        f"replies; received while down or hanging: {received_before_healthy}"
    )
    checks.check(
        len(replies) == REPLIES and len(final_replies) == REPLIES + HANGING_REPLIES,
        f"{len(replies)} replies recorded while the server was down, "
        f"{len(final_replies) - len(replies)} while it hung",
    )
    checks.check(
        down_digests.get("failed", 0) > 0 and received_before_healthy == 0,
        "the sends failed while the server was down (digests failed: "
        f"{down_digests.get('failed', 0)}), nothing received before it was back",
    )
    checks.check(
        bool(waits) and max(waits) <= EMAIL_TIMEOUT + 2,
        f"no send held by the hanging server longer than EMAIL_TIMEOUT + 2 s "
        f"({max(waits, default=0):.1f} s at most, {len(waits)} sends)",
    )
    checks.check(
        recovered and final_digests == {"sent": recipients},
        f"every digest delivered after the outage: {final_digests} of {recipients}",
    )
    checks.check(
        len(digests) == recipients and set(digests.values()) == {1},
        f"one digest email per recipient: {sum(digests.values())} emails, {len(digests)} "
        f"recipients of {recipients}",
    )
    checks.check(
        all(r["sent"] and not r["parked"] for r in final_replies),
        f"every reply sent, none parked: {sum(r['sent'] for r in final_replies)} sent, "
        f"{sum(bool(r['parked']) for r in final_replies)} parked of {len(final_replies)}",
    )
    expected = {(n, (reply["to"],)) for n, reply in enumerate(final_replies)}
    checks.check(
        set(reply_copies) == expected and set(reply_copies.values()) == {1},
        f"one email per reply, to its requester: {sum(reply_copies.values())} emails for "
        f"{len(final_replies)} replies",
    )
    return checks.failures
