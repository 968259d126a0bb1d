"""What a received email does to its ticket (docs/contracts/email.md, Effects): one
customer entry with the sender, the new text and the original's attachments; a solved or
waiting ticket open again with its next-response clock started; a closed one followed
up by a new ticket; auto-replies, bounces and opsdesk's own mail coming back linked but
changing nothing; and all of it once, however often the message is processed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from support.inbound import inbound_process
from support.models import EmailAttachment, InboundEmail, Ticket, TicketComment
from support.tickets import reply_send
from tests import builders
from tests.support.raw_emails import SUPPORT_FROM, plain_email, processed, raw_email, received

pytestmark = pytest.mark.django_db

RECEIVED = dt.datetime(2026, 3, 3, 10, 40, 52, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def support_from(settings):
    settings.OPSDESK_SUPPORT_FROM = SUPPORT_FROM
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def gmail_reply_to(ticket: Ticket, **fields) -> InboundEmail:
    """Pat's Gmail answer "Thanks, that worked!" to the ticket's reply address."""
    return received(raw_email("gmail_reply", ticket=ticket), received_at=RECEIVED, **fields)


def customer_entries(ticket: Ticket) -> list[TicketComment]:
    return list(ticket.comments.filter(kind=TicketComment.Kind.CUSTOMER))


# --- the entry ------------------------------------------------------------------------------


def test_a_reply_becomes_one_customer_entry_with_its_sender_text_email_and_time():
    ticket = builders.ticket(requester_email="pat.jones@globex.com")

    inbound = processed(gmail_reply_to(ticket))

    (entry,) = customer_entries(ticket)
    assert (entry.kind, entry.author, entry.sender, entry.body) == (
        "customer",
        None,
        "pat.jones@globex.com",
        "Thanks, that worked!",
    )
    assert entry.inbound == inbound
    assert entry.message_id == (
        "<CAO5xq7ZkR2b1N0pQm9sXvW3yT8uJ6hE4fG2dA1cB9nL0mK7jHw@mail.gmail.com>"
    )
    assert entry.created_at == RECEIVED
    assert (inbound.kind, inbound.ticket, inbound.warning) == ("message", ticket, "")


def test_the_entry_and_the_tickets_changes_are_the_deliverys_in_history():
    ticket = builders.ticket(status=Ticket.Status.SOLVED)
    inbound = gmail_reply_to(ticket, delivery_id="msg_2Lp8")

    processed(inbound)

    (entry,) = customer_entries(ticket)
    created = entry.history.get()
    assert (created.history_actor, created.history_for) == (
        "email:msg_2Lp8",
        f"support.ticket:{ticket.pk}",
    )
    latest = ticket.history.order_by("-history_id").first()
    assert (latest.history_actor, latest.status) == ("email:msg_2Lp8", "open")


def test_an_html_message_is_its_text_and_never_its_markup():
    inbound = processed(received(raw_email("html_script")))

    (entry,) = customer_entries(inbound.ticket)
    assert entry.body == "The dashboard is blank since the update & nothing loads.\n\nClick here"
    assert inbound.ticket.message == entry.body


def test_a_message_in_an_unknown_charset_is_read_with_replacement_characters():
    inbound = processed(received(raw_email("bad_charset")))

    (entry,) = customer_entries(inbound.ticket)
    assert entry.body == "The invoice for Troms\ufffd is wrong — \ufffd\ufffd totals differ."
    assert inbound.status == "processed"


def test_a_stored_message_that_cannot_be_read_is_processed_with_a_warning():
    inbound = builders.inbound_email(raw=b"\r\n\r\nno headers at all")

    processed(inbound)

    assert inbound.ticket is None
    assert inbound.warning == "Not read: no header section: not an RFC 5322 message."
    assert TicketComment.objects.count() == 0


def test_a_nul_in_the_sender_or_a_files_type_is_stored_without_it():
    raw = (
        b"From: Pat <pat\x00@globex.com>\r\nTo: support@acme.example\r\nSubject: NUL\r\n"
        b"Message-ID: <nul-1@globex.com>\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nHi\x00 there\r\n"
        b'--B\r\nContent-Type: image/pn\x00g; name="a\x00.png"\r\n\r\nxx\r\n--B--\r\n'
    )

    inbound = processed(received(raw))

    (entry,) = customer_entries(inbound.ticket)
    assert (entry.sender, entry.body) == ("pat@globex.com", "Hi\ufffd there")
    assert inbound.ticket.requester_email == "pat@globex.com"
    (attachment,) = inbound.attachments.all()
    assert (attachment.filename, attachment.content_type) == ("a.png", "image/png")


def test_a_message_id_another_entry_has_is_not_kept_twice(agent):
    ticket = builders.ticket()
    builders.reply(ticket=ticket, author=agent, message_id="<reused@globex.com>")
    message = plain_email("Same id.", In_Reply_To="<reused@globex.com>")
    del message["Message-ID"]
    message["Message-ID"] = "<reused@globex.com>"

    inbound = processed(received(message))

    (entry,) = customer_entries(ticket)
    assert entry.message_id == ""
    assert inbound.warning == (
        "Another entry already has the Message-ID <reused@globex.com>: not kept here."
    )


# --- attachments ----------------------------------------------------------------------


def test_a_new_requests_files_are_kept_with_the_message():
    inbound = processed(received(raw_email("new_request", sender="morgan.lee@globex.com")))

    assert [
        (a.filename, a.content_type, a.size, bytes(a.content)[:4], a.refused)
        for a in inbound.attachments.all()
    ] == [
        ("export error.png", "image/png", 70, b"\x89PNG", ""),
        ("export-log.pdf", "application/pdf", 78, b"%PDF", ""),
    ]
    assert inbound.warning == "No customer set: no contact has an address at globex.com."


def test_a_file_over_the_limit_is_listed_without_its_content(settings):
    settings.OPSDESK_ATTACHMENT_MAX_MB = 1
    message = plain_email("Two files.")
    message.add_attachment(
        b"x" * (1024 * 1024), maintype="application", subtype="zip", filename="exactly-1mb.zip"
    )
    message.add_attachment(
        b"y" * (1024 * 1024 + 1), maintype="video", subtype="mp4", filename="screen recording.mp4"
    )

    inbound = processed(received(message))

    small, large = inbound.attachments.all()
    assert (small.filename, small.size, bytes(small.content) == b"x" * 1024 * 1024) == (
        "exactly-1mb.zip",
        1024 * 1024,
        True,
    )
    assert small.refused == ""
    assert (large.filename, large.content_type, large.size, bytes(large.content)) == (
        "screen recording.mp4",
        "video/mp4",
        1024 * 1024 + 1,
        b"",
    )
    assert large.refused == "Larger than the limit of 1 MB a file."
    assert inbound.warning.endswith("Not kept, over 1 MB: screen recording.mp4.")


# --- the ticket's status and clock --------------------------------------------------------


# The tickets the messages answer were opened the day before (a Monday, 10:40:52); the
# default service levels count business hours, Mon-Fri 09:00-17:00.
OPENED = RECEIVED - dt.timedelta(days=1)


@pytest.mark.parametrize("status", [Ticket.Status.SOLVED, Ticket.Status.PENDING])
def test_a_solved_or_waiting_ticket_is_open_again_with_its_next_response_due(status, sla_policies):
    ticket = builders.ticket(status=status, priority=Ticket.Priority.HIGH, created_at=OPENED)

    processed(gmail_reply_to(ticket))

    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
    # High: next response within 2 business hours of the message (half the first's 4 h),
    # and no longer waiting from the message on.
    assert ticket.next_response_due_at == RECEIVED + dt.timedelta(hours=2)
    assert ticket.sla_paused_at is None


def test_an_open_ticket_starts_its_next_response_clock_when_it_is_not_running(sla_policies):
    ticket = builders.ticket(priority=Ticket.Priority.URGENT, created_at=OPENED)

    processed(gmail_reply_to(ticket))

    ticket.refresh_from_db()
    assert (ticket.status, ticket.next_response_due_at) == (
        "open",
        RECEIVED + dt.timedelta(minutes=30),
    )


def test_a_running_next_response_clock_keeps_the_earlier_messages_deadline(sla_policies):
    ticket = builders.ticket(created_at=OPENED)
    earlier = RECEIVED - dt.timedelta(minutes=30)
    processed(received(raw_email("thunderbird_reply", ticket=ticket), received_at=earlier))

    processed(gmail_reply_to(ticket))

    ticket.refresh_from_db()
    # Normal: 4 business hours from the first unanswered message.
    assert ticket.next_response_due_at == earlier + dt.timedelta(hours=4)


def test_a_closed_ticket_stays_closed_and_a_follow_up_ticket_is_opened():
    globex = builders.customer(name="Globex")
    closed = builders.ticket(
        subject="CSV export times out",
        status=Ticket.Status.CLOSED,
        customer=globex,
        requester_email="pat.jones@globex.com",
    )

    inbound = processed(gmail_reply_to(closed))

    closed.refresh_from_db()
    follow_up = inbound.ticket
    assert closed.status == Ticket.Status.CLOSED
    assert customer_entries(closed) == []
    assert follow_up != closed
    assert (follow_up.subject, follow_up.status, follow_up.customer) == (
        "CSV export times out",
        "open",
        globex,
    )
    assert follow_up.message == f"Follow-up to #{closed.pk}\n\nThanks, that worked!"
    assert (follow_up.requester_email, follow_up.requester_name) == (
        "pat.jones@globex.com",
        "Pat Jones",
    )
    assert list(follow_up.tags.values_list("name", flat=True)) == ["email"]
    assert [e.body for e in customer_entries(follow_up)] == ["Thanks, that worked!"]
    assert inbound.matched_by == InboundEmail.MatchedBy.ADDRESS
    assert inbound.warning == (
        f"#{closed.pk} is closed, so it stays closed: follow-up #{follow_up.pk} opened."
    )


# --- auto-replies, bounces, loops ---------------------------------------------------------


@pytest.mark.parametrize(
    "mark",
    ["Auto-Submitted: auto-replied", "Precedence: bulk", "X-Autoreply: yes", "X-Autorespond: 1"],
)
def test_an_auto_reply_is_linked_to_its_ticket_and_changes_nothing(mark):
    ticket = builders.ticket(status=Ticket.Status.SOLVED)

    inbound = processed(received(raw_email("out_of_office", ticket=ticket, mark=mark)))

    ticket.refresh_from_db()
    assert (inbound.kind, inbound.ticket, inbound.matched_by) == ("auto_reply", ticket, "address")
    assert (ticket.status, ticket.next_response_due_at) == ("solved", None)
    assert ticket.comments.count() == 0
    assert inbound.attachments.count() == 0
    assert inbound.warning == (
        f"An auto-reply ({mark}): linked to #{ticket.pk}; no entry added and its status "
        "left as it was."
    )


def test_an_auto_reply_matching_nothing_opens_no_ticket():
    inbound = processed(received(raw_email("out_of_office", mark="Precedence: junk")))

    assert (inbound.kind, inbound.ticket, inbound.matched_by) == ("auto_reply", None, "")
    assert Ticket.objects.count() == 0
    assert inbound.warning == (
        "An auto-reply (Precedence: junk): it matches no ticket, and none is opened for it."
    )


def test_an_auto_reply_to_a_closed_ticket_opens_no_follow_up():
    ticket = builders.ticket(status=Ticket.Status.CLOSED)

    inbound = processed(received(raw_email("out_of_office", ticket=ticket, mark="X-Autoreply: on")))

    assert inbound.ticket == ticket
    assert Ticket.objects.count() == 1


def test_a_bounce_is_linked_to_its_ticket_and_never_answered(agent):
    ticket = builders.ticket(status=Ticket.Status.PENDING)
    reply = builders.reply(ticket=ticket, author=agent, message_id="<r-1@acme.example>")

    inbound = processed(received(raw_email("bounce", ticket=ticket, in_reply_to=reply.message_id)))

    ticket.refresh_from_db()
    assert (inbound.kind, inbound.ticket, inbound.matched_by) == ("bounce", ticket, "address")
    assert ticket.status == Ticket.Status.PENDING
    assert ticket.comments.count() == 1  # the reply that bounced, nothing more
    assert inbound.warning == (
        f"A bounce (multipart/report): linked to #{ticket.pk}; no entry added and its "
        "status left as it was."
    )


def test_our_own_reply_coming_back_is_a_loop_that_changes_nothing(agent):
    ticket = builders.ticket(subject="Export", requester_email="pat@globex.com")
    reply = builders.reply(ticket=ticket, author=agent)
    reply_send(comment_id=reply.pk)
    (sent,) = mail.outbox

    inbound = processed(received(sent.message().as_bytes()))

    assert (inbound.kind, inbound.ticket) == ("auto_reply", None)
    assert Ticket.objects.count() == 1
    assert customer_entries(ticket) == []
    assert inbound.warning.startswith(
        "An auto-reply (sent from opsdesk's own address support@acme.example, a mail loop): "
        "it matches no ticket, and none is opened for it."
    )


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (
            plain_email("Hi", sender="Support <Support+Sales@ACME.example>"),
            "sent from opsdesk's own address Support+Sales@ACME.example, a mail loop",
        ),
        (
            plain_email("Hi", sender="fwd@globex.com", X_Opsdesk_Ticket="12"),
            "carries opsdesk's X-Opsdesk-Ticket header, a mail loop",
        ),
    ],
)
def test_mail_from_our_address_or_with_our_header_is_a_loop(message, why):
    inbound = processed(received(message))

    assert inbound.kind == "auto_reply"
    assert inbound.warning.startswith(f"An auto-reply ({why}):")
    assert Ticket.objects.count() == 0


# --- exactly once -------------------------------------------------------------------------


def test_processing_a_reply_twice_adds_one_entry():
    ticket = builders.ticket(status=Ticket.Status.SOLVED)
    inbound = gmail_reply_to(ticket)

    processed(inbound)
    processed(inbound)

    assert len(customer_entries(ticket)) == 1
    assert inbound.ticket == ticket
    assert inbound.warning == f"Already in the conversation of #{ticket.pk}; not added again."


def test_processing_a_new_request_twice_opens_one_ticket():
    inbound = received(raw_email("new_request", sender="morgan.lee@globex.com"))

    processed(inbound)
    processed(inbound)

    assert Ticket.objects.count() == 1
    assert TicketComment.objects.count() == 1
    assert EmailAttachment.objects.count() == 2


def test_the_worker_saves_the_effect_with_the_messages_status():
    ticket = builders.ticket(status=Ticket.Status.SOLVED)
    inbound = gmail_reply_to(ticket, next_attempt_at=timezone.now())

    assert inbound_process(inbound_id=inbound.pk) == "processed"
    assert inbound_process(inbound_id=inbound.pk) is None

    inbound.refresh_from_db()
    assert (inbound.status, inbound.kind, inbound.ticket, inbound.matched_by) == (
        "processed",
        "message",
        ticket,
        "address",
    )
    assert [e.body for e in customer_entries(ticket)] == ["Thanks, that worked!"]
