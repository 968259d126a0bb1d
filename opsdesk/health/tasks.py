"""The digest's and the team roll-up's Celery tasks: beat starts the run, one task per
recipient sends."""

import datetime as dt
import smtplib

from celery import shared_task
from django.utils import timezone

from opsdesk.health import digest, rollup
from opsdesk.health.digest import digest_recipients, recipient_for
from opsdesk.health.rollup import rollup_for, rollup_recipients
from opsdesk.health.signals import signals_sweep


@shared_task(name="opsdesk.digests_send", ignore_result=True)
def digests_send(date: str | None = None) -> int:
    """Queue one send per recipient for ``date`` (default: today, UTC)."""
    day = dt.date.fromisoformat(date) if date else timezone.now().date()
    # The day's signals first, once, so each recipient's send finds them stored.
    signals_sweep(date=day)
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


# "team_": the health signals' weekly roll-up per team, not the staff notifications'
# roll-up emails (opsdesk.notification_rollups_send).
@shared_task(name="opsdesk.team_rollups_send", ignore_result=True)
def team_rollups_send(date: str | None = None) -> int:
    """Queue one send per team roll-up recipient for ``date`` (default: today, UTC)."""
    day = dt.date.fromisoformat(date) if date else timezone.now().date()
    # The day's signals first, once, so the roll-ups count what the digests show.
    signals_sweep(date=day)
    pairs = rollup_recipients()
    for _team, recipient in pairs:
        team_rollup_send.delay(day.isoformat(), recipient.key)
    return len(pairs)


@shared_task(
    name="opsdesk.team_rollup_send",
    ignore_result=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=60,
    retry_backoff_max=1800,  # below the broker visibility timeout (1 h)
    max_retries=6,
)
def team_rollup_send(date: str, recipient_key: str) -> bool:
    team, recipient = rollup_for(recipient_key)
    return rollup.rollup_send(date=dt.date.fromisoformat(date), team=team, recipient=recipient)
