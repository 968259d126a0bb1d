"""What support sees beside a ticket: the customer's state on one screen."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone

from customers.models import Contract, Customer, Entitlement, UsageDaily
from customers.selectors import contract_current, renewal_is_soon
from support.models import Case, Ticket, TicketComment

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


def ticket_thread(*, ticket: Ticket) -> list[TicketComment]:
    return list(ticket.comments.select_related("author").order_by("created_at", "id"))
