"""Webhooks (``docs/contracts/webhooks.md``, the product's; ``docs/contracts/crm.md``,
the CRM's): verify, store, dispatch.

Intake (``event_receive``) runs on the request path: it verifies the Standard Webhooks
signature with the maintained ``standardwebhooks`` package, under the secrets of the
event's source (``SOURCES``), stores the event in PostgreSQL and returns. It never talks
to the broker. Processing (``event_process``) runs in a worker and dispatches to the
handler registered for the event's type. Every source's events share the storage, the
retries, the sweep and the admin's event list.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError, hmac_data

from audit.bulk import insert_with_history
from audit.context import acting_as
from kit.publish import BatchPublisher
from kit.stored_events import stored_due, stored_process, stored_retry
from support.models import WebhookEvent
from support.webhook_schemas import ValidationError, parse_event

logger = logging.getLogger(__name__)
# Stored events reach the worker in batches (kit.publish.BatchPublisher).
EVENT_PUBLISHER = BatchPublisher("support.events_process")

MAX_BODY_BYTES = 256 * 1024
# The id is the idempotency key, stored as is, and its actor "webhook:<id>" fits the
# history's 200 characters: a longer (or unprintable) id is a malformed header, a 401,
# since cutting it would make two deliveries one.
MAX_WEBHOOK_ID_LENGTH = 192
# Containers inside containers: the contract's events need 3; a payload is stored and
# shown as a tree, and a deep one costs its page (and every reader) time for nothing.
MAX_DEPTH = 32

Handler = Callable[[WebhookEvent, object], None]
_handlers: dict[str, Handler] = {}


def handles(event_type: str) -> Callable[[Handler], Handler]:
    """Register the processing of one event type (``handler(event, data)``, in a transaction)."""

    def register(handler: Handler) -> Handler:
        _handlers[event_type] = handler
        return handler

    return register


def webhook_actor(webhook_id: str) -> str:
    return f"webhook:{webhook_id}"


@dataclass(frozen=True)
class Intake:
    status: int
    body: dict = field(default_factory=dict)
    event: WebhookEvent | None = None


class _BytesWebhook(Webhook):
    """``standardwebhooks``' verifier for a body that is not UTF-8.

    The scheme signs the body's bytes, but the package's Python ``verify`` decodes them
    as UTF-8 first and ``sign`` encodes the text back, so a correctly signed body that
    is not UTF-8 could never verify (and would be a 401, not the contract's 422). This
    is handed the body decoded with ``surrogateescape`` and signs exactly those bytes
    again; the header parsing, the timestamp tolerance and the constant-time comparison
    remain the package's ``verify``. UTF-8 bodies go through ``Webhook`` unchanged.
    """

    def sign(self, msg_id: str, timestamp: dt.datetime, data: str) -> str:
        seconds = math.floor(timestamp.replace(tzinfo=dt.UTC).timestamp())
        signed = f"{msg_id}.{seconds}.{data}".encode("utf-8", "surrogateescape")
        return f"v1,{base64.b64encode(hmac_data(self._whsecret, signed)).decode()}"


# The setting that holds each source's secrets (any one verifying is enough: rotation).
SOURCES: dict[str, str] = {
    WebhookEvent.Source.PRODUCT: "OPSDESK_WEBHOOK_SECRETS",
    WebhookEvent.Source.CRM: "OPSDESK_CRM_WEBHOOK_SECRETS",
}


def signature_verified(
    body: bytes, headers: dict[str, str], *, source: str = WebhookEvent.Source.PRODUCT
) -> bool:
    """True when any configured secret of ``source`` verifies the signature (secret
    rotation)."""
    try:
        text, verifier = body.decode(), Webhook
    except UnicodeDecodeError:
        text, verifier = body.decode("utf-8", "surrogateescape"), _BytesWebhook
    for secret in getattr(settings, SOURCES[source]):
        try:
            verifier(secret).verify(text, headers, json_parse=False)
            return True
        except (WebhookVerificationError, ValueError, binascii.Error):
            # Wrong secret, stale timestamp, or a malformed header (e.g. "v1" without
            # a comma, bad base64): all are a 401 for the sender.
            continue
    return False


def well_formed_id(webhook_id: str) -> bool:
    """A webhook-id opsdesk keeps as is (see ``MAX_WEBHOOK_ID_LENGTH``)."""
    return len(webhook_id) <= MAX_WEBHOOK_ID_LENGTH and webhook_id.isprintable()


def _store(webhook_id: str, source: str, **values) -> WebhookEvent | None:
    """Insert the event and its history; None when this webhook id of ``source`` was
    stored before (a retry).

    The unique constraint on (``webhook_id``, ``source``) decides (``ON CONFLICT DO
    NOTHING``), so concurrent deliveries of one id store exactly one event.
    """
    with acting_as(webhook_actor(webhook_id)):
        return insert_with_history(
            WebhookEvent(webhook_id=webhook_id, source=source, **values),
            unique=["webhook_id", "source"],
        )


class _Unstorable(ValueError):
    """JSON that Python parses but PostgreSQL cannot store; the message says why."""


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400 parses as inf, which jsonb has no way to hold
        raise _Unstorable("body has a number too large to store (beyond ±1.8e308)")
    return number


def _parse_json(text: str) -> object:
    """The body's JSON, or ``ValueError`` saying why it is unusable. Besides malformed
    JSON that covers what Python's parser accepts but PostgreSQL cannot store: ``NaN``
    and ``Infinity``, a number beyond a float's range (``1e400``), a ``\\u0000`` escape
    (no NUL in ``jsonb``), an unpaired surrogate escape (not UTF-8), and nesting deeper
    than ``MAX_DEPTH`` (or deep enough to exhaust the parser's recursion)."""
    try:
        payload = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:  # far deeper than MAX_DEPTH: the same answer, however deep
        raise ValueError(f"body is nested deeper than {MAX_DEPTH} levels") from None
    except _Unstorable:
        raise
    except ValueError:
        raise ValueError("body is not JSON") from None
    for string in _strings(payload):
        if "\x00" in string:
            raise ValueError("body has a NUL character (\\u0000), which cannot be stored")
        try:
            string.encode()
        except UnicodeEncodeError:
            raise ValueError("body has an unpaired surrogate (\\ud800-\\udfff) escape") from None
    return payload


def _strings(value: object) -> Iterator[str]:
    """Every string in a parsed JSON value, keys included (without recursion); raises
    ``ValueError`` at a container nested deeper than ``MAX_DEPTH``."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise ValueError(f"body is nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                yield from item.keys()
                item = item.values()
            pending.extend((child, depth + 1) for child in item)


def payload_depth(value: object) -> int:
    """How many containers deep a parsed JSON value goes (without recursion)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


def _storable_text(text: str) -> str:
    """Text PostgreSQL can keep: a NUL (legal in UTF-8, not in ``text``) becomes U+FFFD."""
    return text.replace("\x00", "\ufffd")


def _schema_details(error: ValidationError) -> list[dict]:
    return [
        {"field": ".".join(str(part) for part in item["loc"]), "error": item["msg"]}
        for item in error.errors(include_url=False, include_context=False, include_input=False)
    ]


def event_receive(
    *, body: bytes, headers: dict[str, str], source: str = WebhookEvent.Source.PRODUCT
) -> Intake:
    """Verify and store one delivery from ``source``; the result is the contract's
    response."""
    headers = {name.lower(): value for name, value in headers.items()}
    if len(body) > MAX_BODY_BYTES:
        return Intake(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
    if not well_formed_id(headers.get("webhook-id", "")):
        logger.warning("webhook rejected: malformed webhook-id (%r...)", headers["webhook-id"][:40])
        error = f"malformed webhook-id header: 1 to {MAX_WEBHOOK_ID_LENGTH} printable characters"
        return Intake(401, {"error": error})
    if not signature_verified(body, headers, source=source):
        logger.warning(
            "%s webhook rejected: signature did not verify (id=%r)",
            source,
            headers.get("webhook-id"),
        )
        return Intake(401, {"error": "invalid or missing webhook signature"})

    webhook_id = headers["webhook-id"]
    duplicate = Intake(200, {"id": webhook_id, "status": "duplicate"})
    try:
        text = body.decode()
        payload = _parse_json(text)
    except ValueError as exc:  # UnicodeDecodeError included
        message = "body is not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
        error = {"error": message, "details": []}
        event = _store(
            webhook_id,
            source,
            status=WebhookEvent.Status.REJECTED,
            raw_body=_storable_text(body.decode("utf-8", "replace")),
            error=message,
        )
        return Intake(422, error, event) if event else duplicate

    try:
        envelope, data = parse_event(payload, source)
    except ValidationError as exc:
        details = _schema_details(exc)
        event = _store(
            webhook_id,
            source,
            status=WebhookEvent.Status.REJECTED,
            type=str(payload.get("type", ""))[:100] if isinstance(payload, dict) else "",
            payload=payload,
            error="event does not match the contract",
            details=details,
        )
        body = {"error": "event does not match the contract", "details": details}
        return Intake(422, body, event) if event else duplicate

    event = _store(
        webhook_id,
        source,
        type=envelope.type,
        tenant_id=getattr(data, "tenant_id", ""),
        payload=payload,
        next_attempt_at=timezone.now(),
    )
    if event is None:
        return duplicate
    return Intake(202, {"id": webhook_id, "status": "accepted"}, event)


def event_process(*, event_id: int) -> WebhookEvent.Status | None:
    """Process one stored event at most once; safe to call any number of times.

    The event is claimed (``kit.stored_events.stored_process``: ``SELECT ... FOR UPDATE
    SKIP LOCKED``) only while it is pending and due, so two workers (or a task and the
    sweep) never both process it. The handler's writes and the status change commit
    together. A failing handler leaves the event pending with its error and a backed-off
    ``next_attempt_at``; after ``OPSDESK_WEBHOOK_MAX_ATTEMPTS`` it is parked as failed.
    Returns the new status, or None when there was nothing to do.
    """
    return stored_process(
        model=WebhookEvent,
        pk=event_id,
        apply=_dispatch,
        acting=lambda event: acting_as(webhook_actor(event.webhook_id)),
        max_attempts=settings.OPSDESK_WEBHOOK_MAX_ATTEMPTS,
    )


def _dispatch(event: WebhookEvent) -> None:
    handler = _handlers.get(event.type)
    if handler is None:
        raise LookupError(f"no handler for {event.type} events yet")
    handler(event, parse_event(event.payload, event.source)[1])


def events_due(*, limit: int = 500) -> list[int]:
    """Ids of pending events whose attempt is due, oldest first (the sweep)."""
    return stored_due(model=WebhookEvent, order=["next_attempt_at", "received_at"], limit=limit)


def event_retry(*, event: WebhookEvent, actor_reason: str = "retry requested") -> bool:
    """Put a failed event back in the queue (the admin's "retry"): the workers get it
    once this commits, the sweep if the broker is down. False if it had not failed."""
    return stored_retry(
        model=WebhookEvent,
        pk=event.pk,
        reason=actor_reason,
        publish=EVENT_PUBLISHER.add_after_commit,
    )
