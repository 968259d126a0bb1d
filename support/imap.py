"""Inbound email by pull (docs/contracts/email.md, Inbound: Pull): the mailbox of
``OPSDESK_IMAP_URL`` is polled by the scheduler, each new message is stored exactly once
with ``support.inbound.inbound_store`` and only then marked seen on the server.

Exactly once, whatever fails when: a message is fetched with ``BODY.PEEK[]`` (which
leaves it unseen) and flagged ``\\Seen`` only after the transaction that stored it has
committed. A poll that dies between the two fetches the message again next time, and
``inbound_store`` recognises it by its delivery id (mailbox, UIDVALIDITY, UID) or its
Message-ID (the same message after the mailbox was recreated, or delivered by the webhook
too) and stores nothing. Any standard IMAP server works: nothing here depends on a
provider's extensions.
"""

from __future__ import annotations

import hashlib
import imaplib
import logging
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import connection
from imapclient import SEEN, IMAPClient

from support.email_message import MAX_MESSAGE_BYTES
from support.inbound import inbound_store

logger = logging.getLogger(__name__)

# Every network operation gives up after this long; the next poll tries again.
TIMEOUT_SECONDS = 30
# Bodies fetched per round trip: at most this many messages, and (unless one message is
# bigger) at most this many bytes, so a poll holds a bounded amount of mail in memory.
FETCH_BATCH = 25
FETCH_BATCH_BYTES = 32 * 1024 * 1024
_DELIVERY_ID_MAX = 255  # InboundEmail.delivery_id
_BYTES_REPR = re.compile(r"b(['\"])(.*)\1", re.DOTALL)


@dataclass(frozen=True)
class Mailbox:
    """Where ``OPSDESK_IMAP_URL`` points: ``imaps://user:password@host:993/INBOX``."""

    tls: bool
    host: str
    port: int
    user: str
    password: str = ""
    folder: str = "INBOX"

    def __repr__(self) -> str:  # never the password, in logs or tracebacks
        return f"Mailbox({self.name!r})"

    @property
    def name(self) -> str:
        return f"{self.host}/{self.folder}"


def mailbox_from_url(url: str) -> Mailbox:
    """The mailbox of an ``imap://`` or ``imaps://`` URL; user, password and folder are
    %-decoded, the folder defaults to INBOX. ``ValueError`` (naming no secret) otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in {"imap", "imaps"} or not parts.hostname:
        raise ValueError("an IMAP URL is imap:// or imaps:// with a host name")
    tls = parts.scheme == "imaps"
    try:
        port = parts.port or (993 if tls else 143)
    except ValueError:
        raise ValueError("the IMAP URL's port is not a number from 1 to 65535") from None
    return Mailbox(
        tls=tls,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
    )


@dataclass(frozen=True)
class PollResult:
    """What one poll did. ``fetched`` messages were downloaded; of those ``stored`` were
    new and ``duplicates`` stored before (all of them are now seen). ``too_large`` were
    over ``MAX_MESSAGE_BYTES``: marked seen and logged, never downloaded. ``busy``: another
    poll of the mailbox was running, this one did nothing. ``error``: why the poll stopped
    early (the mailbox unreachable, the login refused); the next poll tries again."""

    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    too_large: int = 0
    busy: bool = False
    error: str = ""


def imap_poll(
    *, url: str | None = None, ssl_context: ssl.SSLContext | None = None, limit: int = 200
) -> PollResult:
    """Store every unseen message of the mailbox (``url``, default
    ``OPSDESK_IMAP_URL``), at most ``limit`` oldest first, each exactly once, then mark
    it seen. Safe to run any number of times and from several workers or schedulers at
    once: one poll per mailbox runs, the others return ``busy`` (a PostgreSQL advisory
    lock; should two ever overlap, ``inbound_store`` still stores each message once).

    A server that cannot be reached or refuses the login is logged and given in
    ``error``; nothing raises for it. ``ssl_context`` verifies ``imaps://`` (default: the
    system's trusted CAs). Must run outside a transaction: a message is marked seen only
    once its row is committed.
    """
    mailbox = mailbox_from_url(url or settings.OPSDESK_IMAP_URL)
    if connection.in_atomic_block:
        raise RuntimeError("imap_poll marks mail seen once it is committed: call it outside")
    with _poll_lock(mailbox) as held:
        if not held:
            logger.info("IMAP poll of %s skipped: another poll is running", mailbox.name)
            return PollResult(busy=True)
        counts = _Counts()
        try:
            with _connected(mailbox, ssl_context) as client:
                _poll(client, mailbox, limit=limit, counts=counts)
        except (imaplib.IMAP4.error, OSError) as exc:  # IMAPClient's errors, sockets, TLS
            error = f"{type(exc).__name__}: {_text(exc)}"
            logger.warning("IMAP poll of %s failed, next poll retries: %s", mailbox.name, error)
            return counts.result(error=error)
    if counts.fetched or counts.too_large:
        logger.info("IMAP poll of %s: %s", mailbox.name, counts.result())
    return counts.result()


@dataclass
class _Counts:
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    too_large: int = 0

    def result(self, *, error: str = "") -> PollResult:
        return PollResult(
            fetched=self.fetched,
            stored=self.stored,
            duplicates=self.duplicates,
            too_large=self.too_large,
            error=error,
        )


@contextmanager
def _poll_lock(mailbox: Mailbox) -> Iterator[bool]:
    """A session-level advisory lock per mailbox, held across the poll's transactions
    (released with the connection should the process die)."""
    key = f"support.imap_poll:{mailbox.user}@{mailbox.host}:{mailbox.port}/{mailbox.folder}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


@contextmanager
def _connected(mailbox: Mailbox, ssl_context: ssl.SSLContext | None) -> Iterator[IMAPClient]:
    client = IMAPClient(
        mailbox.host,
        port=mailbox.port,
        ssl=mailbox.tls,
        ssl_context=ssl_context if mailbox.tls else None,
        timeout=TIMEOUT_SECONDS,
    )
    try:
        client.login(mailbox.user, mailbox.password)
        yield client
    finally:
        with suppress(imaplib.IMAP4.error, OSError):
            client.logout()


def _poll(client: IMAPClient, mailbox: Mailbox, *, limit: int, counts: _Counts) -> None:
    uidvalidity = client.select_folder(mailbox.folder)[b"UIDVALIDITY"]
    uids = sorted(client.search(["UNSEEN", "UNDELETED"]))[:limit]
    if not uids:
        return
    # Sizes first: a message over the limit is never downloaded.
    answers = client.fetch(uids, ["RFC822.SIZE"])
    sizes = {uid: data.get(b"RFC822.SIZE", 0) for uid, data in answers.items()}
    too_large = {uid for uid in uids if sizes.get(uid, 0) > MAX_MESSAGE_BYTES}
    for uid in sorted(too_large):
        logger.warning(
            "IMAP message %s:%s:%s is %s bytes, over the %s of an inbound email: "
            "marked seen, not stored",
            mailbox.name,
            uidvalidity,
            uid,
            sizes[uid],
            MAX_MESSAGE_BYTES,
        )
    if too_large:
        client.add_flags(sorted(too_large), [SEEN])
        counts.too_large += len(too_large)
    wanted = [uid for uid in uids if uid in sizes and uid not in too_large]
    for batch in _batches(wanted, sizes):
        bodies = client.fetch(batch, ["BODY.PEEK[]"])
        done = []
        for uid in batch:
            raw = bodies.get(uid, {}).get(b"BODY[]")
            if raw is None:  # expunged by someone else since the search
                continue
            counts.fetched += 1
            done.append(uid)
            if len(raw) > MAX_MESSAGE_BYTES:  # the server's size was wrong
                logger.warning(
                    "IMAP message %s:%s is over the limit: not stored", mailbox.name, uid
                )
                counts.too_large += 1
                continue
            # inbound_store commits before it returns (no transaction is open here).
            result = inbound_store(
                source="imap", delivery_id=_delivery_id(mailbox, uidvalidity, uid), raw=raw
            )
            if result.created:
                counts.stored += 1
            else:
                counts.duplicates += 1
        if done:
            client.add_flags(done, [SEEN])


def _batches(uids: list[int], sizes: dict[int, int]) -> Iterator[list[int]]:
    batch: list[int] = []
    total = 0
    for uid in uids:
        if batch and (len(batch) == FETCH_BATCH or total + sizes[uid] > FETCH_BATCH_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += sizes[uid]
    if batch:
        yield batch


def _delivery_id(mailbox: Mailbox, uidvalidity: int, uid: int) -> str:
    """``imap:<host>/<folder>:<uidvalidity>:<uid>``: one message of one mailbox for as
    long as its UIDs stay valid (a very long folder name is hashed to fit)."""
    delivery_id = f"imap:{mailbox.name}:{uidvalidity}:{uid}"
    if len(delivery_id) <= _DELIVERY_ID_MAX:
        return delivery_id
    digest = hashlib.sha256(mailbox.name.encode()).hexdigest()
    return f"imap:{digest}:{uidvalidity}:{uid}"


def _text(exc: BaseException) -> str:
    """An exception's message. IMAP server replies arrive as bytes, and IMAPClient's
    LoginError holds their repr (``b'[AUTHENTICATIONFAILED] ...'``): the text itself."""
    text = str(exc) or repr(exc)
    if len(exc.args) == 1 and isinstance(exc.args[0], bytes):
        text = exc.args[0].decode(errors="replace")
    elif quoted := _BYTES_REPR.fullmatch(text):
        text = quoted.group(2)
    return text
