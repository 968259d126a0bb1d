"""Worlds of records for tests that need every model filled (populate, grow), and records
many tests make the same way (active_contract, issue)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from audit.context import acting_as
from customers.entitlements import entitlements_issue
from customers.models import (
    Contract,
    Customer,
    Entitlement,
    Product,
    UsageDaily,
)
from support.models import Case, Tag, WebhookEvent
from tests import builders


def populate(n: int, *, manager=None, start: int = 0) -> list[Customer]:
    """``n`` customers, each with one of everything (two usage days, two entitlements)."""
    now = timezone.now()
    customers = []
    with acting_as("test:populate"):
        product, _ = Product.objects.get_or_create(sku="SEAT-PACK-10", defaults={"name": "Seats"})
        tag, _ = Tag.objects.get_or_create(name="vip")
        for i in range(start, start + n):
            customer = builders.customer(
                external_id=f"tenant-{i}", name=f"Customer {i}", account_manager=manager
            )
            customers.append(customer)
            builders.contact(customer=customer, name=f"C {i}", email=f"c{i}@example.com")
            builders.contract(
                customer=customer,
                plan=Contract.Plan.STARTER,
                seats=10,
                monthly_fee=Decimal("100.00"),
                price_per_extra_seat=Decimal("5.00"),
            )
            order = builders.order(
                external_id=f"ord-{i}",
                customer=customer,
                product=product,
                quantity=2,
                amount=Decimal("20.00"),
                paid_at=now,
            )
            for k in range(2):
                builders.entitlement(order=order, code=f"CODE-{i}-{k}", issued_at=now)
            for day in (1, 2):
                UsageDaily.objects.create(
                    customer=customer,
                    date=now.date() - dt.timedelta(days=day),
                    active_users_1d=3,
                    active_users_7d=8,
                    requests=100,
                    errors=1,
                )
            event = WebhookEvent.objects.create(webhook_id=f"msg_{i}", type="support.request")
            builders.ticket(
                customer=customer,
                subject=f"Help {i}",
                webhook_event=event,
                first_response_due_at=now + dt.timedelta(hours=8),
                tags=[tag],
            )
            builders.case(kind=Case.Kind.FAILED_FULFILMENT, customer=customer, summary=f"Case {i}")
            # Paid, for October 2026: the invoice builder's defaults.
            builders.invoice(
                external_id=f"in_{i}",
                customer=customer,
                number=f"OPS-{i}",
                amount_due=Decimal("100.00"),
                amount_paid=Decimal("100.00"),
            )
    return customers


def grow(customer: Customer, *, times: int) -> None:
    """Give ``customer`` ``times`` more tickets, cases, contracts and entitlements."""
    now = timezone.now()
    product = Product.objects.get(sku="SEAT-PACK-10")
    with acting_as("test:grow"):
        for k in range(times):
            builders.ticket(customer=customer, subject=f"More help {k}", tags=Tag.objects.all())
            builders.case(kind=Case.Kind.PROBLEM_REDEMPTION, customer=customer, summary=f"More {k}")
            builders.contract(
                customer=customer,
                plan=Contract.Plan.GROWTH,
                seats=20,
                monthly_fee=Decimal("200.00"),
                price_per_extra_seat=Decimal("5.00"),
                start_date=dt.date(2025, 1, 1),
                end_date=dt.date(2025, 12, 31),
                status=Contract.Status.ENDED,
            )
            builders.entitlement(
                customer=customer, product=product, code=f"GROW-{customer.pk}-{k}", issued_at=now
            )
            UsageDaily.objects.create(
                customer=customer,
                date=now.date() - dt.timedelta(days=3 + k),
                active_users_1d=1,
                active_users_7d=1,
                requests=0,
                errors=0,
            )


def active_contract(customer: Customer, **fields) -> Contract:
    """An active contract for ``customer`` (the contract builder's: growth, 20 seats,
    500.00 EUR, 10.00 per extra seat, from 1 Jan 2026), written as ``test:fixture``
    whoever is acting; ``fields`` override the defaults."""
    with acting_as("test:fixture"):
        return builders.contract(customer=customer, **fields)


# When the order of an ``issue``d seat was paid.
SEAT_PAID_AT = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


def issue(customer: Customer, *, term_days: int | None = 365) -> Entitlement:
    """One seat of SEAT-PRO-1Y (made with ``term_days`` if it does not exist yet) issued
    to ``customer`` as ``order.completed`` issues it: order ``ord_<tenant id>`` of one
    seat for 400.00 EUR paid at SEAT_PAID_AT, the entitlement through the service."""
    with acting_as("test:fixture"):
        product, _ = Product.objects.get_or_create(
            sku="SEAT-PRO-1Y", defaults={"name": "Pro seat", "term_days": term_days}
        )
        order = builders.order(
            external_id=f"ord_{customer.external_id}",
            customer=customer,
            product=product,
            amount=Decimal("400.00"),
            paid_at=SEAT_PAID_AT,
        )
        [entitlement] = entitlements_issue(
            order=order, product=product, customer=customer, quantity=1, reason="test order"
        )
    return entitlement
