"""The digest's Celery tasks: beat starts the day's run, one task per recipient sends."""

import datetime as dt
import smtplib

from celery import shared_task
from django.utils import timezone

from opsdesk.health import digest
from opsdesk.health.digest import digest_recipients, recipient_for


@shared_task(name="opsdesk.digests_send", ignore_result=True)
def digests_send(date: str | None = None) -> int:
    """Queue one send per recipient for ``date`` (default: today, UTC)."""
    day = dt.date.fromisoformat(date) if date else timezone.now().date()
    recipients = digest_recipients()
    for recipient in recipients:
        digest_send.delay(day.isoformat(), recipient.key)
    return len(recipients)


@shared_task(
    name="opsdesk.digest_send",
    ignore_result=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=60,
    retry_backoff_max=1800,  # below the broker visibility timeout (1 h)
    max_retries=6,
)
def digest_send(date: str, recipient_key: str) -> bool:
    return digest.digest_send(
        date=dt.date.fromisoformat(date), recipient=recipient_for(recipient_key)
    )
