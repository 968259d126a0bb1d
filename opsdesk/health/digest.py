"""The daily usage digest: one email per account manager per date (docs/product.md).

``digest_build`` renders a recipient's digest (the admin preview shows exactly this);
``digest_send`` claims the (date, recipient) delivery row before sending, so a re-run,
a retry after a crash or a second scheduler never sends a second email.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from kit.params import pk_or_none
from kit.text import count_of
from onboarding.selectors import overdue_tasks_for_manager
from opsdesk.health.flags import CustomerHealth, customer_health
from opsdesk.health.signals import CustomerSignals, SignalState, digest_signals, signals_sweep
from opsdesk.models import DigestDelivery

FALLBACK = "fallback"


class DigestError(Exception):
    """A digest that cannot be sent as configured; the message says what to fix."""


@dataclass(frozen=True)
class Recipient:
    key: str
    email: str
    name: str
    user_id: int | None


@dataclass(frozen=True)
class Digest:
    date: dt.date
    recipient: Recipient
    # Customers with a signal shown (new or still open), and the healthy ones.
    attention: list[CustomerHealth]
    others: list[CustomerHealth]
    signals: list[CustomerSignals]
    new_count: int
    subject: str
    text: str
    html: str


def _followed() -> QuerySet[Customer]:
    return Customer.objects.exclude(status=Customer.Status.CHURNED)


def recipient_for(key: str) -> Recipient:
    """The recipient behind a key: ``user:<id>`` or ``fallback``."""
    if key == FALLBACK:
        email = settings.OPSDESK_DIGEST_FALLBACK_EMAIL
        return Recipient(FALLBACK, email, "Customers without an account manager", None)
    pk = pk_or_none(get_user_model(), key.removeprefix("user:"))  # "user:abc" is no one
    user = get_user_model().objects.filter(pk=pk).first() if pk is not None else None
    if not key.startswith("user:") or user is None:
        raise DigestError(f"No account manager {key!r}.")
    return Recipient(key, user.email, user.get_full_name() or user.get_username(), user.pk)


def digest_recipients() -> list[Recipient]:
    """Everyone with a customer to hear about: each account manager of a followed
    customer, and the fallback address when some customer has none."""
    manager_ids = set(_followed().values_list("account_manager_id", flat=True).distinct())
    users = get_user_model().objects.filter(pk__in=manager_ids - {None}).order_by("username")
    recipients = [
        Recipient(f"user:{u.pk}", u.email, u.get_full_name() or u.get_username(), u.pk)
        for u in users
    ]
    if None in manager_ids:
        recipients.append(recipient_for(FALLBACK))
    return recipients


def customer_url(customer_id: int) -> str:
    path = reverse("admin:customers_customer_change", args=[customer_id])
    return f"{settings.OPSDESK_BASE_URL}{path}"


def signal_url(signal: SignalState, action: str, customer_id: int) -> str:
    """The confirmation page of ``action`` (acknowledge, snooze) on a stored signal; the
    customer's signals on its page for one only planned (a preview before the sweep)."""
    if signal.pk is None:
        return customer_url(customer_id) + "#signals"
    path = reverse(f"admin:opsdesk_healthsignal_{action}", args=[signal.pk])
    return f"{settings.OPSDESK_BASE_URL}{path}"


def _subject(day: str, *, new: int, still: int, followed: int) -> str:
    customers = count_of(followed, "customer")
    if not new and not still:
        return f"Usage digest {day}: nobody needs attention ({customers})"
    news = count_of(new, "new signal") if new else "nothing new"
    return f"Usage digest {day}: {news}, {still:,} still open ({customers})"


def digest_build(*, date: dt.date, recipient: Recipient) -> Digest:
    """``recipient``'s digest of ``date``: what is new since yesterday, still open,
    resolved since yesterday, then the healthy customers (docs/product.md#daily-digest).
    It reads the stored signals and applies ``date``'s steps in memory, so the preview
    before the day's sweep shows what the email after it says."""
    customers = _followed().filter(account_manager_id=recipient.user_id)
    health = customer_health(date=date, customer_ids=customers.values_list("pk", flat=True))
    signals = digest_signals(date=date, health=health)

    def rows(pick, order):
        chosen = [(c, customer_url(c.health.customer_id)) for c in signals if pick(c)]
        return sorted(chosen, key=lambda row: order(row[0]))

    new = rows(lambda c: c.new, lambda c: (-len(c.new), c.health.name))
    still = rows(lambda c: c.still_open, lambda c: (c.still_open[0].opened_on, c.health.name))
    resolved = rows(lambda c: c.resolved, lambda c: c.health.name)
    snoozed = [c for c in signals if c.snoozed]
    attention = [c.health for c in signals if c.shown]
    others = sorted(
        (c.health for c in signals if not c.shown and not c.snoozed), key=lambda h: h.name
    )
    new_count = sum(len(c.new) for c in signals)
    still_count = sum(len(c.still_open) for c in signals)
    day = f"{date:%a} {date.day} {date:%b %Y}"
    subject = _subject(day, new=new_count, still=still_count, followed=len(health))
    context = {
        "date": date,
        "covers": date - dt.timedelta(days=1),
        "recipient": recipient,
        "new": new,
        "still": still,
        "resolved": resolved,
        "new_count": new_count,
        "still_count": still_count,
        "resolved_count": sum(len(c.resolved) for c in signals),
        "snoozed_count": sum(len(c.snoozed) for c in signals),
        "snoozed_customers": len(snoozed),
        "others": [(h, customer_url(h.customer_id)) for h in others],
        "total": len(health),
        "subject": subject,
        "base_url": settings.OPSDESK_BASE_URL,
        "onboarding_overdue": [
            (task, customer_url(task.checklist.customer_id) + "#onboarding")
            for task in overdue_tasks_for_manager(manager_id=recipient.user_id, date=date)
        ],
    }
    return Digest(
        date=date,
        recipient=recipient,
        attention=attention,
        others=others,
        signals=signals,
        new_count=new_count,
        subject=subject,
        # Plain text, not HTML: render_to_string marks its result safe, and a page that
        # shows this part would print it unescaped (names in it come from outside).
        text=str.__str__(render_to_string("opsdesk/digest/email.txt", context)),
        html=render_to_string("opsdesk/digest/email.html", context),
    )


def digest_due(*, now: dt.datetime | None = None) -> bool:
    """Whether today's digests are due: the scheduled time of day (``OPSDESK_DIGEST_HOUR``,
    ``OPSDESK_DIGEST_MINUTE``, in the time zone beat's schedule uses) has passed."""
    local = timezone.localtime(now or timezone.now())
    return (local.hour, local.minute) >= (
        settings.OPSDESK_DIGEST_HOUR,
        settings.OPSDESK_DIGEST_MINUTE,
    )


def delivery_claim(
    *, date: dt.date, recipient: Recipient, kind: str, team: str = ""
) -> DigestDelivery | None:
    """Take the delivery for sending, or None when it is sent or being sent. ``kind`` and
    ``team`` (a roll-up's) say in the log what the email is."""
    stale = timezone.now() - dt.timedelta(minutes=settings.OPSDESK_DIGEST_CLAIM_MINUTES)
    with transaction.atomic():
        DigestDelivery.objects.get_or_create(
            digest_date=date,
            recipient_key=recipient.key,
            defaults={
                "email": recipient.email,
                "recipient_id": recipient.user_id,
                "kind": kind,
                "team": team,
            },
        )
        delivery = DigestDelivery.objects.select_for_update().get(
            digest_date=date, recipient_key=recipient.key
        )
        if delivery.status == DigestDelivery.Status.SENT:
            return None
        if delivery.status == DigestDelivery.Status.SENDING and delivery.claimed_at > stale:
            return None
        delivery.status = DigestDelivery.Status.SENDING
        delivery.claimed_at = timezone.now()
        delivery.attempts += 1
        delivery.email = recipient.email
        delivery.team = team
        delivery.save()
    return delivery


@dataclass(frozen=True)
class Email:
    """What ``claimed_send`` sends and records: the parts of one email and the counts its
    delivery row keeps."""

    subject: str
    text: str
    html: str
    message_id: str
    customers: int
    attention: int


def claimed_send(
    *,
    date: dt.date,
    recipient: Recipient,
    build: Callable[[], Email],
    kind: str,
    team: str = "",
) -> bool:
    """Send the email ``build`` makes for (``date``, ``recipient``) unless it was sent (or
    is being sent): True when this call sent it. The delivery row (of ``kind``: a digest,
    or ``team``'s roll-up) is claimed first, the date's signals swept (once per date,
    whichever send comes first), and a failure is recorded on the delivery and raised.
    The digest and the team roll-up send this way."""
    delivery = delivery_claim(date=date, recipient=recipient, kind=kind, team=team)
    if delivery is None:
        return False
    try:
        signals_sweep(date=date)
        if not recipient.email:
            raise DigestError(f"{recipient.name} has no email address; add one to their user.")
        email = build()
        message = EmailMultiAlternatives(
            subject=email.subject,
            body=email.text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[recipient.email],
            # One id per (date, recipient): mail systems drop a copy they have seen.
            headers={"Message-ID": email.message_id},
        )
        message.attach_alternative(email.html, "text/html")
        message.send()
    except Exception as error:
        delivery.status = DigestDelivery.Status.FAILED
        delivery.error = f"{type(error).__name__}: {error}"
        delivery.save()
        raise
    delivery.status = DigestDelivery.Status.SENT
    delivery.sent_at = timezone.now()
    delivery.error = ""
    delivery.subject = email.subject[:300]
    delivery.customer_count = email.customers
    delivery.attention_count = email.attention
    delivery.save()
    return True


def digest_send(*, date: dt.date, recipient: Recipient) -> bool:
    """Send ``recipient``'s digest for ``date`` unless it was sent (or is being sent):
    True when this call sent it. A failure is recorded on the delivery and raised."""

    def build() -> Email:
        digest = digest_build(date=date, recipient=recipient)
        return Email(
            subject=digest.subject,
            text=digest.text,
            html=digest.html,
            message_id=f"<digest-{date}-{recipient.key.replace(':', '-')}@opsdesk>",
            customers=len(digest.attention) + len(digest.others),
            attention=len(digest.attention),
        )

    return claimed_send(
        date=date, recipient=recipient, build=build, kind=DigestDelivery.Kind.DIGEST
    )
