"""``worker``: SIGKILL the Celery worker (and its pool) in the middle of a month's
billing reconciliation and of a digest run, start it again, and check that both finish:
the dead run is taken over, every manager gets one digest email (a second copy, with the
same Message-ID that mail systems drop, only of an email the SMTP server had accepted
when the kill came before its delivery was recorded), no billing case is written twice,
and a re-run of the month finds nothing new to open.

The broker hands an unacknowledged task out again after its visibility timeout (1 h in
production, ``drills.stack.VISIBILITY`` here); the new worker is started once that has
passed, so it picks the killed tasks up at its start instead of at its next scan.
"""

from __future__ import annotations

import datetime as dt
import time

from celery import Celery

from drills import Checks, say
from drills.stack import VISIBILITY, Stack, wait_until

BILLING_KINDS = (
    "missing_invoice",
    "amount_mismatch",
    "invoice_without_contract",
    "currency_mismatch",
    "duplicate_invoice",
    "overdue_invoice",
)


def recipient_count(stack: Stack) -> int:
    """As ``opsdesk.health.digest.digest_recipients``: each manager of a followed customer, and
    the fallback address when a followed customer has none."""
    return stack.scalar(
        "SELECT count(DISTINCT account_manager_id) + bool_or(account_manager_id IS NULL)::int "
        "FROM customers_customer WHERE status <> 'churned'"
    )


def digest_mails(stack: Stack, date: dt.date) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message_id in stack.mails():
        if message_id.startswith(f"<digest-{date}-"):
            counts[message_id] = counts.get(message_id, 0) + 1
    return counts


def deliveries(stack: Stack, date: dt.date) -> dict[str, int]:
    return dict(
        stack.sql(
            "SELECT status, count(*) FROM opsdesk_digestdelivery WHERE digest_date = %s "
            "GROUP BY status",
            [date],
        )
    )


def _runs(stack: Stack, month: dt.date, after: int = 0) -> dict[str, int]:
    """The whole-month runs of ``month`` by status (those with an id above ``after``)."""
    return dict(
        stack.sql(
            "SELECT status, count(*) FROM billing_reconciliationrun WHERE month = %s "
            "AND customer_id IS NULL AND id > %s GROUP BY status",
            [month, after],
        )
    )


def main(stack: Stack) -> list[str]:
    checks = Checks("worker")
    app = Celery(broker=stack.env["CELERY_BROKER_URL"])
    today = dt.datetime.now(dt.UTC).date()
    month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    date = today - dt.timedelta(days=1)
    managers = recipient_count(stack)
    cases_before = stack.scalar(
        "SELECT count(*) FROM support_case WHERE period = %s AND kind = ANY(%s)",
        [month, list(BILLING_KINDS)],
    )

    # The digests first (one task per recipient, seconds each); once one is under way the
    # reconciliation, and the worker is killed as soon as its run is writing.
    # Runs of the month from before the drill (the demo data has some) do not count.
    after = stack.scalar("SELECT coalesce(max(id), 0) FROM billing_reconciliationrun")
    queued = time.monotonic()
    app.send_task("opsdesk.digests_send", args=[date.isoformat()])
    say(f"worker: queued the digests of {date} ({managers} recipients)")
    wait_until(lambda: sum(deliveries(stack, date).values()) > 0, 60, interval=0.02)
    app.send_task("billing.reconciliation_run", args=[month.isoformat()])
    say(f"worker: a digest is being sent; queued the reconciliation of {month:%Y-%m}")

    def mid_way() -> bool:
        sent = deliveries(stack, date)
        return _runs(stack, month, after).get("running", 0) == 1 and sent.get("sent", 0) < managers

    caught = wait_until(mid_way, 60, interval=0.01)
    stack.worker_kill()
    killed = time.monotonic()
    stage = stack.sql(
        "SELECT status, stage, progress FROM billing_reconciliationrun WHERE month = %s "
        "AND customer_id IS NULL ORDER BY id DESC LIMIT 1",
        [month],
    )
    mails_at_kill = digest_mails(stack, date)
    at_kill = {
        "runs": _runs(stack, month, after),
        "deliveries": deliveries(stack, date),
        "emails": sum(mails_at_kill.values()),
    }
    # Emails the SMTP server had accepted whose delivery was not yet recorded as sent: the
    # kill came between the server's "250" and the commit, so the send is made again
    # after the restart (with the same Message-ID, which mail systems drop as a copy).
    in_flight = at_kill["emails"] - at_kill["deliveries"].get("sent", 0)
    say(
        f"worker: SIGKILL the worker {killed - queued:.2f} s after queueing; run "
        f"{stage[0] if stage else None}, at that moment {at_kill}"
    )
    checks.check(caught, "killed with the run in progress and the digests part-sent")

    # Every task the dead worker held was handed to it before the kill.
    wait = max(0.0, VISIBILITY + 2 - (time.monotonic() - killed))
    say(
        f"worker: restarting it in {wait:.0f} s (the broker's visibility timeout, "
        f"{VISIBILITY} s here, 1 h in production)"
    )
    time.sleep(wait)
    stack.worker_start()
    restarted = time.monotonic()

    def finished() -> bool:
        return (
            _runs(stack, month, after).get("succeeded", 0) >= 1
            and deliveries(stack, date).get("sent", 0) == managers
        )

    done = wait_until(finished, 120)
    say(
        f"worker: {'finished' if done else 'NOT finished'} {time.monotonic() - restarted:.1f} s "
        f"after the restart"
    )
    runs = _runs(stack, month, after)
    # A re-run of the month must find every problem already written.
    cases_after = stack.scalar(
        "SELECT count(*) FROM support_case WHERE period = %s AND kind = ANY(%s)",
        [month, list(BILLING_KINDS)],
    )
    app.send_task("billing.reconciliation_run", args=[month.isoformat()])
    wait_until(lambda: _runs(stack, month, after).get("succeeded", 0) >= 2, 120)
    rerun = stack.sql(
        "SELECT status, opened, updated, resolved FROM billing_reconciliationrun "
        "WHERE month = %s AND customer_id IS NULL ORDER BY id DESC LIMIT 1",
        [month],
    )[0]
    # A finding's identity is its dedupe key (kind, customer or invoice, month).
    cases = stack.sql(
        "SELECT count(*), count(DISTINCT dedupe_key) FROM support_case "
        "WHERE period = %s AND kind = ANY(%s)",
        [month, list(BILLING_KINDS)],
    )[0]
    duplicates = cases[0] - cases[1]
    sent = deliveries(stack, date)
    mails = digest_mails(stack, date)
    print(
        f"  runs of {month:%Y-%m}: {runs}; billing cases of the month {cases_before} -> "
        f"{cases_after} -> {cases[0]} after a re-run (duplicates {duplicates}); "
        f"re-run: {rerun[0]}, opened {rerun[1]}, "
        f"updated {rerun[2]}, resolved {rerun[3]}"
    )
    copies = sum(mails.values()) - len(mails)
    after_kill = {key: n - mails_at_kill.get(key, 0) for key, n in mails.items()}
    print(
        f"  digests of {date}: deliveries {sent}; emails {sum(mails.values())} to "
        f"{len(mails)} recipients (most to one: {max(mails.values(), default=0)}); "
        f"accepted by the server but not recorded sent at the kill: {in_flight}"
    )
    checks.check(done, "the reconciliation and the digests completed after the restart")
    checks.check(
        runs.get("running", 0) == 0
        and runs.get("succeeded", 0) == 1
        and runs.get("failed", 0) == 1,
        f"the killed run was taken over: {runs}",
    )
    checks.check(duplicates == 0, f"no duplicate case ({cases[0]} billing cases)")
    checks.check(
        rerun[0] == "succeeded" and rerun[1] == 0 and cases[0] == cases_after,
        f"a re-run opens nothing new (opened {rerun[1]}, cases {cases_after} -> {cases[0]})",
    )
    checks.check(sent == {"sent": managers}, f"{managers} deliveries sent: {sent}")
    checks.check(
        len(mails) == managers and max(after_kill.values(), default=0) <= 1 and copies <= in_flight,
        f"one email per recipient, one Message-ID each: {len(mails)} recipients, "
        f"{sum(mails.values())} emails; a second copy only of one accepted but not recorded "
        f"when the worker died ({copies} of at most {in_flight}), none sent twice after it",
    )
    return checks.failures
