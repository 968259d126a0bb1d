"""The shapes of a customer's plan (built without touching the database) and the
small deterministic helpers every planner draws with."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from django.contrib.auth.models import User
from django.db import models

from billing.models import Invoice
from customers.models import Contact, Contract, Customer, Entitlement, Order, Product
from opsdesk.demo.catalogue import (
    CURRENCY_RATES,
    FIRST_NAMES,
    FIXED_STORIES,
    LAST_NAMES,
    MANAGER_PATTERN,
    RANDOM_STORY_RATES,
)
from support.cases import case_dedupe_key
from support.models import Case, Tag, Ticket

# --- Plans: what one customer looks like, built without touching the database ----------


@dataclass(frozen=True)
class DemoRefs:
    """Rows every customer plan points at (users, products, tags), by natural key."""

    users: dict[str, User]
    products: dict[str, Product]
    tags: dict[str, Tag]


class UsageReport(NamedTuple):
    """One day of a customer's usage: a row-to-be, kept light (a year is 365 of them)."""

    date: dt.date
    active_users_1d: int
    active_users_7d: int
    last_login_at: dt.datetime | None
    requests: int
    errors: int


@dataclass
class PlannedTicket:
    ticket: Ticket
    tag_names: tuple[str, ...]


@dataclass
class PlannedCase:
    case: Case
    subject: models.Model | None  # saved before the case; its pk becomes subject_id


def failed_fulfilment_case(order: Order, why: str, **fields) -> Case:
    """The case of an order the product's event could not fulfil, worded as
    ``support.order_events`` words it: "Order <id>: <why>", found: <why>. The order's
    history says the same why (``opsdesk.demo.pasts.not_fulfilled``)."""
    fields = {"state": Case.State.OPEN, "customer": order.customer, **fields}
    return Case(
        kind=Case.Kind.FAILED_FULFILMENT,
        summary=f"Order {order.external_id}: {why}",
        expected=f"{order.quantity} × {order.sku} for {order.tenant_id}",  # noqa: RUF001
        found=why,
        expected_amount=order.amount,
        dedupe_key=case_dedupe_key(Case.Kind.FAILED_FULFILMENT, "order", order.external_id),
        opened_at=order.created_at,
        **fields,
    )


@dataclass
class CustomerPlan:
    index: int
    story: str | None
    customer: Customer
    contacts: list[Contact] = field(default_factory=list)
    contracts: list[Contract] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    entitlements: list[Entitlement] = field(default_factory=list)
    usage: list[UsageReport] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    tickets: list[PlannedTicket] = field(default_factory=list)
    cases: list[PlannedCase] = field(default_factory=list)


def seeded_rng(seed: int, *parts: object) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`: stable across processes and
    # PYTHONHASHSEED, unlike hash().
    return random.Random(":".join(["opsdesk-demo", str(seed), *map(str, parts)]))


def tenant_key(*, seed: int, index: int) -> int:
    """A 24-bit number unique per (seed, index) that looks random: ids derive from it."""
    offset = seeded_rng(seed, "tenant-keys").getrandbits(24)
    # Multiplying by an odd constant is a bijection modulo 2**24: no two indexes collide.
    return (index * 0x9E3779 + offset) % (1 << 24)


def story_for(*, seed: int, index: int) -> str | None:
    if index in FIXED_STORIES:
        return FIXED_STORIES[index]
    if index < len(MANAGER_PATTERN):
        return None
    draw = seeded_rng(seed, index, "story").random()
    for story, rate in RANDOM_STORY_RATES:
        if draw < rate:
            return story
        draw -= rate
    return None


def at_time(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


def rounded_money(amount: Decimal, currency: str, *, step: Decimal = Decimal("10")) -> Decimal:
    converted = amount * CURRENCY_RATES[currency]
    return ((converted / step).quantize(Decimal("1")) * step).quantize(Decimal("0.01"))


def person_name(rng: random.Random, taken: set[tuple[str, str]]) -> tuple[str, str]:
    while True:
        person = (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
        if person not in taken:
            taken.add(person)
            return person


def email_address(person: tuple[str, str], domain: str) -> str:
    return f"{person[0]}.{person[1]}@{domain}".lower()
