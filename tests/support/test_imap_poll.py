"""Inbound email by IMAP (docs/contracts/email.md, Inbound: Pull), against a real Dovecot
(tests/mailserver.py): each unseen message stored exactly once and only then marked seen,
whatever fails in between, one poll at a time, and a mailbox that cannot be reached
logged, never raised. Transactional: the poller marks mail seen only after the store
has really committed, so it refuses to run inside a test's transaction."""

from __future__ import annotations

import logging
import socket
import threading
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from django.db import connection, transaction
from imapclient import IMAPClient

from support import imap, tasks
from support.imap import PollResult, imap_poll
from support.inbound import inbound_store
from support.models import InboundEmail
from tests.mailserver import IMAP_PASSWORD
from tests.support.mail_sender import message

pytestmark = pytest.mark.django_db(transaction=True)


def delivery_id(mailbox, uid: int, folder: str = "INBOX") -> str:
    return f"imap:127.0.0.1/{folder}:{mailbox.uidvalidity(folder)}:{uid}"


@contextmanager
def socket_closed_port():
    """A port of 127.0.0.1 nothing listens on (held, so nothing else takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_an_unseen_message_is_stored_once_then_marked_seen(imap_mailbox):
    raw = message(message_id="<a1@mail.acme.com>")
    uid = imap_mailbox.append(raw)

    result = imap_poll(url=imap_mailbox.url())

    assert result == PollResult(fetched=1, stored=1)
    stored = InboundEmail.objects.get()
    assert (stored.source, stored.delivery_id, stored.message_id) == (
        "imap",
        delivery_id(imap_mailbox, uid),
        "<a1@mail.acme.com>",
    )
    assert bytes(stored.raw) == raw
    assert (stored.status, stored.from_address) == ("pending", "pat@acme.com")
    assert imap_mailbox.is_seen(uid)


def test_a_second_poll_stores_nothing_more(imap_mailbox):
    imap_mailbox.append(message(message_id="<a1@mail.acme.com>"))
    imap_poll(url=imap_mailbox.url())

    assert imap_poll(url=imap_mailbox.url()) == PollResult()
    assert InboundEmail.objects.count() == 1


def test_a_message_already_seen_is_left_alone(imap_mailbox):
    imap_mailbox.append(message(message_id="<read@mail.acme.com>"), seen=True)
    new = imap_mailbox.append(message(message_id="<new@mail.acme.com>"))

    assert imap_poll(url=imap_mailbox.url()) == PollResult(fetched=1, stored=1)
    assert list(InboundEmail.objects.values_list("delivery_id", "message_id")) == [
        (delivery_id(imap_mailbox, new), "<new@mail.acme.com>")
    ]


def test_a_crash_after_storing_and_before_marking_seen_stores_nothing_twice(
    imap_mailbox, monkeypatch
):
    uid = imap_mailbox.append(message(message_id="<a1@mail.acme.com>"))

    def worker_killed(self, messages, flags, silent=False):
        raise RuntimeError("the worker died")

    with monkeypatch.context() as patch:
        patch.setattr(IMAPClient, "add_flags", worker_killed)
        with pytest.raises(RuntimeError, match="the worker died"):
            imap_poll(url=imap_mailbox.url())
    assert InboundEmail.objects.count() == 1
    assert imap_mailbox.unseen() == [uid]

    assert imap_poll(url=imap_mailbox.url()) == PollResult(fetched=1, duplicates=1)
    assert InboundEmail.objects.get().delivery_id == delivery_id(imap_mailbox, uid)
    assert imap_mailbox.is_seen(uid)


def test_a_connection_lost_before_marking_seen_is_a_result_and_the_next_poll_finishes(
    imap_mailbox, monkeypatch
):
    uid = imap_mailbox.append(message(message_id="<a1@mail.acme.com>"))

    def connection_reset(self, messages, flags, silent=False):
        raise ConnectionResetError(104, "Connection reset by peer")

    with monkeypatch.context() as patch:
        patch.setattr(IMAPClient, "add_flags", connection_reset)
        lost = imap_poll(url=imap_mailbox.url())

    assert lost == PollResult(
        fetched=1, stored=1, error="ConnectionResetError: [Errno 104] Connection reset by peer"
    )
    assert imap_poll(url=imap_mailbox.url()) == PollResult(fetched=1, duplicates=1)
    assert InboundEmail.objects.count() == 1
    assert imap_mailbox.is_seen(uid)


def test_a_message_the_webhook_brought_first_is_not_stored_again(imap_mailbox):
    raw = message(message_id="<both@mail.acme.com>")
    inbound_store(source="webhook", delivery_id="msg_2Lq", raw=raw)
    uid = imap_mailbox.append(raw)

    assert imap_poll(url=imap_mailbox.url()) == PollResult(fetched=1, duplicates=1)
    assert list(InboundEmail.objects.values_list("source", "delivery_id")) == [
        ("webhook", "msg_2Lq")
    ]
    assert imap_mailbox.is_seen(uid)


def test_a_message_that_is_not_an_email_is_stored_rejected_and_marked_seen(imap_mailbox):
    uid = imap_mailbox.append(b"Subject: no sender\r\n\r\nhello\r\n")

    assert imap_poll(url=imap_mailbox.url()) == PollResult(fetched=1, stored=1)
    stored = InboundEmail.objects.get()
    assert (stored.status, stored.error) == ("rejected", "no From header with an email address")
    assert imap_mailbox.is_seen(uid)


def test_a_message_over_the_limit_is_marked_seen_and_never_downloaded(
    imap_mailbox, monkeypatch, caplog
):
    monkeypatch.setattr(imap, "MAX_MESSAGE_BYTES", 2000)
    small = imap_mailbox.append(message(message_id="<small@mail.acme.com>"))
    big = imap_mailbox.append(message(message_id="<big@mail.acme.com>", body="x" * 3000))
    fetched = []
    real_fetch = IMAPClient.fetch

    def recording_fetch(self, messages, data, modifiers=None):
        fetched.append((list(messages), list(data)))
        return real_fetch(self, messages, data, modifiers)

    monkeypatch.setattr(IMAPClient, "fetch", recording_fetch)
    with caplog.at_level(logging.WARNING, logger="support.imap"):
        result = imap_poll(url=imap_mailbox.url())

    assert result == PollResult(fetched=1, stored=1, too_large=1)
    assert fetched == [([small, big], ["RFC822.SIZE"]), ([small], ["BODY.PEEK[]"])]
    assert InboundEmail.objects.get().message_id == "<small@mail.acme.com>"
    assert imap_mailbox.unseen() == []
    assert [r.getMessage() for r in caplog.records] == [
        f"IMAP message 127.0.0.1/INBOX:{imap_mailbox.uidvalidity()}:{big} is "
        f"{len(message(message_id='<big@mail.acme.com>', body='x' * 3000))} bytes, over the "
        "2000 of an inbound email: marked seen, not stored"
    ]


def test_a_poll_takes_at_most_its_limit_oldest_first(imap_mailbox):
    uids = [imap_mailbox.append(message(message_id=f"<m{i}@mail.acme.com>")) for i in range(3)]

    assert imap_poll(url=imap_mailbox.url(), limit=2) == PollResult(fetched=2, stored=2)
    assert imap_mailbox.unseen() == [uids[2]]
    assert imap_poll(url=imap_mailbox.url(), limit=2) == PollResult(fetched=1, stored=1)
    assert InboundEmail.objects.count() == 3


def test_many_messages_are_fetched_in_batches(imap_mailbox, monkeypatch):
    monkeypatch.setattr(imap, "FETCH_BATCH", 4)
    for i in range(10):
        imap_mailbox.append(message(message_id=f"<m{i}@mail.acme.com>"))

    assert imap_poll(url=imap_mailbox.url()) == PollResult(fetched=10, stored=10)
    assert imap_mailbox.unseen() == []
    assert sorted(InboundEmail.objects.values_list("message_id", flat=True)) == sorted(
        f"<m{i}@mail.acme.com>" for i in range(10)
    )


def test_the_folder_of_the_url_is_polled(imap_mailbox):
    inbox = imap_mailbox.append(message(message_id="<inbox@mail.acme.com>"))
    uid = imap_mailbox.append(message(message_id="<sup@mail.acme.com>"), folder="Support Mail")

    url = imap_mailbox.url(folder="Support Mail")
    assert url.endswith("/Support%20Mail")
    result = imap_poll(url=url)

    assert result == PollResult(fetched=1, stored=1)
    assert InboundEmail.objects.get().delivery_id == delivery_id(imap_mailbox, uid, "Support Mail")
    assert imap_mailbox.unseen() == [inbox]


def test_imaps_is_verified_against_the_given_certificate_authority(imap_mailbox, imap_server):
    uid = imap_mailbox.append(message(message_id="<tls@mail.acme.com>"))

    refused = imap_poll(url=imap_mailbox.url(ssl=True))  # the system's CAs: self-signed fails
    assert (refused.stored, refused.error.split(":")[0]) == (0, "SSLCertVerificationError")
    assert imap_mailbox.unseen() == [uid]

    result = imap_poll(url=imap_mailbox.url(ssl=True), ssl_context=imap_server.ssl_context())
    assert result == PollResult(fetched=1, stored=1)
    assert imap_mailbox.is_seen(uid)


def test_a_wrong_password_is_logged_and_returned_never_raised(
    imap_mailbox, imap_server, settings, caplog
):
    imap_mailbox.append(message())
    settings.OPSDESK_IMAP_URL = imap_server.url(password="wrong-password")

    with caplog.at_level(logging.WARNING, logger="support.imap"):
        result = tasks.imap_poll()

    error = "LoginError: [AUTHENTICATIONFAILED] Authentication failed."
    assert result == PollResult(error=error)
    assert [r.getMessage() for r in caplog.records] == [
        f"IMAP poll of 127.0.0.1/INBOX failed, next poll retries: {error}"
    ]
    assert "wrong-password" not in caplog.text
    assert not InboundEmail.objects.exists()


def test_a_server_that_is_down_is_logged_and_returned_never_raised(settings, caplog):
    with socket_closed_port() as port:
        settings.OPSDESK_IMAP_URL = (
            f"imaps://opsdesk:{quote(IMAP_PASSWORD, safe='')}@127.0.0.1:{port}/"
        )
        with caplog.at_level(logging.WARNING, logger="support.imap"):
            result = tasks.imap_poll()

    assert result == PollResult(error="ConnectionRefusedError: [Errno 111] Connection refused")
    assert "ConnectionRefusedError" in caplog.text
    assert IMAP_PASSWORD not in caplog.text


def test_the_task_polls_the_configured_mailbox(imap_mailbox, settings):
    uid = imap_mailbox.append(message())
    settings.OPSDESK_IMAP_URL = imap_mailbox.url()

    assert tasks.imap_poll() == PollResult(fetched=1, stored=1)
    assert imap_mailbox.is_seen(uid)


def test_the_task_does_nothing_without_a_mailbox(settings):
    settings.OPSDESK_IMAP_URL = ""

    assert tasks.imap_poll() is None


def test_two_polls_at_once_one_does_the_work(imap_mailbox, monkeypatch):
    imap_mailbox.append(message(message_id="<a1@mail.acme.com>"))
    storing, go_on = threading.Event(), threading.Event()

    def held_while_storing(**kwargs):
        storing.set()
        go_on.wait(timeout=10)
        return inbound_store(**kwargs)

    monkeypatch.setattr(imap, "inbound_store", held_while_storing)
    results = {}

    def first_poll():
        try:
            results["first"] = imap_poll(url=imap_mailbox.url())
        finally:
            connection.close()

    thread = threading.Thread(target=first_poll)
    thread.start()
    assert storing.wait(timeout=10)
    results["second"] = imap_poll(url=imap_mailbox.url())
    go_on.set()
    thread.join(timeout=30)

    assert results == {"first": PollResult(fetched=1, stored=1), "second": PollResult(busy=True)}
    assert InboundEmail.objects.count() == 1


def test_a_poll_inside_a_transaction_is_refused(imap_mailbox):
    imap_mailbox.append(message())
    with transaction.atomic(), pytest.raises(RuntimeError, match="outside"):
        imap_poll(url=imap_mailbox.url())
    assert len(imap_mailbox.unseen()) == 1
