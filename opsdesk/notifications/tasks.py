"""Staff notifications' Celery tasks: ids in, one delivery call each."""

from celery import shared_task

from opsdesk.notifications import delivery
from opsdesk.notifications.delivery import MAX_ATTEMPTS, DeliveryDeferred


@shared_task(
    name="opsdesk.notification_send",
    ignore_result=True,
    autoretry_for=(DeliveryDeferred,),
    retry_backoff=30,
    retry_backoff_max=1800,  # below the broker visibility timeout (1 h)
    max_retries=MAX_ATTEMPTS - 1,  # notification_send parks the row on its last attempt
)
def notification_send(notification_id: int) -> bool:
    """Email one notification now; a failure that may pass is retried with backoff."""
    return delivery.notification_send(notification_id=notification_id)


@shared_task(
    name="opsdesk.chat_post_send",
    ignore_result=True,
    autoretry_for=(DeliveryDeferred,),
    retry_backoff=30,
    retry_backoff_max=1800,
    max_retries=MAX_ATTEMPTS - 1,
)
def chat_post_send(post_id: int) -> bool:
    """Post one notice to a chat webhook; a failure that may pass is retried with backoff."""
    return delivery.chat_post_send(post_id=post_id)


@shared_task(name="opsdesk.notification_rollups_send", ignore_result=True)
def notification_rollups_send() -> int:
    """Beat, every minute: each person whose roll-up is due gets it (one email each).
    Returns how many notifications went out."""
    return sum(
        delivery.rollup_send(recipient_id=recipient_id) for recipient_id in delivery.rollups_due()
    )


@shared_task(name="opsdesk.notifications_sweep", ignore_result=True)
def notifications_sweep() -> int:
    """Beat, every 5 minutes: queue a send for every email and chat post nobody is trying
    (their queueing or their retries were lost), one task each. Returns how many."""
    emails = delivery.notifications_unsent()
    posts = delivery.chat_posts_unsent()
    for notification_id in emails:
        notification_send.delay(notification_id)
    for post_id in posts:
        chat_post_send.delay(post_id)
    return len(emails) + len(posts)
