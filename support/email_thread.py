"""Threading of support email (docs/contracts/email.md): the per-ticket Reply-To address
that routes a requester's answer back to its ticket, and the Message-ID, In-Reply-To and
References that keep every client's thread together."""

from __future__ import annotations

import re
from email.utils import formataddr, make_msgid, parseaddr

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

# The token is an HMAC of the ticket id under SECRET_KEY: an address cannot be guessed or
# made for another ticket. 20 hex characters (80 bits) keep the address short.
TOKEN_SALT = "opsdesk.support.reply-to"
TOKEN_LENGTH = 20
# References carries the thread's first message and its latest ones: enough for every
# client to thread, without growing a header without end on a long ticket.
REFERENCES_KEPT = 20

_TICKET_ADDRESS = re.compile(r"^(?P<local>.+)\+t(?P<id>[0-9]{1,18})\.(?P<token>[0-9a-f]+)$")


def _support_address() -> tuple[str, str, str]:
    """(display name, local part, domain) of ``OPSDESK_SUPPORT_FROM``."""
    name, address = parseaddr(settings.OPSDESK_SUPPORT_FROM)
    local, _, domain = address.rpartition("@")
    return name, local, domain


def ticket_token(ticket_id: int) -> str:
    return salted_hmac(TOKEN_SALT, str(ticket_id)).hexdigest()[:TOKEN_LENGTH]


def ticket_reply_address(ticket_id: int) -> str:
    """The Reply-To of a reply on ticket ``ticket_id``: the support address's local part
    plus ``+t<id>.<token>``, same domain, same display name."""
    name, local, domain = _support_address()
    return formataddr((name, f"{local}+t{ticket_id}.{ticket_token(ticket_id)}@{domain}"))


def ticket_id_from_address(address: str) -> int | None:
    """The ticket a recipient address routes to, or None: the address must be a
    ``+t<id>.<token>`` variant of the support address with the token of that id (any case
    in the local part and domain; a token for another ticket routes nowhere)."""
    _, support_local, support_domain = _support_address()
    local, _, domain = parseaddr(address)[1].rpartition("@")
    match = _TICKET_ADDRESS.match(local.lower())
    if match is None or domain.lower() != support_domain.lower():
        return None
    if match["local"] != support_local.lower():
        return None
    ticket_id = int(match["id"])
    return ticket_id if constant_time_compare(match["token"], ticket_token(ticket_id)) else None


def message_id_new() -> str:
    """A Message-ID unique per message, on the support domain."""
    return make_msgid(domain=_support_address()[2] or "localhost")


def thread_headers(earlier: list[str]) -> dict[str, str]:
    """In-Reply-To and References of a message answering a thread whose messages so far
    have the Message-IDs ``earlier`` (oldest first): it answers the latest, and References
    lists the thread's first message and its latest ones, oldest first (RFC 5322 3.6.4)."""
    if not earlier:
        return {}
    kept = (
        earlier
        if len(earlier) <= REFERENCES_KEPT
        else [earlier[0], *earlier[-(REFERENCES_KEPT - 1) :]]
    )
    return {"In-Reply-To": earlier[-1], "References": " ".join(kept)}
