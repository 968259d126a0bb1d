"""Sending stored notifications: one email now, a person's roll-up, a chat post.

Every send claims its rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` while they are still
to be sent and records the outcome in the same transaction, so a notification is emailed
(and a chat post made) once however many tasks, retries, sweeps and schedulers run. Each
attempt is recorded on the row (attempts, time, error). A failure that can never pass (no
address, a webhook that refuses the post or is no longer configured) parks the row as
failed at once; one that may pass raises ``DeliveryDeferred`` for the task's retry with
backoff, until ``MAX_ATTEMPTS``, which parks it. A chat server is given
``OPSDESK_SLACK_TIMEOUT_SECONDS`` to answer, so a hung one holds a worker that long at most.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Min, Q
from django.template.loader import render_to_string
from django.utils import timezone

from audit.bulk import bulk_update_with_history
from audit.context import acting_as
from kit.notify import KINDS
from kit.people import person_name
from kit.text import one_line
from opsdesk.models import ChatPost, Notification

logger = logging.getLogger(__name__)

# Attempts before a notification or a post is parked as failed (the tasks' backoff,
# 30 s doubling to 30 min, spaces them over about two hours).
MAX_ATTEMPTS = 8
# A row nobody has tried this long after it was stored had its queueing lost.
QUEUE_GRACE = dt.timedelta(minutes=2)
# Longer than any backoff wait of the tasks (30 min) and the broker's visibility timeout
# (1 h): a row still to be sent, last tried this long ago, had its retries lost.
RETRIES_LOST_AFTER = dt.timedelta(minutes=75)
# A roll-up that failed is tried again this long after each attempt, doubling.
ROLLUP_RETRY = dt.timedelta(minutes=1)

ACTOR = "task:notifications"
KIND_LABELS = dict(KINDS)


class DeliveryDeferred(Exception):
    """Sending failed for a reason that may pass; the row keeps its error and the task
    tries it again."""


class DeliveryRefused(Exception):
    """Sending can never succeed as things are (no address, no webhook, a 4xx)."""


def _permanent(error: Exception) -> bool:
    if isinstance(error, DeliveryRefused | ValueError):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    return False


def _error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


def _link(path: str) -> str:
    return f"{settings.OPSDESK_BASE_URL}{path}" if path else ""


def _preferences_link() -> str:
    from django.urls import reverse

    return _link(reverse("admin:opsdesk_notification_preferences"))


def _template(name: str, context: dict) -> str:
    # Plain text: render_to_string marks its result safe; this is an email's text.
    text = str.__str__(render_to_string(f"opsdesk/notifications/{name}", context))
    return text.rstrip() + "\n"


# --- One email now ----------------------------------------------------------------------


def notification_message(notification: Notification) -> EmailMessage:
    """The email of one notification (the subject and text templates)."""
    context = {
        "notification": notification,
        "kind": KIND_LABELS.get(notification.kind, notification.kind),
        "link": _link(notification.url),
        "preferences": _preferences_link(),
    }
    return EmailMessage(
        subject=one_line(_template("email_subject.txt", context)),
        body=_template("email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient.email],
        headers={
            # The same id on every attempt: a mail system drops a copy it has seen.
            "Message-ID": f"<notification-{notification.pk}@opsdesk>",
            "Auto-Submitted": "auto-generated",
        },
    )


def notification_send(*, notification_id: int) -> bool:
    """Email one notification that is to be emailed now; True when it was sent now.
    False: sent already, parked, waiting for a roll-up, turned off, or being sent by
    another worker. See the module for retries."""
    failure = None
    with transaction.atomic(), acting_as(ACTOR):
        row = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("recipient")
            .filter(pk=notification_id, status=Notification.Status.PENDING)
            .first()
        )
        if row is None:
            return False
        row.attempts += 1
        row.last_attempt_at = timezone.now()
        try:
            if not row.recipient.email:
                raise DeliveryRefused(f"{person_name(row.recipient)} has no email address.")
            notification_message(row).send()
        except Exception as error:  # every failure is recorded on the row, never lost
            failure = error
            row.error = _error_text(error)
            if _permanent(error) or row.attempts >= MAX_ATTEMPTS:
                row.status = Notification.Status.FAILED
                logger.error("notification %s parked: %s", row.pk, row.error)
            else:
                logger.warning("notification %s not sent yet: %s", row.pk, row.error)
        else:
            row.status = Notification.Status.SENT
            row.sent_at = timezone.now()
            row.error = ""
        row.save(update_fields=["status", "attempts", "last_attempt_at", "error", "sent_at"])
    if failure is not None and row.status == Notification.Status.PENDING:
        raise DeliveryDeferred(row.error) from failure
    return failure is None


def notifications_unsent(*, limit: int = 500) -> list[int]:
    """Notifications to be emailed now that nobody is trying (the sweep queues them):
    never tried since they were stored ``QUEUE_GRACE`` ago, or last tried longer ago than
    any retry waits."""
    now = timezone.now()
    return list(
        Notification.objects.filter(
            status=Notification.Status.PENDING, created_at__lte=now - QUEUE_GRACE
        )
        .filter(Q(attempts=0) | Q(last_attempt_at__lte=now - RETRIES_LOST_AFTER))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


# --- Roll-ups -----------------------------------------------------------------------------


def rollups_due(*, limit: int = 500) -> list[int]:
    """The people whose roll-up is due: one of their waiting notifications' time has come."""
    return list(
        Notification.objects.filter(status=Notification.Status.ROLLUP, due_at__lte=timezone.now())
        .values("recipient_id")
        .annotate(first=Min("due_at"))
        .order_by("first")
        .values_list("recipient_id", flat=True)[:limit]
    )


def rollup_message(rows: list[Notification]) -> EmailMessage:
    recipient = rows[0].recipient
    context = {
        "notifications": [
            (row, KIND_LABELS.get(row.kind, row.kind), _link(row.url)) for row in rows
        ],
        "count": len(rows),
        "since": rows[0].created_at,
        "preferences": _preferences_link(),
    }
    return EmailMessage(
        subject=one_line(_template("rollup_subject.txt", context)),
        body=_template("rollup.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient.email],
        headers={
            "Message-ID": f"<notification-rollup-{rows[0].pk}-{rows[-1].pk}@opsdesk>",
            "Auto-Submitted": "auto-generated",
        },
    )


def rollup_send(*, recipient_id: int) -> int:
    """Email ``recipient_id`` their waiting notifications in one email, when the time of
    one of them has come; returns how many it carried (0: nothing due, or another run is
    sending them). Every waiting notification goes, the ones whose time has not come yet
    too. A failure is recorded on each row, which waits a backed-off while and is tried
    again by the next run; after ``MAX_ATTEMPTS`` (or at once when it can never pass) they
    are parked as failed. Never raises: one person's failure does not stop the run."""
    now = timezone.now()
    with transaction.atomic(), acting_as(ACTOR):
        rows = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("recipient")
            .filter(recipient_id=recipient_id, status=Notification.Status.ROLLUP)
            .order_by("created_at", "pk")
        )
        if not rows or min(row.due_at for row in rows) > now:
            return 0
        attempts = max(row.attempts for row in rows) + 1
        try:
            if not rows[0].recipient.email:
                raise DeliveryRefused(f"{person_name(rows[0].recipient)} has no email address.")
            rollup_message(rows).send()
        except Exception as error:
            text = _error_text(error)
            parked = _permanent(error) or attempts >= MAX_ATTEMPTS
            logger.log(
                logging.ERROR if parked else logging.WARNING,
                "roll-up of %s for user %s %s: %s",
                len(rows),
                recipient_id,
                "parked" if parked else "not sent yet",
                text,
            )
            for row in rows:
                row.attempts, row.last_attempt_at, row.error = attempts, now, text
                if parked:
                    row.status = Notification.Status.FAILED
                else:
                    row.due_at = now + ROLLUP_RETRY * 2 ** (attempts - 1)
            sent = 0
        else:
            for row in rows:
                row.attempts, row.last_attempt_at, row.error = attempts, now, ""
                row.status, row.sent_at = Notification.Status.SENT, timezone.now()
            sent = len(rows)
        bulk_update_with_history(
            rows,
            Notification,
            ["status", "attempts", "last_attempt_at", "error", "sent_at", "due_at"],
            reason="roll-up",
        )
    return sent


# --- Chat webhooks ------------------------------------------------------------------------


def chat_webhook_url(target: str) -> str:
    """The webhook of a target: "" the default one, else the team's; "" when not set."""
    if target:
        return settings.OPSDESK_SLACK_WEBHOOK_URLS.get(target, "")
    return settings.OPSDESK_SLACK_WEBHOOK_URL


def _without_secret(text: str, url: str) -> str:
    """An error's text without the webhook's URL or path (its secret)."""
    for secret in (url, urlsplit(url).path):
        if secret and secret != "/":
            text = text.replace(secret, "<webhook>")
    return text


def chat_post(*, url: str, text: str) -> None:
    """POST ``{"text": text}`` to a Slack-compatible incoming webhook. Raises
    ``DeliveryRefused`` when it refuses the post for good (a 4xx but 408 and 429),
    ``DeliveryDeferred`` when it may take it later (5xx, 408, 429), and requests' own
    errors when it cannot be reached in time."""
    timeout = settings.OPSDESK_SLACK_TIMEOUT_SECONDS
    response = requests.post(
        url, json={"text": text}, timeout=(timeout, timeout), allow_redirects=False
    )
    if 200 <= response.status_code < 300:
        return
    answer = one_line(response.text[:200])
    error = f"HTTP {response.status_code}: {answer}"
    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
        raise DeliveryRefused(error)
    raise DeliveryDeferred(error)


def chat_post_send(*, post_id: int) -> bool:
    """Make one chat post that is still to be made; True when it was made now. False:
    made already, parked, or being made by another worker. See the module for retries;
    an error recorded on the row never holds the webhook's URL."""
    failure = None
    with transaction.atomic(), acting_as(ACTOR):
        post = (
            ChatPost.objects.select_for_update(skip_locked=True)
            .filter(pk=post_id, status=ChatPost.Status.PENDING)
            .first()
        )
        if post is None:
            return False
        post.attempts += 1
        post.last_attempt_at = timezone.now()
        url = chat_webhook_url(post.target)
        try:
            if not url:
                raise DeliveryRefused(
                    f"No webhook is set for {post.target or 'the default'} any more."
                )
            chat_post(url=url, text=post.text)
        except Exception as error:
            failure = error
            post.error = _without_secret(_error_text(error), url)
            if _permanent(error) or post.attempts >= MAX_ATTEMPTS:
                post.status = ChatPost.Status.FAILED
                logger.error("chat post %s parked: %s", post.pk, post.error)
            else:
                logger.warning("chat post %s not made yet: %s", post.pk, post.error)
        else:
            post.status = ChatPost.Status.SENT
            post.sent_at = timezone.now()
            post.error = ""
        post.save(update_fields=["status", "attempts", "last_attempt_at", "error", "sent_at"])
    if failure is not None and post.status == ChatPost.Status.PENDING:
        raise DeliveryDeferred(post.error) from None
    return failure is None


def chat_posts_unsent(*, limit: int = 500) -> list[int]:
    """Chat posts nobody is trying (the sweep queues them), as ``notifications_unsent``."""
    now = timezone.now()
    return list(
        ChatPost.objects.filter(status=ChatPost.Status.PENDING, created_at__lte=now - QUEUE_GRACE)
        .filter(Q(attempts=0) | Q(last_attempt_at__lte=now - RETRIES_LOST_AFTER))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
