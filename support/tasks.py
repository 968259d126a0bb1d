from celery import shared_task

from support.webhooks import event_process, events_due


@shared_task(name="support.process_webhook_event", ignore_result=True)
def process_webhook_event(event_id: int) -> None:
    event_process(event_id=event_id)


@shared_task(name="support.sweep_webhook_events", ignore_result=True)
def sweep_webhook_events(limit: int = 500) -> int:
    """Process whatever is due: events whose enqueue was lost, and backed-off retries."""
    for event_id in events_due(limit=limit):
        event_process(event_id=event_id)
    return 0
