"""Outbound threading of support replies (docs/contracts/email.md): the sender, the
per-ticket Reply-To whose token routes an answer back, the stored Message-ID, and
In-Reply-To/References so every client threads the conversation."""

from __future__ import annotations

import datetime as dt
import re
import smtplib

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.utils import timezone

from audit.context import acting_as
from support.email_thread import (
    REFERENCES_KEPT,
    thread_headers,
    ticket_id_from_address,
    ticket_reply_address,
    ticket_token,
)
from support.models import Ticket, TicketComment
from support.tickets import ReplySendDeferred, reply_send
from tests import builders

pytestmark = pytest.mark.django_db

SUPPORT_FROM = "Acme Support <support@acme.example>"


@pytest.fixture(autouse=True)
def support_from(settings):
    settings.OPSDESK_SUPPORT_FROM = SUPPORT_FROM
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def make_ticket(subject="Cannot log in") -> Ticket:
    with acting_as("test:fixture"):
        return builders.ticket(subject=subject, requester_email="pat@acme.com")


def make_reply(ticket: Ticket, author, minutes_ago: int) -> TicketComment:
    return builders.reply(
        ticket=ticket,
        author=author,
        created_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
    )


def test_a_reply_comes_from_the_support_address_with_the_tickets_reply_to(agent):
    ticket = make_ticket()
    reply = make_reply(ticket, agent, 5)

    assert reply_send(comment_id=reply.pk) is True

    (message,) = mail.outbox
    assert message.from_email == SUPPORT_FROM
    assert message.reply_to == [
        f"Acme Support <support+t{ticket.pk}.{ticket_token(ticket.pk)}@acme.example>"
    ]
    assert message.subject == f"Re: Cannot log in [#{ticket.pk}]"
    assert "Auto-Submitted" not in message.extra_headers


def test_the_reply_to_token_routes_to_its_ticket_and_no_other():
    address = ticket_reply_address(42)
    token = ticket_token(42)

    assert re.fullmatch(r"Acme Support <support\+t42\.[0-9a-f]{20}@acme\.example>", address)
    assert ticket_id_from_address(address) == 42
    assert ticket_id_from_address(f"SUPPORT+t42.{token}@ACME.example") == 42
    # Another ticket's id with this token, a made-up token, another mailbox or domain.
    assert ticket_id_from_address(f"support+t43.{token}@acme.example") is None
    assert ticket_id_from_address("support+t42.0123456789abcdef0123@acme.example") is None
    assert ticket_id_from_address(f"sales+t42.{token}@acme.example") is None
    assert ticket_id_from_address(f"support+t42.{token}@evil.example") is None
    assert ticket_id_from_address("support@acme.example") is None


def test_the_token_depends_on_the_secret_key(settings):
    before = ticket_token(42)
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789abcdef"
    assert ticket_token(42) != before


def test_each_reply_has_its_own_message_id_stored_and_answers_the_previous_one(agent):
    ticket = make_ticket()
    first, second, third = (make_reply(ticket, agent, minutes) for minutes in (30, 20, 10))

    for reply in (first, second, third):
        reply_send(comment_id=reply.pk)

    ids = [TicketComment.objects.get(pk=reply.pk).message_id for reply in (first, second, third)]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"<[^<>@]+@acme\.example>", mid) for mid in ids)
    sent = [message.extra_headers for message in mail.outbox]
    assert [headers["Message-ID"] for headers in sent] == ids
    assert "In-Reply-To" not in sent[0] and "References" not in sent[0]
    assert (sent[1]["In-Reply-To"], sent[1]["References"]) == (ids[0], ids[0])
    assert (sent[2]["In-Reply-To"], sent[2]["References"]) == (ids[1], f"{ids[0]} {ids[1]}")
    # The headers as they leave on the wire.
    wire = mail.outbox[2].message()
    assert (wire["Message-ID"], wire["In-Reply-To"]) == (ids[2], ids[1])


def test_a_retried_reply_keeps_its_message_id(agent, monkeypatch):
    ticket = make_ticket()
    reply = make_reply(ticket, agent, 5)
    original_send = locmem.EmailBackend.send_messages

    def refused(self, messages):
        raise smtplib.SMTPServerDisconnected("connection lost")

    monkeypatch.setattr(locmem.EmailBackend, "send_messages", refused)
    with pytest.raises(ReplySendDeferred):
        reply_send(comment_id=reply.pk)
    first_id = TicketComment.objects.get(pk=reply.pk).message_id
    assert first_id

    monkeypatch.setattr(locmem.EmailBackend, "send_messages", original_send)
    assert reply_send(comment_id=reply.pk) is True

    assert TicketComment.objects.get(pk=reply.pk).message_id == first_id
    assert mail.outbox[0].extra_headers["Message-ID"] == first_id


def test_a_subject_with_line_breaks_becomes_one_clean_line(agent):
    ticket = make_ticket(subject="Cannot\r\nBcc: victim@example.com\tlog in")
    reply_send(comment_id=make_reply(ticket, agent, 5).pk)

    assert mail.outbox[0].subject == f"Re: Cannot Bcc: victim@example.com log in [#{ticket.pk}]"
    assert "Bcc" not in mail.outbox[0].message()


def test_references_keep_the_first_message_and_the_latest_ones():
    ids = [f"<m{n}@acme.example>" for n in range(30)]

    headers = thread_headers(ids)

    kept = headers["References"].split(" ")
    assert headers["In-Reply-To"] == "<m29@acme.example>"
    assert len(kept) == REFERENCES_KEPT
    assert kept[0] == "<m0@acme.example>"
    assert kept[1:] == ids[-(REFERENCES_KEPT - 1) :]
    assert thread_headers([]) == {}
