import smtplib

from celery import shared_task

from support.tickets import replies_unsent, reply_send
from support.webhooks import event_process, events_due


@shared_task(name="support.process_webhook_events", ignore_result=True)
def process_webhook_events(event_ids: list[int]) -> None:
    """Process events as the receiver hands them over (one or a batch)."""
    for event_id in event_ids:
        event_process(event_id=event_id)


@shared_task(name="support.sweep_webhook_events", ignore_result=True)
def sweep_webhook_events(limit: int = 500) -> int:
    """Process whatever is due: events whose enqueue was lost, and backed-off retries."""
    for event_id in events_due(limit=limit):
        event_process(event_id=event_id)
    return 0


@shared_task(
    name="support.send_ticket_reply",
    ignore_result=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    retry_backoff_max=1800,  # below the broker visibility timeout (1 h)
    max_retries=8,
)
def send_ticket_reply(comment_id: int) -> None:
    """Email a reply to the requester; mail server trouble is retried with backoff."""
    reply_send(comment_id=comment_id)


@shared_task(name="support.sweep_ticket_replies", ignore_result=True)
def sweep_ticket_replies() -> int:
    """Send replies whose queueing was lost or whose retries ran out; stops at the first
    mail server error and tries again on the next run."""
    sent = 0
    for comment_id in replies_unsent():
        sent += reply_send(comment_id=comment_id)
    return sent
