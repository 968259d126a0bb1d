"""Reading an inbound email (docs/contracts/email.md): the standard library's parser with
its modern policy, and what every step after intake needs from the headers.

What a person wrote (quoted earlier messages and signatures removed, HTML turned into
text), its attachments, and whether it is an auto-reply or a bounce are read by
``support.email_content``; this module is only the envelope, which intake stores beside
the raw message."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from kit.text import one_line

# The largest message either way in takes (docs/contracts/email.md: 413 above it).
MAX_MESSAGE_BYTES = 25 * 1024 * 1024

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# The last <local@domain> of a From header: what a lenient mail server delivers to even
# when the display name before it is not quoted as RFC 5322 asks (``<b>x</b> <a@b.c>``).
_ANGLE_ADDRESS = re.compile(r"<([^<>\s@]+@[^<>\s@]+)>\s*$")


class UnparseableMessage(ValueError):
    """The bytes are not an email opsdesk can work with; the message says why."""


@dataclass(frozen=True)
class Envelope:
    message_id: str
    from_address: str
    from_name: str
    subject: str


def message_parse(raw: bytes) -> EmailMessage:
    """The message, or ``UnparseableMessage``: an email has a header section with a
    ``From`` that names an address (RFC 5322 3.6: From is required)."""
    if not raw.strip():
        raise UnparseableMessage("the body is empty, not an email")
    message = email.message_from_bytes(raw, policy=policy.default)
    if not message.keys():
        raise UnparseableMessage("no header section: not an RFC 5322 message")
    if not sender_address(message):
        raise UnparseableMessage("no From header with an email address")
    return message


def _header(message: EmailMessage, name: str) -> str:
    """A header's text; "" when absent or when even the lenient parser can't read it."""
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # malformed encoded words, bad addresses
        return ""
    return str(value) if value is not None else ""


def _sender(message: EmailMessage) -> tuple[str, str]:
    """(display name, address) of From; the address is "" when there is none."""
    value = _header(message, "From")
    name, address = parseaddr(value)
    if "@" in address:
        return name, address
    # The parsed header keeps only what it could read ("script" of the example above):
    # look at the header as it came, unfolded.
    raw = next((str(v) for k, v in message.raw_items() if k.lower() == "from"), "")
    raw = re.sub(r"\r?\n[ \t]", " ", raw).strip()
    angle = _ANGLE_ADDRESS.search(raw)
    if angle is None:
        return "", ""
    return raw[: angle.start()].strip().strip('"'), angle[1]


def sender_address(message: EmailMessage) -> str:
    """The From address as sent; "" when there is none."""
    return _sender(message)[1]


def message_ids(value: str) -> list[str]:
    """Every ``<id>`` in a Message-ID, In-Reply-To or References header, in order."""
    return _MESSAGE_ID.findall(value or "")


def recipients(message: EmailMessage) -> list[str]:
    """The addresses the message was sent or delivered to: To, Cc, Delivered-To."""
    values = [_header(message, name) for name in ("To", "Cc")]
    values += [str(v) for v in (message.get_all("Delivered-To") or [])]
    return [address for _, address in getaddresses(values) if "@" in address]


def envelope(message: EmailMessage) -> Envelope:
    name = _sender(message)[0]
    ids = message_ids(_header(message, "Message-ID"))
    return Envelope(
        message_id=ids[0] if ids else "",
        from_address=sender_address(message)[:254],
        from_name=one_line(name)[:200],
        subject=one_line(_header(message, "Subject"))[:300],
    )
