from celery import shared_task
from django.conf import settings

from support import imap, inbound, sla_alerts, tickets
from support.tickets import REPLY_MAX_ATTEMPTS, ReplySendDeferred, replies_unsent
from support.webhooks import event_process, events_due


@shared_task(name="support.events_process", ignore_result=True)
def events_process(event_ids: list[int]) -> None:
    """Process events as the receiver hands them over (one or a batch)."""
    for event_id in event_ids:
        event_process(event_id=event_id)


@shared_task(name="support.events_sweep", ignore_result=True)
def events_sweep(limit: int = 500) -> int:
    """Process whatever is due: events whose enqueue was lost, and backed-off retries."""
    for event_id in events_due(limit=limit):
        event_process(event_id=event_id)
    return 0


@shared_task(
    name="support.reply_send",
    ignore_result=True,
    autoretry_for=(ReplySendDeferred,),
    retry_backoff=30,
    retry_backoff_max=1800,  # below the broker visibility timeout (1 h)
    max_retries=REPLY_MAX_ATTEMPTS - 1,  # reply_send parks the reply on its last attempt
)
def reply_send(comment_id: int) -> None:
    """Email a reply to the requester. A failure that may pass (the mail server) is retried
    with backoff, a bounded number of times; one that cannot is parked at once."""
    tickets.reply_send(comment_id=comment_id)


@shared_task(name="support.replies_sweep", ignore_result=True)
def replies_sweep() -> int:
    """Queue a send for every reply nobody is trying (its queueing or its retries were
    lost): one task each, so a reply that fails never holds up the others. Parked
    replies wait for a person's Retry. Returns how many were queued."""
    due = replies_unsent()
    for comment_id in due:
        reply_send.delay(comment_id)
    return len(due)


@shared_task(name="support.inbound_process", ignore_result=True)
def inbound_process(inbound_ids: list[int]) -> None:
    """Process stored inbound email as intake hands it over (one or a batch)."""
    for inbound_id in inbound_ids:
        inbound.inbound_process(inbound_id=inbound_id)


@shared_task(name="support.inbound_sweep", ignore_result=True)
def inbound_sweep(limit: int = 500) -> int:
    """Process whatever inbound email is due: messages whose enqueue was lost, and
    backed-off retries. Returns how many were tried."""
    due = inbound.inbound_due(limit=limit)
    for inbound_id in due:
        inbound.inbound_process(inbound_id=inbound_id)
    return len(due)


@shared_task(name="support.imap_poll", ignore_result=True)
def imap_poll() -> imap.PollResult | None:
    """Bring in new mail from ``OPSDESK_IMAP_URL`` (beat, every
    ``OPSDESK_IMAP_POLL_SECONDS``; nothing without the URL). A mailbox that cannot be
    reached is logged and tried on the next run, never raised; a run that finds another
    still polling returns at once."""
    if not settings.OPSDESK_IMAP_URL:
        return None
    return imap.imap_poll()


@shared_task(name="support.sla_alerts_send", ignore_result=True)
def sla_alerts_send() -> dict[str, int]:
    """Tell the service-level warnings and breaches due now (beat, every
    ``OPSDESK_SLA_SWEEP_SECONDS``); safe to run twice or from two schedulers."""
    result = sla_alerts.sla_alerts_send()
    return {
        "warned": result.warned,
        "breached": result.breached,
        "recorded_late": result.recorded_late,
    }
