"""Reads that span several apps: what support sees about a customer on one screen."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.utils import timezone

from billing.models import Invoice
from customers.models import Contract, Customer, Entitlement, UsageDaily
from support.models import Case, Ticket

OPEN_TICKET = ~Q(status__in=[Ticket.Status.SOLVED, Ticket.Status.CLOSED])
OPEN_CASE = Q(state__in=[Case.State.OPEN, Case.State.ACKNOWLEDGED])


def _is(condition: Q) -> ExpressionWrapper:
    return ExpressionWrapper(condition, output_field=BooleanField())


@dataclass(frozen=True)
class CustomerOverview:
    contracts: list[Contract]
    entitlements: list[Entitlement]
    entitlement_total: int
    entitlements_by_state: dict[str, int]
    usage: list[UsageDaily]
    tickets: list[Ticket]
    open_ticket_count: int
    cases: list[Case]
    open_case_count: int
    invoices: list[Invoice]


def customer_overview(
    *, customer: Customer, recent: int = 10, usage_days: int = 14, today: dt.date | None = None
) -> CustomerOverview:
    """Everything about ``customer`` that support needs at a glance, in a fixed number
    of queries whatever the customer's size: lists are capped at ``recent`` rows, open
    work first, and totals come from aggregates."""
    today = today or timezone.now().date()
    by_state = dict(
        customer.entitlements.order_by()
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    ticket_counts = customer.tickets.aggregate(open=Count("id", filter=OPEN_TICKET))
    case_counts = customer.cases.aggregate(open=Count("id", filter=OPEN_CASE))
    return CustomerOverview(
        contracts=list(customer.contracts.order_by("-start_date")[:recent]),
        entitlements=list(
            customer.entitlements.select_related("product", "order").order_by("-issued_at")[:recent]
        ),
        entitlement_total=sum(by_state.values()),
        entitlements_by_state=by_state,
        usage=list(
            customer.usage.filter(date__gte=today - dt.timedelta(days=usage_days)).order_by("-date")
        ),
        # Open tickets first (soonest deadline first), then the most recent closed ones.
        tickets=list(
            customer.tickets.select_related("assignee")
            .prefetch_related("tags")
            .alias(is_open=_is(OPEN_TICKET))
            .order_by("-is_open", "first_response_due_at", "-created_at")[:recent]
        ),
        open_ticket_count=ticket_counts["open"],
        cases=list(
            customer.cases.select_related("owner")
            .alias(is_open=_is(OPEN_CASE))
            .order_by("-is_open", "opened_at")[:recent]
        ),
        open_case_count=case_counts["open"],
        invoices=list(customer.invoices.order_by("-period_start")[:6]),
    )
