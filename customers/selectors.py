"""Reads about customers that the apps above share: each rule here is the one copy of it."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)

from customers.models import Contract, Customer

# The customer's current contract (docs/product.md "Triage rules", "Triage queue"): the
# active one, else the latest. Several active contracts: the one that started last; the
# latest of the rest by start date, whatever its status (ended, cancelled or a draft
# renewal), so a lapsed customer still shows the plan it had. The id breaks ties, so two
# readers never pick different rows.
_CURRENT_FIRST = (
    Case(
        When(status=Contract.Status.ACTIVE, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    ),
    "-start_date",
    "-pk",
)


def contracts_current_first(customer: Customer | OuterRef | int) -> QuerySet[Contract]:
    """The customer's contracts, its current contract first. ``customer`` may be an
    ``OuterRef`` to use it inside another query (see ``current_contract_subquery``)."""
    return Contract.objects.filter(customer=customer).order_by(*_CURRENT_FIRST)


def contract_current(*, customer: Customer) -> Contract | None:
    """The customer's current contract (the active one, else the latest), or None when it
    has none; one query."""
    return contracts_current_first(customer).first()


def contract_on(*, customer_id: int, on: dt.date) -> tuple[Contract | None, bool]:
    """The customer's contract that ran on ``on`` (of several, the current one first),
    else its current contract; and whether it ran on ``on``. One query. What an
    entitlement comes under (customers.answers)."""
    runs = ExpressionWrapper(
        Q(start_date__lte=on) & (Q(end_date__isnull=True) | Q(end_date__gte=on)),
        output_field=BooleanField(),
    )
    found = (
        Contract.objects.filter(customer_id=customer_id)
        .annotate(_runs=runs)
        .order_by(F("_runs").desc(), *_CURRENT_FIRST)
        .first()
    )
    return found, bool(found and found._runs)


def current_contract_subquery(customer_ref: OuterRef, field: str) -> Subquery:
    """``field`` of the current contract of the customer ``customer_ref`` points to, for
    annotating or filtering another query: ``current_contract_subquery(OuterRef("customer"),
    "plan")`` on tickets. NULL for a customer without contracts."""
    return Subquery(contracts_current_first(customer_ref).values(field)[:1])


def customer_match_q(text: str, *, prefix: str = "") -> Q:
    """Customers whose name contains ``text`` or whose tenant id is ``text`` (any case;
    a tenant id matches whole, not in part), as a filter on ``Customer`` or, with
    ``prefix`` (``"customer__"``), on a model that points to one. The search box every
    "Customer (name or tenant id)" filter offers; ``text`` is stripped first."""
    text = text.strip()
    return Q(**{f"{prefix}name__icontains": text}) | Q(**{f"{prefix}external_id__iexact": text})


def renewal_is_soon(days_left: int | None) -> bool:
    """Whether a contract ending in ``days_left`` days (0: today) is up for renewal soon:
    within ``OPSDESK_HEALTH_RENEWAL_DAYS``, that day included (docs/product.md#health-flags).
    The digest's flag and the ticket page's mark both ask this."""
    return days_left is not None and 0 <= days_left <= settings.OPSDESK_HEALTH_RENEWAL_DAYS
