"""Real-looking inbound emails for the tests of reading and processing them: the messages
in tests/support/emails/*.eml as clients send them (Gmail, Outlook desktop and web, Apple
Mail, a mail server's bounce, ...), with the parts that depend on the test (the ticket,
its reply address, the Message-IDs answered) filled in, stored as received and processed
the way the worker does."""

from __future__ import annotations

import itertools
from email.message import EmailMessage
from pathlib import Path

from django.db import transaction

from audit.context import acting_as
from support.email_message import envelope, message_parse
from support.email_thread import ticket_token
from support.inbound_effects import inbound_apply
from support.models import InboundEmail, Ticket
from tests import builders

EMAILS = Path(__file__).parent / "emails"
SUPPORT_FROM = "Acme Support <support@acme.example>"

_numbers = itertools.count(1)


def raw_email(name: str, *, ticket: Ticket | int | None = None, **values: str) -> bytes:
    """The bytes of ``emails/<name>.eml`` with each ``{key}`` replaced by ``values[key]``;
    ``ticket`` fills ``{ticket}`` and ``{token}`` (its reply address), and a placeholder
    left without a value becomes empty (``{in_reply_to}``: the header names nothing)."""
    raw = (EMAILS / f"{name}.eml").read_bytes()
    if ticket is not None:
        ticket_id = ticket if isinstance(ticket, int) else ticket.pk
        values = {"ticket": str(ticket_id), "token": ticket_token(ticket_id), **values}
    for key in ("ticket", "token", "references", "in_reply_to", "sender", "mark"):
        raw = raw.replace(f"{{{key}}}".encode(), values.get(key, "").encode())
    return raw


def received(raw: bytes | EmailMessage, **fields) -> InboundEmail:
    """``raw`` stored as intake stores it (its envelope read, a NUL in it replaced),
    pending."""
    if isinstance(raw, EmailMessage):
        raw = raw.as_bytes()
    head = envelope(message_parse(raw))
    return builders.inbound_email(
        sender=head.from_address.replace("\x00", "\ufffd"),
        subject=head.subject,
        raw=raw,
        size=len(raw),
        message_id=head.message_id,
        from_name=head.from_name,
        **fields,
    )


def processed(inbound: InboundEmail) -> InboundEmail:
    """``inbound`` processed as the worker does: in one transaction, as its delivery, the
    effect's fields saved with it."""
    with transaction.atomic(), acting_as(f"email:{inbound.delivery_id}"):
        inbound_apply(inbound=inbound)
        inbound.status = InboundEmail.Status.PROCESSED
        inbound.save(update_fields=["status", "kind", "ticket", "matched_by", "warning"])
    return inbound


def plain_email(
    body: str, *, sender: str = "Pat Jones <pat@globex.com>", subject: str = "Question", **headers
) -> EmailMessage:
    """A plain-text email from ``sender`` to support with ``body`` and extra ``headers``
    (underscores in their names become dashes)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = SUPPORT_FROM
    message["Subject"] = subject
    message["Message-ID"] = f"<plain-{next(_numbers)}@globex.com>"
    for name, value in headers.items():
        del message[name.replace("_", "-")]
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message
