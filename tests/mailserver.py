"""Real mail servers for the email tests, as a pytest plugin (registered in
tests/conftest.py): a private Dovecot IMAP server per test session (per pytest-xdist
worker) with the mailbox emptied for each test, and an SMTP server that catches what
opsdesk sends.

``imap_server``  the running Dovecot (devstack.mailserver.Server): ``url(ssl=...)``,
                 ``ssl_context()`` trusting its self-signed certificate, ``log()``.
``imap_mailbox`` its user's mailbox, empty: ``append(raw, seen=False)`` puts a message
                 in as a mail provider's delivery would, ``is_seen(uid)``, ``unseen()``.
``smtp_catcher`` an SMTP server on a free port with Django's SMTP backend pointed at it;
                 ``messages`` holds each received message (envelope and raw bytes).

Dovecot not installed is a failure, never a skip: CI installs it (devstack test).
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller
from imapclient import SEEN, IMAPClient

from devstack import mailserver

# Characters a URL must %-encode, so every test exercises the poller's decoding.
IMAP_PASSWORD = "s3cret/p@ss%word"
_APPENDUID = re.compile(rb"APPENDUID (\d+) (\d+)")


@pytest.fixture(scope="session")
def imap_server() -> Iterator[mailserver.Server]:
    """This session's Dovecot (one per xdist worker, its own ports), user ``opsdesk``."""
    try:
        server = mailserver.start(password=IMAP_PASSWORD)
    except mailserver.MailServerError as exc:
        pytest.fail(f"the IMAP tests need a real Dovecot: {exc}", pytrace=False)
    try:
        yield server
    finally:
        mailserver.stop(server)


@dataclass
class ImapMailbox:
    """The test user's mailbox, seen from a mail client of its own."""

    server: mailserver.Server
    client: IMAPClient

    def url(self, *, ssl: bool = False, folder: str = "INBOX") -> str:
        return self.server.url(ssl=ssl, folder=folder)

    def append(self, raw: bytes, *, seen: bool = False, folder: str = "INBOX") -> int:
        """Deliver ``raw`` to ``folder`` (made if missing), unseen unless ``seen``; its UID."""
        if not self.client.folder_exists(folder):
            self.client.create_folder(folder)
        response = self.client.append(folder, raw, flags=[SEEN] if seen else [])
        return int(_APPENDUID.search(response).group(2))

    def uidvalidity(self, folder: str = "INBOX") -> int:
        return self.client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"]

    def is_seen(self, uid: int, folder: str = "INBOX") -> bool:
        self.client.select_folder(folder, readonly=True)
        return SEEN in self.client.get_flags([uid])[uid]

    def unseen(self, folder: str = "INBOX") -> list[int]:
        """The UIDs of the unseen messages, in order."""
        self.client.select_folder(folder, readonly=True)
        return sorted(self.client.search(["UNSEEN"]))


@pytest.fixture
def imap_mailbox(imap_server) -> Iterator[ImapMailbox]:
    """An empty mailbox: INBOX emptied, every other folder deleted."""
    client = IMAPClient(imap_server.host, port=imap_server.port, ssl=False, timeout=10)
    client.login(imap_server.user, imap_server.password)
    for _flags, _delimiter, name in client.list_folders():
        if name != "INBOX":
            client.delete_folder(name)
    client.select_folder("INBOX")
    if uids := client.search(["ALL"]):
        client.delete_messages(uids)
        client.expunge()
    try:
        yield ImapMailbox(server=imap_server, client=client)
    finally:
        client.logout()


@dataclass(frozen=True)
class Received:
    """One message as the SMTP server received it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.raw)


@dataclass
class SmtpCatcher:
    host: str
    port: int
    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler
        self.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        """The messages once there are ``count`` (for mail sent by another thread)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} messages received, not {count}")
            time.sleep(0.01)
        return list(self.messages)


@pytest.fixture
def smtp_catcher(settings) -> Iterator[SmtpCatcher]:
    """An SMTP server on 127.0.0.1 that keeps every message, and Django's SMTP backend
    sending to it for this test."""
    catcher = controller = None
    for _attempt in range(5):  # a free port may be taken by another worker in between
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        catcher = SmtpCatcher("127.0.0.1", port)
        controller = Controller(catcher, hostname="127.0.0.1", port=port)
        try:
            controller.start()
            break
        except (OSError, RuntimeError):
            controller = None
    if controller is None:
        pytest.fail("the SMTP catcher found no free port", pytrace=False)
    # aiosmtpd logs every SMTP command at INFO.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = catcher.host, catcher.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    try:
        yield catcher
    finally:
        controller.stop()
