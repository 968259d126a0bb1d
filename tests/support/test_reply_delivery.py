"""Sending replies: a clean subject whatever the ticket's, one reply's failure never holds
up the others, a failure that cannot pass is parked at once and one that may is retried
a bounded number of times, and a parked reply waits, visibly, for a person's Retry."""

from __future__ import annotations

import datetime as dt
import smtplib

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends import locmem
from django.test import Client
from django.utils import timezone

from audit.context import acting_as
from kit.text import one_line
from support import tasks
from support.models import Ticket, TicketComment
from support.tasks import replies_sweep
from support.tickets import (
    REPLY_MAX_ATTEMPTS,
    ReplySendDeferred,
    TicketPermissionError,
    replies_unsent,
    reply_retry,
    reply_send,
)
from tests import builders
from tests.publishing import publish_thread_done

pytestmark = pytest.mark.django_db

FIVE_MINUTES_AGO = dt.timedelta(minutes=5)


def make_ticket(subject="Cannot log in", **fields) -> Ticket:
    with acting_as("test:fixture"):
        return builders.ticket(
            subject=subject, requester_email="pat@acme.com", requester_name="Pat", **fields
        )


def make_reply(ticket: Ticket, author, *, to="pat@acme.com", age=FIVE_MINUTES_AGO, **fields):
    with acting_as("test:fixture"):
        return builders.reply(
            ticket=ticket,
            author=author,
            body="Reset your SSO session.",
            sent_to=to,
            created_at=timezone.now() - age,
            **fields,
        )


def parked_reply(ticket: Ticket, author) -> TicketComment:
    return make_reply(
        ticket,
        author,
        failed_at=timezone.now() - dt.timedelta(minutes=1),
        delivery_attempts=REPLY_MAX_ATTEMPTS,
        last_attempt_at=timezone.now() - dt.timedelta(minutes=1),
        delivery_error="SMTPServerDisconnected: Connection unexpectedly closed",
    )


class MailServer:
    """Django's locmem backend, with failures scripted per recipient address."""

    def __init__(self, monkeypatch):
        self.tried: list[str] = []
        self._next: dict[str, list[Exception]] = {}
        self._always: dict[str, Exception] = {}
        deliver = locmem.EmailBackend.send_messages

        def send_messages(backend, messages):
            for message in messages:
                self.tried.append(message.to[0])
                if errors := self._next.get(message.to[0]):
                    raise errors.pop(0)
                if error := self._always.get(message.to[0]):
                    raise error
            return deliver(backend, messages)

        monkeypatch.setattr(locmem.EmailBackend, "send_messages", send_messages)

    def fail_next(self, address: str, *errors: Exception) -> None:
        self._next[address] = list(errors)

    def fail_always(self, address: str, error: Exception) -> None:
        self._always[address] = error


@pytest.fixture
def server(monkeypatch) -> MailServer:
    return MailServer(monkeypatch)


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """What the sweep queues: recorded, not sent through the broker."""
    ids: list[int] = []
    monkeypatch.setattr(tasks.reply_send, "delay", ids.append)
    return ids


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, list]]:
    """What is handed to the broker after a commit."""
    tasks: list[tuple[str, list]] = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: tasks.append((name, args)))
    return tasks


def settle(reply: TicketComment) -> tuple:
    reply.refresh_from_db()
    return (
        reply.delivery_status,
        reply.delivery_attempts,
        reply.delivery_error,
        reply.sent_at is not None,
    )


# --- Clean headers ------------------------------------------------------------------


def test_a_reply_to_a_subject_with_line_breaks_goes_out_under_one_clean_subject_line(agent):
    ticket = make_ticket(subject="Cannot log in\r\nBcc: mallory@evil.example\x1b\tagain\u2028")
    reply = make_reply(ticket, agent)

    tasks.reply_send.apply(args=[reply.pk])

    [email] = mail.outbox
    assert email.subject == f"Re: Cannot log in Bcc: mallory@evil.example again [#{ticket.pk}]"
    message = email.message()
    assert message["Subject"] == email.subject
    assert message["Bcc"] is None
    assert email.recipients() == ["pat@acme.com"]
    assert settle(reply) == ("sent", 1, "", True)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("Cannot log in", "Cannot log in"),
        ("  two\r\n\r\nlines \n", "two lines"),
        ("tab\tand\x0bvertical\x0cfeed", "tab and vertical feed"),
        ("nul\x00 and bell\x07", "nul and bell"),
        ("next\x85line\u2028and\u2029paragraph", "next line and paragraph"),
        ("Zoë\u2019s café ☕ \u200d", "Zoë\u2019s café ☕ \u200d"),
        ("\r\n", ""),
    ],
)
def test_one_line_folds_control_characters_and_line_breaks_into_single_spaces(text, line):
    assert one_line(text) == line


def test_a_ticket_whose_subject_is_only_line_breaks_gets_a_reply_subject_all_the_same(agent):
    ticket = make_ticket(subject="\r\n")
    tasks.reply_send.apply(args=[make_reply(ticket, agent).pk])
    assert [email.subject for email in mail.outbox] == [f"Re: [#{ticket.pk}]"]


# --- One reply's failure never holds up the others ---------------------------------


def test_the_sweep_queues_every_due_reply_so_one_that_fails_does_not_stop_the_others(
    agent, server, queued
):
    ticket = make_ticket()
    never = make_reply(ticket, agent, to="pat@acme.com\r\nBcc: mallory@evil.example")
    flaky = make_reply(ticket, agent, to="bea@acme.com", age=dt.timedelta(minutes=4))
    fine = make_reply(ticket, agent, to="cy@acme.com", age=dt.timedelta(minutes=3))
    make_reply(ticket, agent, to="dan@acme.com", age=dt.timedelta(minutes=1))  # not due yet
    server.fail_next("bea@acme.com", smtplib.SMTPServerDisconnected("gone"))

    assert replies_sweep.apply().result == 3
    assert queued == [never.pk, flaky.pk, fine.pk]

    for comment_id in queued:  # what the workers do with them, one task each
        tasks.reply_send.apply(args=[comment_id])
    assert [email.to for email in mail.outbox] == [["bea@acme.com"], ["cy@acme.com"]]
    assert settle(never)[:2] == ("failed", 1)
    assert settle(flaky) == ("sent", 2, "", True)
    assert settle(fine) == ("sent", 1, "", True)


# --- Permanent failures are parked at once, transient ones retried then parked ------


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            smtplib.SMTPRecipientsRefused({"pat@acme.com": (550, b"5.1.1 No such user")}),
            "SMTPRecipientsRefused: {'pat@acme.com': (550, b'5.1.1 No such user')}",
        ),
        (
            smtplib.SMTPDataError(554, b"5.7.1 Message rejected"),
            "SMTPDataError: (554, b'5.7.1 Message rejected')",
        ),
        (ValueError("Invalid address"), "ValueError: Invalid address"),
    ],
)
def test_a_failure_that_cannot_pass_parks_the_reply_at_once(agent, server, error, text):
    reply = make_reply(make_ticket(), agent)
    server.fail_always("pat@acme.com", error)

    assert reply_send(comment_id=reply.pk) is False

    assert settle(reply) == ("failed", 1, text, False)
    assert reply.failed_at == reply.last_attempt_at


def test_a_reply_to_an_address_with_a_line_break_is_parked_and_the_sweep_leaves_it(
    agent, server, queued
):
    reply = make_reply(make_ticket(), agent, to="pat@acme.com\nBcc: mallory@evil.example")

    tasks.reply_send.apply(args=[reply.pk])

    status, attempts, error, sent = settle(reply)
    assert (status, attempts, sent) == ("failed", 1, False)
    assert error.startswith("BadHeaderError: Header values can't contain newlines")
    assert server.tried == ["pat@acme.com\nBcc: mallory@evil.example"]
    for later in (dt.timedelta(minutes=10), dt.timedelta(days=3)):
        with time_machine.travel(timezone.now() + later):
            assert replies_unsent() == []
            assert replies_sweep.apply().result == 0
    assert queued == []
    assert server.tried == ["pat@acme.com\nBcc: mallory@evil.example"]
    assert mail.outbox == []


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        smtplib.SMTPRecipientsRefused({"pat@acme.com": (450, b"4.2.0 Mailbox busy")}),
        smtplib.SMTPDataError(451, b"4.3.0 Try again later"),
        smtplib.SMTPConnectError(421, b"4.3.2 Too busy"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_failure_that_may_pass_leaves_the_reply_pending_for_a_retry(agent, server, error):
    reply = make_reply(make_ticket(), agent)
    server.fail_next("pat@acme.com", error)

    with pytest.raises(ReplySendDeferred):
        reply_send(comment_id=reply.pk)

    assert settle(reply) == ("pending", 1, f"{type(error).__name__}: {error}", False)
    assert reply_send(comment_id=reply.pk) is True
    assert settle(reply) == ("sent", 2, "", True)


def test_a_failure_that_may_pass_is_retried_with_backoff_and_parked_after_the_bound(
    agent, server, queued
):
    assert tasks.reply_send.autoretry_for == (ReplySendDeferred,)
    assert (tasks.reply_send.retry_backoff, tasks.reply_send.retry_backoff_max) == (30, 1800)
    assert tasks.reply_send.max_retries == REPLY_MAX_ATTEMPTS - 1 == 8
    reply = make_reply(make_ticket(), agent)
    server.fail_always("pat@acme.com", smtplib.SMTPServerDisconnected("gone"))

    tasks.reply_send.apply(args=[reply.pk])  # eager: each retry runs at once

    assert server.tried == ["pat@acme.com"] * REPLY_MAX_ATTEMPTS
    assert settle(reply) == ("failed", 9, "SMTPServerDisconnected: gone", False)
    with time_machine.travel(timezone.now() + dt.timedelta(days=3)):
        assert replies_sweep.apply().result == 0
    tasks.reply_send.apply(args=[reply.pk])  # a task still queued somewhere does nothing
    assert queued == []
    assert len(server.tried) == REPLY_MAX_ATTEMPTS


def test_a_failure_that_may_pass_is_retried_and_the_next_attempt_sends(agent, server):
    reply = make_reply(make_ticket(), agent)
    server.fail_next("pat@acme.com", TimeoutError("timed out"), TimeoutError("timed out"))

    tasks.reply_send.apply(args=[reply.pk])

    assert server.tried == ["pat@acme.com"] * 3
    assert len(mail.outbox) == 1
    assert settle(reply) == ("sent", 3, "", True)


def test_the_sweep_takes_a_pending_reply_again_only_once_its_retries_are_lost(
    agent, server, queued
):
    reply = make_reply(make_ticket(), agent)
    server.fail_next("pat@acme.com", smtplib.SMTPServerDisconnected("gone"))
    with pytest.raises(ReplySendDeferred):
        reply_send(comment_id=reply.pk)

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=30)):
        assert replies_sweep.apply().result == 0  # the task's retry is still due
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=80)):
        assert replies_sweep.apply().result == 1
    assert queued == [reply.pk]


# --- Parked replies on the ticket page, and Retry ------------------------------------


def page(ticket: Ticket) -> str:
    return f"/admin/support/ticket/{ticket.pk}/change/"


def retry_url(ticket: Ticket) -> str:
    return f"/admin/support/ticket/{ticket.pk}/reply-retry/"


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_ticket_page_shows_a_parked_reply_with_its_error_and_a_retry_button(client, agent):
    ticket = make_ticket()
    reply = parked_reply(ticket, agent)
    client.force_login(agent)

    html = client.get(page(ticket)).content.decode()

    assert html.count('data-testid="reply-parked"') == 1
    assert (
        '<span data-testid="reply-error">SMTPServerDisconnected: Connection unexpectedly '
        "closed</span>" in html
    )
    assert f"Not sent</strong> after {REPLY_MAX_ATTEMPTS} attempts" in html
    assert f'<input type="hidden" name="reply" value="{reply.pk}">' in html
    assert 'data-testid="reply-retry"' in html
    assert f'action="{retry_url(ticket)}"' in html


def test_support_retries_a_parked_reply_and_the_next_attempt_sends_it_once(
    client, agent, server, published, django_capture_on_commit_callbacks
):
    ticket = make_ticket()
    reply = parked_reply(ticket, agent)
    client.force_login(agent)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry_url(ticket), {"reply": reply.pk}, follow=True)
    publish_thread_done()  # the publish thread is done

    assert messages_of(response) == ["The reply is queued again; it is being sent to pat@acme.com."]
    assert response.redirect_chain == [(page(ticket) + "#conversation", 302)]
    assert published == [("support.reply_send", [reply.pk])]
    assert settle(reply) == ("pending", 0, "", False)
    assert reply.history.latest().history_actor == "sam"

    tasks.reply_send.apply(args=[reply.pk])
    assert [email.to for email in mail.outbox] == [["pat@acme.com"]]
    assert settle(reply) == ("sent", 1, "", True)

    response = client.post(retry_url(ticket), {"reply": reply.pk}, follow=True)
    assert messages_of(response)[0].startswith("Not retried. This reply was sent ")
    assert published == [("support.reply_send", [reply.pk])]
    tasks.reply_send.apply(args=[reply.pk])
    assert len(mail.outbox) == 1


def test_a_retried_reply_whose_queueing_is_lost_is_taken_by_the_sweep(agent, published, queued):
    reply = parked_reply(make_ticket(), agent)
    assert replies_unsent() == []

    reply_retry(comment=reply, actor=agent)  # the publish after commit never happens here

    assert published == []
    assert replies_sweep.apply().result == 1
    assert queued == [reply.pk]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Not retried. There is no such reply on this ticket."),
        ({"reply": "abc"}, "Not retried. There is no such reply on this ticket."),
        ({"reply": "9" * 30}, "Not retried. There is no such reply on this ticket."),
        ("pending", "Not retried. This reply is still being sent; it is retried by itself."),
        ("note", "Not retried. Only a reply is emailed; an internal note is not sent."),
        ("other ticket", "Not retried. There is no such reply on this ticket."),
    ],
)
def test_a_retry_that_cannot_apply_says_why_and_changes_nothing(
    client, agent, published, data, message
):
    ticket = make_ticket()
    with acting_as("test:fixture"):
        rows = {
            "pending": make_reply(ticket, agent),
            "note": TicketComment.objects.create(
                ticket=ticket, kind="note", body="Checked", author=agent
            ),
            "other ticket": parked_reply(make_ticket(), agent),
        }
    if isinstance(data, str):
        data = {"reply": rows[data].pk}
    client.force_login(agent)
    before = list(TicketComment.history.values_list("history_id", flat=True))

    response = client.post(retry_url(ticket), data, follow=True)

    assert messages_of(response) == [message]
    assert list(TicketComment.history.values_list("history_id", flat=True)) == before
    assert published == []


@pytest.mark.parametrize("persona", ["manager", "ops_lead", "outsider", "anonymous"])
def test_only_those_who_work_tickets_may_retry_a_reply_and_a_refused_post_changes_nothing(
    request, client, agent, published, persona, django_capture_on_commit_callbacks
):
    ticket = make_ticket()
    reply = parked_reply(ticket, agent)
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    before = settle(reply), reply.history.count()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry_url(ticket), {"reply": reply.pk})

    if persona in ("manager", "ops_lead"):
        assert response.status_code == 403
    else:
        assert (response.status_code, response["Location"][:13]) == (302, "/admin/login/")
    assert (settle(reply), reply.history.count()) == before
    assert published == []


@pytest.mark.parametrize("persona", ["manager", "ops_lead"])
def test_the_retry_service_refuses_those_who_do_not_work_tickets(request, agent, persona):
    reply = parked_reply(make_ticket(), agent)
    before = settle(reply), reply.history.count()

    with pytest.raises(TicketPermissionError):
        reply_retry(comment=reply, actor=request.getfixturevalue(persona))

    assert (settle(reply), reply.history.count()) == before


def test_those_who_may_not_retry_see_the_parked_reply_without_the_button(client, agent, manager):
    ticket = make_ticket()
    parked_reply(ticket, agent)
    client.force_login(manager)

    html = client.get(page(ticket)).content.decode()

    assert 'data-testid="reply-parked"' in html
    assert 'data-testid="reply-retry"' not in html


def test_a_retry_without_the_csrf_token_is_refused(agent, published):
    ticket = make_ticket()
    reply = parked_reply(ticket, agent)
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)

    assert client.post(retry_url(ticket), {"reply": reply.pk}).status_code == 403
    assert settle(reply)[:2] == ("failed", REPLY_MAX_ATTEMPTS)
    assert published == []
