"""``beats``: two ``celery beat`` schedulers at once (a deploy that forgot to stop the old
one), both with the digest scheduled for the next minute: both fire it, and each
recipient still gets one digest (one ``DigestDelivery``, one email) for the date."""

from __future__ import annotations

import datetime as dt
import time

from drills import Checks, say
from drills.stack import Stack, _process_group_stop, wait_until
from drills.worker import deliveries, digest_mails, recipient_count

LEAD_SECONDS = 15  # the beats need a few seconds to start before the minute comes


def main(stack: Stack) -> list[str]:
    checks = Checks("beats")
    now = dt.datetime.now(dt.UTC)
    at = (now + dt.timedelta(seconds=LEAD_SECONDS + 60)).replace(second=0, microsecond=0)
    date = at.date()
    managers = recipient_count(stack)
    schedule = {"OPSDESK_DIGEST_HOUR": str(at.hour), "OPSDESK_DIGEST_MINUTE": str(at.minute)}
    beats = [stack.beat_start(name, **schedule) for name in ("beat-a", "beat-b")]
    say(
        f"beats: two beat schedulers started, the digest due at {at:%H:%M} UTC "
        f"({(at - now).total_seconds():.0f} s), {managers} recipients"
    )
    try:
        done = wait_until(
            lambda: deliveries(stack, date).get("sent", 0) >= managers,
            (at - dt.datetime.now(dt.UTC)).total_seconds() + 180,
        )
        time.sleep(3)  # let a second round of sends, if any, land
    finally:
        for beat in beats:
            _process_group_stop(beat)
    fired = {
        name: (stack.logs / f"{name}.log")
        .read_text()
        .count("Scheduler: Sending due task send-digests")
        for name in ("beat-a", "beat-b")
    }
    sent = deliveries(stack, date)
    attempts = stack.scalar(
        "SELECT coalesce(sum(attempts), 0) FROM opsdesk_digestdelivery WHERE digest_date = %s",
        [date],
    )
    mails = digest_mails(stack, date)
    print(
        f"  digest fired by beat-a {fired['beat-a']}x, beat-b {fired['beat-b']}x; deliveries "
        f"of {date}: {sent} (claims {attempts}); emails {sum(mails.values())} to "
        f"{len(mails)} recipients"
    )
    checks.check(fired == {"beat-a": 1, "beat-b": 1}, "both schedulers fired the digest")
    checks.check(done and sent == {"sent": managers}, f"one delivery per recipient, sent: {sent}")
    checks.check(
        len(mails) == managers and set(mails.values()) == {1},
        f"one email per recipient: {sum(mails.values())} emails, {len(mails)} recipients",
    )
    return checks.failures
