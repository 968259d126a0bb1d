"""What support sees beside a ticket: the customer's state on one screen."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Prefetch, Q
from django.utils import timezone

from customers.models import Contract, Customer, Entitlement, UsageDaily
from customers.selectors import contract_current, renewal_is_soon
from support.filters import queue_order
from support.models import Case, EmailAttachment, InboundEmail, Ticket, TicketComment

IN_USE = [Entitlement.State.ASSIGNED, Entitlement.State.REDEEMED]


@dataclass(frozen=True)
class TicketContext:
    customer: Customer | None
    contract: Contract | None
    days_to_end: int | None
    entitlements_in_use: int
    entitlements_issued: int
    usage: UsageDaily | None
    recent_tickets: list[Ticket]
    open_cases: list[Case]
    open_case_count: int

    @property
    def seats_over(self) -> int:
        return max(0, self.entitlements_in_use - self.contract.seats) if self.contract else 0

    @property
    def active_over_seats(self) -> int:
        """Weekly active users above the contracted seats: what billing charges as extra
        seats (at the month's peak), whatever the seat entitlements assigned."""
        if self.contract is None or self.usage is None:
            return 0
        return max(0, self.usage.active_users_7d - self.contract.seats)

    @property
    def days_since_end(self) -> int | None:
        return -self.days_to_end if self.days_to_end is not None and self.days_to_end < 0 else None

    @property
    def renewal_soon(self) -> bool:
        """The digest's "renewal soon" (opsdesk.health.flags.renewal_soon): an active
        contract ends within ``OPSDESK_HEALTH_RENEWAL_DAYS``, that day included."""
        return (
            self.contract is not None
            and self.contract.status == Contract.Status.ACTIVE
            and renewal_is_soon(self.days_to_end)
        )


def ticket_context(
    *, ticket: Ticket, recent: int = 5, today: dt.date | None = None
) -> TicketContext:
    """The customer beside ``ticket``, in six queries whatever the customer's
    size (none for a ticket without a customer; the customer and account manager come
    with the ticket, see ``TicketAdmin.get_queryset``)."""
    customer = ticket.customer
    if customer is None:
        return TicketContext(None, None, None, 0, 0, None, [], [], 0)
    today = today or timezone.now().date()
    contract = contract_current(customer=customer)
    counts = customer.entitlements.aggregate(
        in_use=Count("id", filter=Q(state__in=IN_USE)),
        issued=Count("id", filter=Q(state=Entitlement.State.ISSUED)),
    )
    open_cases = customer.cases.filter(state__in=Case.OPEN_STATES)
    return TicketContext(
        customer=customer,
        contract=contract,
        days_to_end=(contract.end_date - today).days if contract and contract.end_date else None,
        entitlements_in_use=counts["in_use"],
        entitlements_issued=counts["issued"],
        usage=customer.usage.order_by("-date").first(),
        recent_tickets=list(
            customer.tickets.exclude(pk=ticket.pk)
            .select_related("assignee")
            .order_by("-created_at")[:recent]
        ),
        open_cases=list(open_cases.select_related("owner").order_by("opened_at")[:recent]),
        open_case_count=open_cases.count(),
    )


@dataclass(frozen=True)
class ThreadEntry:
    """One entry of a ticket's conversation as the ticket page shows it.

    ``kind``: "request" (the ticket's own message, for a ticket not opened by email),
    a ``TicketComment.Kind`` (``comment`` set: customer, reply, note) or an automatic
    email's ``InboundEmail.Kind`` (``email`` set: auto_reply, bounce)."""

    kind: str
    at: dt.datetime
    anchor: str
    comment: TicketComment | None = None
    email: InboundEmail | None = None


# What an automatic email's one line shows; its raw message stays in the database.
_EMAIL_LINE = ["id", "ticket_id", "kind", "matched_by", "from_address", "subject", "received_at"]


def ticket_thread(*, ticket: Ticket) -> list[ThreadEntry]:
    """The ticket's conversation in order: its request, the customer's messages (with
    the email each came in and its attachments), replies, internal notes, and the
    automatic replies and bounces that reached it.

    Three queries whatever its length: the entries with their authors and emails, the
    attachments of those emails, the automatic emails. No raw message or attachment
    content is read (a page would load megabytes to show names and sizes). A ticket
    opened by email has its first message as an entry, so its ``message`` (the same
    text, kept for triage and search) is not shown twice."""
    comments = list(
        ticket.comments.select_related("author", "inbound")
        .defer("inbound__raw")
        .prefetch_related(
            Prefetch("inbound__attachments", queryset=EmailAttachment.objects.defer("content"))
        )
        .order_by("created_at", "id")
    )
    emails = list(
        InboundEmail.objects.filter(ticket=ticket)
        .filter(
            Q(kind__in=[InboundEmail.Kind.AUTO_REPLY, InboundEmail.Kind.BOUNCE])
            | Q(matched_by=InboundEmail.MatchedBy.NEW_TICKET)
        )
        .only(*_EMAIL_LINE)
        .order_by("received_at", "id")
    )
    opened_by_email = any(e.matched_by == InboundEmail.MatchedBy.NEW_TICKET for e in emails)
    entries = [] if opened_by_email else [ThreadEntry("request", ticket.created_at, "request")]
    entries += [ThreadEntry(c.kind, c.created_at, f"c{c.pk}", comment=c) for c in comments]
    entries += [
        ThreadEntry(e.kind, e.received_at, f"e{e.pk}", email=e)
        for e in emails
        if e.kind in (InboundEmail.Kind.AUTO_REPLY, InboundEmail.Kind.BOUNCE)
    ]
    # Stable: the request first, then by time (a comment before an email at the same time).
    return sorted(entries, key=lambda entry: (entry.kind != "request", entry.at))


def ticket_next_in_queue(*, user: AbstractBaseUser, after: Ticket) -> Ticket | None:
    """The ticket ``user`` works next: the open tickets assigned to them, then the
    unassigned ones, each in the triage queue's order (``queue_order``), ``after``
    (the one just worked) left out. Waiting-on-customer tickets are not next: they
    wait for the customer. Two short queries at most, on the queue's index."""
    candidates = Ticket.objects.filter(status=Ticket.Status.OPEN).exclude(pk=after.pk)
    return (
        queue_order(candidates.filter(assignee=user)).first()
        or queue_order(candidates.filter(assignee__isnull=True)).first()
    )
