"""Inbound support email (``docs/contracts/email.md``, Inbound): store first, process later.

Both ways in end in ``inbound_store``: the push webhook (``inbound_receive``, on the
request path) and the IMAP poller. It keeps the raw message exactly as received, once,
whichever way and however often it arrives, and hands it to the worker after commit.
``inbound_process`` then runs the effect (``support.inbound_effects.inbound_apply``:
matching, the ticket's conversation) exactly once, with the retries of webhook events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.bulk import insert_with_history
from audit.context import acting_as, require_permission
from kit.publish import BatchPublisher
from kit.stored_events import stored_due, stored_process, stored_retry
from support.email_message import MAX_MESSAGE_BYTES, UnparseableMessage, envelope, message_parse
from support.inbound_effects import inbound_apply
from support.models import InboundEmail
from support.webhooks import MAX_WEBHOOK_ID_LENGTH, signature_verified, well_formed_id

logger = logging.getLogger(__name__)
# Stored messages reach the worker in batches, like webhook events.
INBOUND_PUBLISHER = BatchPublisher("support.inbound_process")

DELIVERY_ID_MAX = InboundEmail._meta.get_field("delivery_id").max_length
# The history's actor is "email:<delivery id>" (200 characters at most).
ACTOR_PREFIX = "email:"
_ACTOR_MAX = 200
# A Message-ID longer than this (bytes) is not one (RFC 5322 lines stop at 998): kept
# blank, the message is then told apart by its delivery alone.
_MESSAGE_ID_MAX_BYTES = 998


@dataclass(frozen=True)
class StoreResult:
    """What ``inbound_store`` did: ``created`` a new row (``error`` set when the bytes were
    not a parseable message, stored as rejected), or found the one stored before."""

    inbound: InboundEmail | None
    created: bool
    error: str = ""


def inbound_actor(delivery_id: str) -> str:
    """Who the history says stored and processed a message: its delivery."""
    return f"{ACTOR_PREFIX}{delivery_id}"[:_ACTOR_MAX]


def _storable(text: str) -> str:
    """Text PostgreSQL can keep (no NUL in ``text``)."""
    return text.replace("\x00", "\ufffd")


def _message_id(value: str) -> str:
    if not value.isprintable() or len(value.encode()) > _MESSAGE_ID_MAX_BYTES:
        return ""
    return value


def _existing(delivery_id: str, message_id: str) -> InboundEmail | None:
    """The message stored before under this delivery or Message-ID (its raw bytes not
    loaded: up to 25 MiB nobody here reads)."""
    same = Q(delivery_id=delivery_id)
    if message_id:
        same |= Q(message_id=message_id)
    return InboundEmail.objects.defer("raw").filter(same).order_by("pk").first()


def inbound_store(*, source: str, delivery_id: str, raw: bytes) -> StoreResult:
    """Store one received message exactly once; safe to call any number of times, from
    any number of processes at once.

    A message already stored under the same ``delivery_id`` (a retried delivery) or the
    same non-empty Message-ID (the same message sent twice, or both by webhook and IMAP)
    stores nothing: ``created`` is False and ``inbound`` the earlier row. The table's
    unique constraints decide (``INSERT ... ON CONFLICT DO NOTHING``), so two concurrent
    deliveries store one row. Bytes that are not a parseable email are stored as
    rejected, with ``error`` saying why. A new pending message is published to the worker
    once the caller's transaction commits (the sweep finds it if that publish is lost).
    Messages over ``MAX_MESSAGE_BYTES`` are the caller's to refuse, as are delivery ids
    that are empty, longer than ``DELIVERY_ID_MAX`` or not printable (``ValueError``).
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ValueError(f"a message is at most {MAX_MESSAGE_BYTES} bytes, this is {len(raw)}")
    if not 0 < len(delivery_id) <= DELIVERY_ID_MAX or not delivery_id.isprintable():
        raise ValueError(f"a delivery id is 1 to {DELIVERY_ID_MAX} printable characters")
    values: dict = {"source": source, "delivery_id": delivery_id, "raw": raw, "size": len(raw)}
    error = ""
    try:
        head = envelope(message_parse(raw))
    except UnparseableMessage as exc:
        error = str(exc)
        values.update(status=InboundEmail.Status.REJECTED, error=error)
        message_id = ""
    else:
        message_id = _message_id(_storable(head.message_id))
        values.update(
            status=InboundEmail.Status.PENDING,
            next_attempt_at=timezone.now(),
            message_id=message_id,
            from_address=_storable(head.from_address),
            from_name=_storable(head.from_name),
            subject=_storable(head.subject),
        )
    with transaction.atomic(), acting_as(inbound_actor(delivery_id)):
        inbound = insert_with_history(InboundEmail(**values), unique=())
        if inbound is None:
            return StoreResult(inbound=_existing(delivery_id, message_id), created=False)
        if inbound.status == InboundEmail.Status.PENDING:
            INBOUND_PUBLISHER.add_after_commit(inbound.pk)
    if error:
        logger.info("inbound email %s rejected: %s", delivery_id, error)
    return StoreResult(inbound=inbound, created=True, error=error)


@dataclass(frozen=True)
class Intake:
    """The push webhook's answer: the HTTP status and its JSON body."""

    status: int
    body: dict = field(default_factory=dict)
    inbound: InboundEmail | None = None


# What the push webhook takes (docs/contracts/email.md, Inbound 1).
CONTENT_TYPE = "message/rfc822"


def inbound_receive(*, body: bytes, headers: dict[str, str]) -> Intake:
    """Verify and store one pushed message; the result is the contract's response: 202
    stored, 200 stored before (same ``webhook-id`` or same Message-ID), 401 bad signature,
    413 too large, 422 not a parseable message (stored as rejected). The caller checks
    the Content-Type (415) and reads at most one byte past ``MAX_MESSAGE_BYTES``."""
    headers = {name.lower(): value for name, value in headers.items()}
    if len(body) > MAX_MESSAGE_BYTES:
        return Intake(413, {"error": f"message larger than {MAX_MESSAGE_BYTES} bytes (25 MiB)"})
    webhook_id = headers.get("webhook-id", "")
    if not well_formed_id(webhook_id):
        logger.warning("inbound email rejected: malformed webhook-id (%r...)", webhook_id[:40])
        error = f"malformed webhook-id header: 1 to {MAX_WEBHOOK_ID_LENGTH} printable characters"
        return Intake(401, {"error": error})
    if not signature_verified(body, headers):
        logger.warning("inbound email rejected: signature did not verify (id=%r)", webhook_id)
        return Intake(401, {"error": "invalid or missing webhook signature"})

    stored = inbound_store(source=InboundEmail.Source.WEBHOOK, delivery_id=webhook_id, raw=body)
    if not stored.created:
        return Intake(200, {"id": webhook_id, "status": "duplicate"}, stored.inbound)
    if stored.error:
        body = {"id": webhook_id, "status": "rejected", "error": stored.error}
        return Intake(422, body, stored.inbound)
    return Intake(202, {"id": webhook_id, "status": "accepted"}, stored.inbound)


CHANGE = "support.change_inboundemail"

# What processing may set on the message besides its outcome (support.inbound_effects).
EFFECT_FIELDS = ("kind", "ticket", "matched_by", "warning")


def _apply(inbound: InboundEmail) -> None:
    inbound_apply(inbound=inbound)


def inbound_process(*, inbound_id: int) -> InboundEmail.Status | None:
    """Process one stored message at most once; safe to call any number of times.

    Claimed like a webhook event (``kit.stored_events.stored_process``): only while
    pending and due, by one worker. ``support.inbound_effects.inbound_apply`` writes the
    ticket's conversation and sets ``kind``, ``ticket``, ``matched_by`` and ``warning`` on
    the message; they and the status commit together. A failure leaves the message
    pending with its error and a backed-off retry, and parks it as failed after
    ``OPSDESK_WEBHOOK_MAX_ATTEMPTS``. Returns the new status, or None when there was
    nothing to do.
    """
    return stored_process(
        model=InboundEmail,
        pk=inbound_id,
        apply=_apply,
        acting=lambda inbound: acting_as(inbound_actor(inbound.delivery_id)),
        max_attempts=settings.OPSDESK_WEBHOOK_MAX_ATTEMPTS,
        effect_fields=EFFECT_FIELDS,
    )


def inbound_due(*, limit: int = 500) -> list[int]:
    """Ids of pending messages whose attempt is due, oldest first (the sweep)."""
    return stored_due(model=InboundEmail, order=["next_attempt_at", "received_at"], limit=limit)


class InboundPermissionError(PermissionDenied):
    """``by`` may not do this to inbound email; nothing was changed (a 403 in a view)."""


def inbound_retry(
    *, inbound: InboundEmail, by: AbstractBaseUser | None, actor_reason: str = "retry requested"
) -> bool:
    """Put a failed message back in the queue (the staff page's Retry): the workers get it
    once this commits, the sweep if the broker is down. False, and nothing changed, if it
    had not failed. ``by`` needs ``support.change_inboundemail`` (None: the system)."""
    require_permission(by, CHANGE, InboundPermissionError)
    publish = INBOUND_PUBLISHER.add_after_commit
    return stored_retry(model=InboundEmail, pk=inbound.pk, reason=actor_reason, publish=publish)
