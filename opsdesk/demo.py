"""Demo data for ``manage.py seed_demo``: deterministic, idempotent, history-keeping.

Everything is derived from ``(seed, customer index, today)``: each customer draws from
random generators of its own (one per aspect: contacts, contracts, usage, ...), so a
larger ``customers`` is a superset of a smaller one and a longer ``days`` leaves the
customers, contracts and tickets unchanged. Rows are inserted only when their natural
key (tenant id, order id, code, (customer, date), invoice id, (customer, subject),
case dedupe key, ...) is not there yet, so a second run writes nothing at all.

Dates are relative to ``today`` (UTC): usage ends yesterday, tickets are at most 45 days
old, one contract ends within 30 days. The same seed on the same day gives the same data.

Every row is written through ``audit.bulk`` (or ``save()``), so it has its ``+`` history
row attributed to whoever runs this (``command:seed_demo`` for the command).
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import models, reset_queries, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from audit.bulk import bulk_create_with_history, copy_with_history
from billing.models import Invoice
from billing.reconciliation import reconcile
from customers.codes import generate_redemption_code
from customers.models import Contact, Contract, Customer, Entitlement, Order, Product, UsageDaily
from kit import roles
from onboarding.demo import seed_onboarding
from support.cases import case_dedupe_key
from support.models import Case, Tag, Ticket, WebhookEvent

DEMO_PASSWORD = "opsdesk-demo"
DEFAULT_CUSTOMERS = 40
DEFAULT_DAYS = 90
DEFAULT_SEED = 7
# 250 customers x 365 days is ~90k usage rows (+ their history) per transaction.
DEFAULT_CHUNK_SIZE = 250
DEMO_EMAIL_DOMAIN = "opsdesk.example"


@dataclass(frozen=True)
class DemoStaff:
    username: str
    first_name: str
    last_name: str
    group: str | None
    is_superuser: bool = False


DEMO_STAFF = (
    DemoStaff("support", "Sam", "Rivera", roles.SUPPORT),
    DemoStaff("manager", "Alex", "Morgan", roles.ACCOUNT_MANAGERS),
    DemoStaff("opslead", "Olga", "Petrova", roles.OPS_LEADS),
    DemoStaff("admin", "Ada", "Lindqvist", None, is_superuser=True),
    DemoStaff("dana", "Dana", "Kim", roles.ACCOUNT_MANAGERS),
    DemoStaff("lee", "Lee", "Okafor", roles.ACCOUNT_MANAGERS),
)

# Who manages customer i: MANAGER_PATTERN[i % 20]. `manager` gets 9 of every 20 and is
# spread so that every prefix of the customers is at least a third his (the digest demo
# needs his inbox full); one in twenty has nobody, as in real CRMs.
MANAGER_PATTERN = (
    "manager", "dana", "lee", "manager", "manager", "dana", "lee", "manager", "manager", None,
    "dana", "manager", "lee", "manager", "dana", "manager", "lee", "dana", "manager", "lee",
)  # fmt: skip


class Story:
    """What makes a customer worth a look in the demo (at most one each)."""

    USAGE_DROP = "usage_drop"  # WAU down >30% on the week
    ERROR_SPIKE = "error_spike"  # error rate yesterday far above its usual
    DORMANT = "dormant"  # nobody logged in for 25 days
    NO_USAGE_YESTERDAY = "no_usage_yesterday"  # the product sent nothing for yesterday
    RENEWAL_SOON = "renewal_soon"  # active contract ends within 30 days, renewal drafted
    NEW_ONBOARDING = "new_onboarding"  # signed, contract still a draft, trial usage
    FAILED_FULFILMENT = "failed_fulfilment"  # ordered a retired SKU: open case
    PROBLEM_REDEMPTION = "problem_redemption"  # code redeemed by someone else: case
    AMOUNT_MISMATCH = "amount_mismatch"  # last month invoiced 10% short: case
    RESOLVED_CASE = "resolved_case"  # a failed fulfilment fixed by ops, case closed
    OVERDUE_INVOICE = "overdue_invoice"  # an invoice of two months ago still open


# The first twelve customers carry one story each, so a small run shows them all; most of
# them belong to `manager`, whose digest is the one people look at.
FIXED_STORIES = {
    0: Story.RESOLVED_CASE,
    1: Story.FAILED_FULFILMENT,
    2: Story.PROBLEM_REDEMPTION,
    3: Story.USAGE_DROP,
    4: Story.ERROR_SPIKE,
    5: Story.AMOUNT_MISMATCH,
    6: Story.OVERDUE_INVOICE,
    7: Story.DORMANT,
    8: Story.NO_USAGE_YESTERDAY,
    10: Story.NEW_ONBOARDING,
    11: Story.RENEWAL_SOON,
}
# Beyond those, stories occur at these rates (cumulative draw, one story at most).
RANDOM_STORY_RATES = (
    (Story.USAGE_DROP, 0.02),
    (Story.ERROR_SPIKE, 0.01),
    (Story.DORMANT, 0.015),
    (Story.NO_USAGE_YESTERDAY, 0.01),
    (Story.RENEWAL_SOON, 0.01),
    (Story.NEW_ONBOARDING, 0.02),
    (Story.FAILED_FULFILMENT, 0.01),
    (Story.PROBLEM_REDEMPTION, 0.005),
    (Story.OVERDUE_INVOICE, 0.02),
)
USAGE_STORIES = {Story.USAGE_DROP, Story.ERROR_SPIKE, Story.DORMANT}

TAGS = {
    "unmatched": "Sent by a tenant opsdesk does not know; match it to a customer.",
    "billing": "Invoices, payments, pricing.",
    "sso": "Single sign-on and user provisioning.",
    "vip": "Enterprise customer: answer first.",
    "bug": "Something in the product is broken.",
    "renewal": "About an upcoming renewal.",
}


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    term_days: int | None
    unit_price: Decimal
    max_quantity: int
    retired: bool = False


PRODUCTS = (
    DemoProduct("SEAT-PRO-1Y", "Pro seat, 1 year", 365, Decimal("300"), 10),
    DemoProduct("SEAT-VIEWER-1Y", "Viewer seat, 1 year", 365, Decimal("60"), 10),
    DemoProduct("ADDON-AI-1Y", "AI assistant add-on, 1 year", 365, Decimal("120"), 5),
    DemoProduct("TRAIN-ADMIN", "Admin training voucher", 180, Decimal("450"), 3),
    DemoProduct("TRAIN-CERT", "Certification exam voucher", 90, Decimal("200"), 3),
    DemoProduct("REPORT-PACK", "Report template pack", None, Decimal("150"), 2),
    DemoProduct("SEAT-PRO-2023", "Pro seat, 1 year (2023 pricing)", 365, Decimal("250"), 10, True),
)
RETIRED_SKU = "SEAT-PRO-2023"

CURRENCY_RATES = {"EUR": Decimal("1"), "USD": Decimal("1.1"), "GBP": Decimal("0.85")}
LEGAL_FORMS = {
    "EUR": ("GmbH", "SAS", "B.V.", "AB", "Oy", "S.L.", "S.p.A.", "AG"),
    "USD": ("Inc.", "LLC", "Corp."),
    "GBP": ("Ltd", "plc", "LLP"),
}
NAME_PREFIXES = (
    "Northwind", "Bluefin", "Acorn", "Brightline", "Cobalt", "Driftwood", "Evergreen",
    "Fjord", "Granite", "Harbor", "Ironbark", "Juniper", "Kestrel", "Lumen", "Meridian",
    "Nimbus", "Oakridge", "Pinnacle", "Quarry", "Redwood", "Saltmarsh", "Tidewater",
    "Umber", "Vantage", "Willow", "Yarrow", "Zephyr", "Alder", "Beacon", "Cinder", "Delta",
    "Ember", "Falcon", "Glacier", "Heron", "Indigo", "Jasper", "Keystone", "Larch",
    "Mistral", "Nordic", "Orchid", "Polaris", "Quill", "Rook", "Sable", "Talon", "Upland",
    "Verdant", "Wren",
)  # fmt: skip
NAME_INDUSTRIES = (
    "Logistics", "Analytics", "Health", "Robotics", "Foods", "Energy", "Capital", "Media",
    "Labs", "Systems", "Retail", "Freight", "Software", "Insurance", "Mobility", "Pharma",
    "Legal", "Studios", "Security", "Travel",
)  # fmt: skip
FIRST_NAMES = (
    "Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kara", "Luca", "Maya", "Nils", "Olivia", "Pedro", "Quinn", "Rosa", "Sven", "Tara",
    "Umar", "Vera", "Will", "Xenia", "Yusuf", "Zoe", "Amir", "Bianca", "Carlos", "Dina",
)  # fmt: skip
LAST_NAMES = (
    "Andersen", "Becker", "Costa", "Dubois", "Eriksson", "Fischer", "Garcia", "Hansen",
    "Ito", "Jansen", "Kowalski", "Lopez", "Martin", "Nowak", "Okoro", "Patel", "Quist",
    "Rossi", "Schmidt", "Tanaka", "Urban", "Virtanen", "Weber", "Young", "Zimmermann",
)  # fmt: skip


@dataclass(frozen=True)
class PlanTerms:
    seats: tuple[int, ...]
    fee_per_seat: Decimal
    extra_seat: Decimal
    integrations: tuple[str, ...]
    integration_count: tuple[int, int]


PLAN_TERMS = {
    Contract.Plan.STARTER: PlanTerms(
        (5, 10, 15, 20, 25), Decimal("18"), Decimal("20"), ("slack", "data_import"), (0, 1)
    ),
    Contract.Plan.GROWTH: PlanTerms(
        (25, 30, 40, 50, 60, 75, 100, 120, 150),
        Decimal("29"),
        Decimal("25"),
        ("sso", "crm_sync", "slack", "data_import", "api"),
        (1, 3),
    ),
    Contract.Plan.ENTERPRISE: PlanTerms(
        (150, 200, 250, 300, 400, 500, 750, 1000),
        Decimal("24"),
        Decimal("22"),
        ("crm_sync", "data_import", "slack", "api", "warehouse"),
        (2, 4),
    ),
}

SLA = {
    Ticket.Priority.URGENT: dt.timedelta(hours=1),
    Ticket.Priority.HIGH: dt.timedelta(hours=4),
    Ticket.Priority.NORMAL: dt.timedelta(hours=8),
    Ticket.Priority.LOW: dt.timedelta(hours=24),
}
PRIORITIES = (
    Ticket.Priority.LOW,
    Ticket.Priority.NORMAL,
    Ticket.Priority.HIGH,
    Ticket.Priority.URGENT,
)


@dataclass(frozen=True)
class TicketTopic:
    subject: str
    category: str
    priority: str
    tags: tuple[str, ...]
    detail: str


C, P = Ticket.Category, Ticket.Priority
TICKET_TOPICS = (
    TicketTopic("Cannot log in with SSO", C.ACCESS, P.HIGH, ("sso",),
                "Since this morning our users get an error from the identity provider."),
    TicketTopic("Password reset email never arrives", C.ACCESS, P.NORMAL, (),
                "I requested a reset three times; nothing in the inbox or spam folder."),
    TicketTopic("New hire cannot see the shared workspace", C.ACCESS, P.NORMAL, (),
                "Our new colleague was invited yesterday but sees an empty workspace."),
    TicketTopic("Locked out after changing MFA phone", C.ACCESS, P.HIGH, (),
                "I changed phones and cannot pass the second factor any more."),
    TicketTopic("Please transfer admin rights to a colleague", C.ACCESS, P.LOW, (),
                "I am leaving the company at the end of the month."),
    TicketTopic("SCIM provisioning stopped creating users", C.ACCESS, P.HIGH, ("sso",),
                "Users added in our directory are no longer created in the product."),
    TicketTopic("Invoice shows the wrong VAT number", C.BILLING, P.NORMAL, ("billing",),
                "Our finance team cannot book the invoice with this VAT number."),
    TicketTopic("Copy of last month's invoice, please", C.BILLING, P.LOW, ("billing",),
                "Could you send last month's invoice to our accounts payable address?"),
    TicketTopic("Charged for more seats than we use", C.BILLING, P.HIGH, ("billing",),
                "The invoice counts more seats than we have active users."),
    TicketTopic("Change of billing contact", C.BILLING, P.LOW, ("billing",),
                "Please send future invoices to our new finance manager."),
    TicketTopic("Question about renewal pricing", C.BILLING, P.NORMAL, ("billing", "renewal"),
                "Our contract ends soon; what would a renewal with more seats cost?"),
    TicketTopic("CSV export times out for large reports", C.BUG, P.NORMAL, ("bug",),
                "Exports with more than a year of data never finish."),
    TicketTopic("Dashboard charts show no data since this morning", C.BUG, P.HIGH, ("bug",),
                "All charts on the main dashboard are empty, the tables still work."),
    TicketTopic("Duplicate notifications in Slack", C.BUG, P.LOW, ("bug",),
                "Every alert arrives twice in our Slack channel."),
    TicketTopic("Filters reset after reloading the page", C.BUG, P.LOW, ("bug",),
                "Saved filters are lost whenever the page reloads."),
    TicketTopic("Report totals differ from the API", C.BUG, P.NORMAL, ("bug",),
                "The monthly report and the API disagree on last month's totals."),
    TicketTopic("How do I invite users in bulk?", C.HOW_TO, P.LOW, (),
                "We need to invite about 80 people; is there a CSV upload?"),
    TicketTopic("Can we restrict access by IP range?", C.HOW_TO, P.NORMAL, (),
                "Our security team asks whether logins can be limited to our office network."),
    TicketTopic("Connecting our data warehouse", C.HOW_TO, P.NORMAL, (),
                "Which credentials does the warehouse export need?"),
    TicketTopic("Where do I find our API key?", C.HOW_TO, P.LOW, (),
                "The documentation mentions an API key but I cannot find it."),
    TicketTopic("Setting up single sign-on with Okta", C.HOW_TO, P.NORMAL, ("sso",),
                "We would like to switch our users to Okta next week."),
    TicketTopic("API returning 500 errors", C.INCIDENT, P.URGENT, (),
                "Since last night a large share of our API calls fail with HTTP 500."),
    TicketTopic("Everything is very slow today", C.INCIDENT, P.HIGH, (),
                "Pages take 20 seconds or more to load for the whole team."),
    TicketTopic("Webhooks to our CRM stopped arriving", C.INCIDENT, P.URGENT, (),
                "Our CRM has received no events from you for several hours."),
    TicketTopic("Security questionnaire from our procurement team", C.OTHER, P.NORMAL, (),
                "Procurement needs the attached questionnaire filled in before renewal."),
    TicketTopic("Feature request: scheduled PDF reports", C.OTHER, P.LOW, (),
                "We would love to receive the weekly report as a PDF by email."),
    TicketTopic("Request for a roadmap call", C.OTHER, P.LOW, (),
                "Could we get 30 minutes with product to discuss the roadmap?"),
)  # fmt: skip
del C, P
TOPIC_BY_SUBJECT = {topic.subject: topic for topic in TICKET_TOPICS}


@dataclass(frozen=True)
class UnmatchedRequest:
    tenant_id: str
    email: str
    name: str
    subject: str
    category: str
    priority: str
    tags: tuple[str, ...]
    message: str
    hours_ago: int


# Tenants the product knows and opsdesk does not (yet): what `unmatched` triage is for.
UNMATCHED_REQUESTS = (
    UnmatchedRequest("hooli-trial-4c1d", "gavin@hooli.example", "Gavin B.",
                     "Trial workspace: how do I add colleagues?", Ticket.Category.HOW_TO,
                     Ticket.Priority.NORMAL, ("unmatched",),
                     "We started a trial last week; how do I invite my team?", 5),
    UnmatchedRequest("piedpiper-9e02", "richard@piedpiper.example", "Richard H.",
                     "Our account says it is suspended", Ticket.Category.ACCESS,
                     Ticket.Priority.HIGH, ("unmatched",),
                     "Nobody on our team can log in; the page says the account is suspended.", 2),
    UnmatchedRequest("initech-7a3f", "bill@initech.example", "Bill L.",
                     "Refund for a duplicate charge", Ticket.Category.BILLING,
                     Ticket.Priority.NORMAL, ("unmatched", "billing"),
                     "We were charged twice for the same order last month.", 30),
)  # fmt: skip
UNKNOWN_TENANT_ORDER_TENANT = "initech-7a3f"


@dataclass
class SeedResult:
    """What one run created, per kind of row."""

    customers: int
    days: int
    seed: int
    created: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.created.values())

    def summary(self) -> str:
        order = (
            "users", "tags", "products", "customers", "contacts", "contracts", "orders",
            "entitlements", "usage rows", "invoices", "webhook events", "tickets",
            "ticket tags", "cases", "checklist templates", "template items", "checklists",
            "checklist tasks",
        )  # fmt: skip
        parts = ", ".join(f"{self.created[name]} {name}" for name in order)
        return (
            f"seed_demo (seed {self.seed}, {self.customers} customers, {self.days} days): "
            f"created {self.total} rows: {parts} in {self.seconds:.1f}s"
        )


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


def _rng(seed: int, *parts: object) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`: stable across processes and
    # PYTHONHASHSEED, unlike hash().
    return random.Random(":".join(["opsdesk-demo", str(seed), *map(str, parts)]))


def tenant_key(*, seed: int, index: int) -> int:
    """A 24-bit number unique per (seed, index) that looks random: ids derive from it."""
    offset = _rng(seed, "tenant-keys").getrandbits(24)
    # Multiplying by an odd constant is a bijection modulo 2**24: no two indexes collide.
    return (index * 0x9E3779 + offset) % (1 << 24)


def story_for(*, seed: int, index: int) -> str | None:
    if index in FIXED_STORIES:
        return FIXED_STORIES[index]
    if index < len(MANAGER_PATTERN):
        return None
    draw = _rng(seed, index, "story").random()
    for story, rate in RANDOM_STORY_RATES:
        if draw < rate:
            return story
        draw -= rate
    return None


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(day: dt.date, months: int) -> dt.date:
    """The first of the month ``months`` after ``day``'s month."""
    month = day.year * 12 + day.month - 1 + months
    return dt.date(month // 12, month % 12 + 1, 1)


def _month_end(day: dt.date) -> dt.date:
    return _add_months(day, 1) - dt.timedelta(days=1)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


def _money(amount: Decimal, currency: str, *, step: Decimal = Decimal("10")) -> Decimal:
    converted = amount * CURRENCY_RATES[currency]
    return ((converted / step).quantize(Decimal("1")) * step).quantize(Decimal("0.01"))


def _contract_terms(rng: random.Random, plan: str, currency: str, seats: int) -> dict:
    terms = PLAN_TERMS[plan]
    low, high = terms.integration_count
    integrations = rng.sample(terms.integrations, rng.randint(low, high))
    if plan == Contract.Plan.ENTERPRISE:
        integrations.append(Contract.Integration.SSO)
    order = list(Contract.Integration.values)
    return {
        "plan": plan,
        "seats": seats,
        "monthly_fee": _money(terms.fee_per_seat * seats, currency),
        "price_per_extra_seat": _money(terms.extra_seat, currency, step=Decimal("1")),
        "currency": currency,
        "integrations": sorted(set(integrations), key=order.index),
    }


def _pick_plan(rng: random.Random, *, story: str | None) -> tuple[str, int]:
    if story in USAGE_STORIES:
        # The usage stories need a WAU well above 5 (the drop rule's floor).
        return Contract.Plan.GROWTH, rng.choice((50, 60, 75, 100))
    plan = rng.choices(
        (Contract.Plan.STARTER, Contract.Plan.GROWTH, Contract.Plan.ENTERPRISE), (35, 45, 20)
    )[0]
    return plan, rng.choice(PLAN_TERMS[plan].seats)


def _plan_contracts(
    rng: random.Random, *, customer: Customer, currency: str, story: str | None, today: dt.date
) -> list[Contract]:
    this_month = _month_start(today)
    plan, seats = _pick_plan(rng, story=story)

    def contract(**values) -> Contract:
        return Contract(customer=customer, **values)

    if story == Story.NEW_ONBOARDING:
        start = _add_months(this_month, 1)
        return [
            contract(
                **_contract_terms(rng, plan, currency, seats),
                start_date=start,
                end_date=_add_months(start, 12) - dt.timedelta(days=1),
                status=Contract.Status.DRAFT,
            )
        ]
    if story == Story.RENEWAL_SOON:
        # Co-termed with a parent company: ends mid-month, inside the 30-day window.
        end = today + dt.timedelta(days=rng.randint(8, 25))
        renewal_start = end + dt.timedelta(days=1)
        current = _contract_terms(rng, plan, currency, seats)
        bigger = round(seats * 1.2)
        return [
            contract(
                **current,
                start_date=_add_months(this_month, -11),
                end_date=end,
                status=Contract.Status.ACTIVE,
            ),
            contract(
                **_contract_terms(rng, plan, currency, bigger),
                start_date=renewal_start,
                end_date=renewal_start.replace(year=renewal_start.year + 1) - dt.timedelta(days=1),
                status=Contract.Status.DRAFT,
            ),
        ]

    # Consecutive month-aligned terms from the customer's first month: invoices of two
    # contracts never share a month (no false "duplicate invoice" findings).
    # Every story needs a few months of history; 4% of the others started this month.
    new = rng.random() < 0.04
    months_ago = rng.randint(6, 40) if story else (0 if new else rng.randint(1, 40))
    start = _add_months(this_month, -months_ago)
    term = 12 if plan != Contract.Plan.ENTERPRISE else rng.choice((12, 24, 36))
    terms: list[tuple[dt.date, dt.date, str, int]] = []
    while True:
        end = _add_months(start, term) - dt.timedelta(days=1)
        terms.append((start, end, plan, seats))
        if end >= today:
            break
        start = end + dt.timedelta(days=1)
        if rng.random() < 0.3:
            seats = max(seats, round(seats * rng.uniform(1.1, 1.5)))
        if plan != Contract.Plan.ENTERPRISE and rng.random() < 0.1:
            upgrade = {"starter": Contract.Plan.GROWTH, "growth": Contract.Plan.ENTERPRISE}
            plan = upgrade[plan]
            # The smallest tier of the bigger plan that fits: usage grows into it.
            seats = min((tier for tier in PLAN_TERMS[plan].seats if tier >= seats), default=seats)
    contracts = []
    for start, end, term_plan, term_seats in terms[-3:]:  # at most two ended ones
        is_current = end >= today
        open_ended = is_current and term_plan == Contract.Plan.STARTER and rng.random() < 0.2
        contracts.append(
            contract(
                **_contract_terms(rng, term_plan, currency, term_seats),
                start_date=start,
                end_date=None if open_ended else end,
                status=Contract.Status.ACTIVE if is_current else Contract.Status.ENDED,
            )
        )
    return contracts


def _person(rng: random.Random, taken: set[tuple[str, str]]) -> tuple[str, str]:
    while True:
        person = (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
        if person not in taken:
            taken.add(person)
            return person


def _email(person: tuple[str, str], domain: str) -> str:
    return f"{person[0]}.{person[1]}@{domain}".lower()


def _plan_usage(
    rng: random.Random,
    *,
    story: str | None,
    contracts: Sequence[Contract],
    dates: Sequence[dt.date],
) -> list[UsageReport]:
    """Daily usage that stays within the seats of the contract live that day (no overage:
    the demo invoices, at the monthly fee, reconcile), with weekly rhythm and the story."""
    if not dates:
        return []
    yesterday = dates[-1]
    live = sorted(
        (c for c in contracts if c.status != Contract.Status.DRAFT), key=lambda c: c.start_date
    )
    live_from = live[0].start_date if live else dates[-1] + dt.timedelta(days=1)
    integrations = (live or contracts)[-1].integrations
    trial_users = 0
    if story == Story.NEW_ONBOARDING:
        live_from = yesterday - dt.timedelta(days=20)  # a trial while the contract is drafted
        trial_users = rng.randint(3, 8)

    def seats_on(day: dt.date) -> int:
        if trial_users:
            return trial_users
        for contract in reversed(live):
            if contract.start_date <= day:
                return contract.seats
        return 0

    utilisation = rng.uniform(0.45, 0.85)
    trend = rng.uniform(-0.05, 0.15)
    per_user_requests = rng.uniform(80, 400)
    automated = rng.uniform(100, 3000) if Contract.Integration.API in integrations else 0.0
    error_rate = rng.uniform(0.001, 0.006)
    weekday_share = rng.uniform(0.45, 0.65)
    last_login_day = yesterday - dt.timedelta(days=24)  # the dormant story's last login
    last_login: dt.datetime | None = None
    if live_from < dates[0]:
        before = dates[0] - dt.timedelta(days=1)
        if story == Story.DORMANT:
            before = min(before, last_login_day)  # a short window starts dormant already
        last_login = _at(before, rng.randint(8, 19), rng.randint(0, 59))
    rows = []
    dormant_wau = 0
    level: float | None = None
    span = max(len(dates) - 1, 1)
    for position, day in enumerate(dates):
        if story == Story.NO_USAGE_YESTERDAY and day == yesterday:
            continue
        days_left = (yesterday - day).days
        if day < live_from:
            wau = dau = requests = errors = 0
        else:
            seats = seats_on(day)
            target = seats * utilisation * (1 + trend * (position / span - 1))
            # After an upgrade, users arrive over a couple of weeks, not overnight.
            level = target if level is None else level + (target - level) * 0.15
            wau_float = level * rng.uniform(0.97, 1.03)
            if story == Story.USAGE_DROP and days_left < 7:
                # Falls to 55% of last week's level by yesterday.
                wau_float *= 1 - 0.45 * (7 - days_left) / 7
            wau = max(0, min(seats, round(wau_float)))
            weekend = day.weekday() >= 5
            share = rng.uniform(0.05, 0.15) if weekend else weekday_share * rng.uniform(0.9, 1.1)
            dau = min(wau, round(wau * share))
            if story == Story.DORMANT and day > last_login_day:
                dau = 0
                wau = round(dormant_wau * max(0.0, 1 - (day - last_login_day).days / 7))
            elif story == Story.DORMANT:
                dormant_wau = wau
                dau = max(dau, 1) if day == last_login_day else dau
            if story == Story.NEW_ONBOARDING and day >= live_from:
                dau = max(dau, 1)
                wau = max(wau, dau)
            requests = round(dau * per_user_requests * rng.uniform(0.85, 1.15))
            requests += round(automated * rng.uniform(0.9, 1.1))
            rate = error_rate * rng.uniform(0.6, 1.4)
            if story == Story.ERROR_SPIKE and day == yesterday:
                requests = max(requests, 600)
                rate = rng.uniform(0.09, 0.14)
            errors = min(requests, round(requests * rate))
        if dau > 0:
            last_login = _at(day, rng.randint(8, 20), rng.randint(0, 59))
        rows.append(
            UsageReport(
                date=day,
                active_users_1d=dau,
                active_users_7d=wau,
                last_login_at=last_login,
                requests=requests,
                errors=errors,
            )
        )
    return rows


def _plan_orders(
    rng: random.Random,
    *,
    plan: CustomerPlan,
    key: int,
    currency: str,
    since: dt.date,
    today: dt.date,
    domain: str,
    contacts: Sequence[Contact],
    refs: DemoRefs,
) -> None:
    customer = plan.customer
    anchor = _at(today, 0)
    first_paid = max(since, today - dt.timedelta(days=420))
    spread = max((today - first_paid).days - 1, 1)
    active = [product for product in PRODUCTS if not product.retired]
    wanted: list[tuple[DemoProduct, int, dt.datetime, str]] = []
    # Nothing bought before the first contract starts (drafts and brand-new customers).
    count = rng.choices((0, 1, 2, 3), (25, 35, 25, 15))[0] if since < today else 0
    for _ in range(count):
        product = rng.choice(active)
        paid_at = _at(first_paid + dt.timedelta(days=rng.randint(0, spread)), rng.randint(7, 18))
        wanted.append((product, rng.randint(1, product.max_quantity), paid_at, "fulfilled"))
    by_sku = {product.sku: product for product in PRODUCTS}
    if plan.story == Story.FAILED_FULFILMENT:
        paid_at = anchor - dt.timedelta(days=rng.randint(2, 6), hours=rng.randint(1, 12))
        wanted.append((by_sku[RETIRED_SKU], rng.randint(2, 5), paid_at, "failed"))
    if plan.story == Story.RESOLVED_CASE:
        paid_at = anchor - dt.timedelta(days=rng.randint(15, 25), hours=rng.randint(1, 12))
        wanted.append((by_sku["TRAIN-ADMIN"], 2, paid_at, "resolved"))
    if plan.story == Story.PROBLEM_REDEMPTION:
        paid_at = anchor - dt.timedelta(days=rng.randint(8, 12), hours=rng.randint(1, 12))
        wanted.append((by_sku["SEAT-PRO-1Y"], 2, paid_at, "problem"))

    # Seat holders are other people than the contacts.
    taken = {tuple(contact.name.split(" ", 1)) for contact in contacts}
    for number, (product, quantity, paid_at, kind) in enumerate(wanted, start=1):
        failed = kind == "failed"
        order = Order(
            external_id=f"ord_{key:06x}{number:02d}",
            tenant_id=customer.external_id,
            customer=customer,
            sku=product.sku,
            product=refs.products[product.sku],
            quantity=quantity,
            amount=_money(product.unit_price * quantity, currency, step=Decimal("1")),
            currency=currency,
            paid_at=paid_at,
            fulfilment=Order.Fulfilment.FAILED if failed else Order.Fulfilment.FULFILLED,
            created_at=paid_at + dt.timedelta(seconds=rng.randint(2, 40)),
        )
        plan.orders.append(order)
        if failed:
            plan.cases.append(
                PlannedCase(
                    Case(
                        kind=Case.Kind.FAILED_FULFILMENT,
                        state=Case.State.OPEN,
                        customer=customer,
                        summary=f"Order {order.external_id}: {product.sku} is retired",
                        expected=f"{quantity} x {product.sku} entitlements issued",
                        found="Product retired; no entitlements issued",
                        expected_amount=order.amount,
                        dedupe_key=case_dedupe_key(
                            Case.Kind.FAILED_FULFILMENT, "order", order.external_id
                        ),
                        opened_at=order.created_at,
                    ),
                    order,
                )
            )
            continue
        issued_at = paid_at + dt.timedelta(minutes=2)
        if kind == "resolved":
            # Fulfilled by hand two days after the order failed.
            issued_at = paid_at + dt.timedelta(days=2, hours=3)
            plan.cases.append(
                PlannedCase(
                    Case(
                        kind=Case.Kind.FAILED_FULFILMENT,
                        state=Case.State.RESOLVED,
                        customer=customer,
                        summary=f"Order {order.external_id}: fulfilment timed out",
                        expected=f"{quantity} x {product.sku} entitlements issued",
                        found="Fulfilment worker timed out; no entitlements issued",
                        expected_amount=order.amount,
                        dedupe_key=case_dedupe_key(
                            Case.Kind.FAILED_FULFILMENT, "order", order.external_id
                        ),
                        owner=refs.users["opslead"],
                        opened_at=order.created_at,
                        acknowledged_at=paid_at + dt.timedelta(hours=20),
                        closed_at=issued_at,
                        closing_note=(
                            f"Fulfilled now: re-ran fulfilment, {quantity} codes issued "
                            "and sent to the customer's admin."
                        ),
                    ),
                    order,
                )
            )
        valid_from = paid_at.date()
        valid_until = (
            valid_from + dt.timedelta(days=product.term_days) if product.term_days else None
        )
        for _ in range(quantity):
            holder = _email(_person(rng, taken), domain)
            entitlement = Entitlement(
                order=order,
                customer=customer,
                product=refs.products[product.sku],
                code=generate_redemption_code(rng),
                valid_from=valid_from,
                valid_until=valid_until,
                issued_at=issued_at,
            )
            _entitlement_state(rng, entitlement, holder=holder, anchor=anchor, today=today)
            plan.entitlements.append(entitlement)
        if kind == "problem":
            entitlement = plan.entitlements[-quantity]
            _entitlement_state(
                rng,
                entitlement,
                holder=_email(_person(rng, taken), domain),
                anchor=anchor,
                today=today,
                state=Entitlement.State.ASSIGNED,
            )
            intruder = _email(_person(rng, taken), "gmail.example")
            attempted_at = entitlement.assigned_at + dt.timedelta(days=1, hours=2)
            plan.cases.append(
                PlannedCase(
                    Case(
                        kind=Case.Kind.PROBLEM_REDEMPTION,
                        state=Case.State.ACKNOWLEDGED,
                        customer=customer,
                        summary=f"Code {entitlement.code} redeemed by someone else",
                        expected=f"Redeemed by its assignee {entitlement.assignee_email}",
                        found=f"Redemption attempt by {intruder}",
                        details={
                            "code": entitlement.code,
                            "email": intruder,
                            "redeemed_at": attempted_at.isoformat(),
                            "tenant_id": customer.external_id,
                        },
                        dedupe_key=case_dedupe_key(
                            Case.Kind.PROBLEM_REDEMPTION, "entitlement", entitlement.code, intruder
                        ),
                        owner=refs.users["opslead"],
                        opened_at=attempted_at,
                        acknowledged_at=entitlement.assigned_at + dt.timedelta(days=1, hours=5),
                    ),
                    entitlement,
                )
            )


REVOKE_REASONS = (
    "Employee left the company",
    "Issued to the wrong customer; reissued",
    "Refunded at the customer's request",
)


def _entitlement_state(
    rng: random.Random,
    entitlement: Entitlement,
    *,
    holder: str,
    anchor: dt.datetime,
    today: dt.date,
    state: str | None = None,
) -> None:
    """Fill the state and exactly the fields that state requires (see the model's checks)."""
    if state is None:
        draw = rng.random()
        if draw < 0.08:
            state = Entitlement.State.REVOKED
        elif entitlement.valid_until is not None and entitlement.valid_until < today:
            state = Entitlement.State.EXPIRED
        elif draw < 0.33:
            state = Entitlement.State.ISSUED
        elif draw < 0.58:
            state = Entitlement.State.ASSIGNED
        else:
            state = Entitlement.State.REDEEMED
    entitlement.state = state
    entitlement.assignee_email = entitlement.redeemed_by_email = entitlement.revoke_reason = ""
    entitlement.assigned_at = entitlement.redeemed_at = entitlement.revoked_at = None

    def later(moment: dt.datetime, max_days: int) -> dt.datetime:
        step = dt.timedelta(days=rng.randint(0, max_days), hours=rng.randint(1, 8))
        return min(moment + step, anchor - dt.timedelta(hours=1))

    if state == Entitlement.State.ISSUED:
        return
    if state in (Entitlement.State.REVOKED, Entitlement.State.EXPIRED) and rng.random() < 0.5:
        # Never handed out before it was revoked or ran out.
        if state == Entitlement.State.REVOKED:
            entitlement.revoked_at = later(entitlement.issued_at, 30)
            entitlement.revoke_reason = rng.choice(REVOKE_REASONS)
        return
    entitlement.assignee_email = holder
    entitlement.assigned_at = later(entitlement.issued_at, 14)
    if state == Entitlement.State.ASSIGNED:
        return
    if state in (Entitlement.State.REDEEMED, Entitlement.State.EXPIRED):
        entitlement.redeemed_by_email = holder
        entitlement.redeemed_at = later(entitlement.assigned_at, 5)
        return
    entitlement.revoked_at = later(entitlement.assigned_at, 60)
    entitlement.revoke_reason = rng.choice(REVOKE_REASONS)


def _plan_invoices(
    *,
    plan: CustomerPlan,
    key: int,
    today: dt.date,
    window_start: dt.date,
) -> None:
    this_month = _month_start(today)
    month = _month_start(window_start)
    while month <= this_month:
        month_end = _month_end(month)
        for contract in plan.contracts:
            if contract.status not in (Contract.Status.ACTIVE, Contract.Status.ENDED):
                continue
            if contract.start_date > month_end or (
                contract.end_date is not None and contract.end_date < month
            ):
                continue
            latest = month == this_month
            overdue = plan.story == Story.OVERDUE_INVOICE and month == _add_months(this_month, -2)
            # Billing slips that reconciliation finds: a month the billing system skipped
            # (amount-mismatch story), and a month it invoiced twice (overdue story).
            if plan.story == Story.AMOUNT_MISMATCH and month == _add_months(this_month, -4):
                break
            twice = plan.story == Story.OVERDUE_INVOICE and month == _add_months(this_month, -3)
            amount = contract.monthly_fee
            if plan.story == Story.AMOUNT_MISMATCH and month == _add_months(this_month, -1):
                amount = (amount * Decimal("0.9")).quantize(Decimal("0.01"))
            invoice = Invoice(
                external_id=f"in_{key:06x}{month:%Y%m}",
                tenant_id=plan.customer.external_id,
                customer=plan.customer,
                number=f"OPS-{month:%Y-%m}-{key:06X}",
                status=Invoice.Status.OPEN if latest or overdue else Invoice.Status.PAID,
                currency=contract.currency,
                amount_due=amount,
                amount_paid=Decimal("0.00") if latest or overdue else amount,
                period_start=month,
                period_end=month_end,
                issued_at=month,
                due_at=month + dt.timedelta(days=30),
            )
            plan.invoices.append(invoice)
            if twice:  # the same month again, a few days later
                again = copy.copy(invoice)
                again.external_id = f"{invoice.external_id}b"
                again.number = f"{invoice.number}-B"
                again.issued_at = month + dt.timedelta(days=3)
                plan.invoices.append(again)
            break  # one contract per month by construction; never two invoices
        month = _add_months(month, 1)


def _plan_tickets(
    rng: random.Random,
    *,
    plan: CustomerPlan,
    contacts: Sequence[Contact],
    today: dt.date,
    enterprise: bool,
    refs: DemoRefs,
) -> None:
    anchor = _at(today, 0)
    topics = list(TICKET_TOPICS)
    # (topic, age, status or None to draw one)
    chosen: list[tuple[TicketTopic, dt.timedelta, str | None]] = []
    if plan.story == Story.ERROR_SPIKE:
        topic = TOPIC_BY_SUBJECT["API returning 500 errors"]
        chosen.append((topic, dt.timedelta(hours=3), Ticket.Status.OPEN))
    if plan.story == Story.RENEWAL_SOON:
        topic = TOPIC_BY_SUBJECT["Question about renewal pricing"]
        chosen.append((topic, dt.timedelta(days=2), Ticket.Status.OPEN))
    taken = {topic.subject for topic, _, _ in chosen}
    count = rng.choices((0, 1, 2, 3, 4, 5, 6), (10, 20, 25, 20, 13, 8, 4))[0]
    for topic in rng.sample([t for t in topics if t.subject not in taken], count):
        if rng.random() < 0.7:
            age = dt.timedelta(hours=rng.randint(1, 14 * 24))
        else:
            age = dt.timedelta(hours=rng.randint(14 * 24, 45 * 24))
        chosen.append((topic, age, None))
    for topic, age, status in chosen:
        created_at = anchor - age - dt.timedelta(minutes=rng.randint(0, 59))
        priority = topic.priority
        if plan.story is None and rng.random() < 0.25:
            shifted = PRIORITIES.index(priority) + rng.choice((-1, 1))
            priority = PRIORITIES[min(max(shifted, 0), len(PRIORITIES) - 1)]
        if status is not None:
            pass
        elif age < dt.timedelta(days=1):
            status = rng.choices(("open", "pending"), (80, 20))[0]
        elif age < dt.timedelta(days=7):
            status = rng.choices(("open", "pending", "solved"), (35, 30, 35))[0]
        else:
            status = rng.choices(("solved", "closed", "pending", "open"), (45, 45, 5, 5))[0]
        due = created_at + SLA[priority]
        responded = None
        if status != "open" or rng.random() < 0.4:
            candidate = created_at + SLA[priority] * rng.uniform(0.1, 1.6)
            if candidate < anchor:
                responded = candidate
        if responded is None and status != "open":
            responded = min(created_at + SLA[priority] * 0.5, anchor - dt.timedelta(minutes=1))
        assigned = responded is not None or rng.random() < 0.3
        requester = rng.choice(contacts)
        tags = list(topic.tags)
        if enterprise:
            tags.append("vip")
        plan.tickets.append(
            PlannedTicket(
                Ticket(
                    customer=plan.customer,
                    subject=topic.subject,
                    message=(
                        f"Hello,\n\n{topic.detail}\n\nThanks,\n{requester.name.split(' ')[0]}"
                    ),
                    requester_email=requester.email,
                    requester_name=requester.name,
                    category=topic.category,
                    priority=priority,
                    status=status,
                    assignee=refs.users["support"] if assigned else None,
                    first_response_due_at=due,
                    first_responded_at=responded,
                    created_at=created_at,
                ),
                tuple(tags),
            )
        )


def customer_plan(
    *, seed: int, index: int, today: dt.date, days: int, refs: DemoRefs
) -> CustomerPlan:
    """Everything about demo customer ``index``: unsaved model instances, linked together."""
    story = story_for(seed=seed, index=index)
    key = tenant_key(seed=seed, index=index)
    profile = _rng(seed, index, "profile")
    prefix, industry = profile.choice(NAME_PREFIXES), profile.choice(NAME_INDUSTRIES)
    currency = profile.choices(("EUR", "USD", "GBP"), (70, 20, 10))[0]
    slug = f"{prefix}-{industry}".lower()
    domain = f"{prefix}{industry}.example".lower()
    manager = MANAGER_PATTERN[index % len(MANAGER_PATTERN)]
    customer = Customer(
        external_id=f"{slug}-{key:06x}",
        name=f"{prefix} {industry} {profile.choice(LEGAL_FORMS[currency])}",
        account_manager=refs.users[manager] if manager else None,
        crm_id=f"CRM-{key:08d}" if profile.random() < 0.9 else "",
    )
    plan = CustomerPlan(index=index, story=story, customer=customer)

    people = _rng(seed, index, "contacts")
    taken: set[tuple[str, str]] = set()
    others = [
        Contact.Role.BILLING,
        Contact.Role.TECHNICAL,
        Contact.Role.EXECUTIVE,
        Contact.Role.USER,
    ]
    contact_roles = [Contact.Role.ADMIN, *people.sample(others, people.randint(1, 3))]
    for position, role in enumerate(contact_roles):
        person = _person(people, taken)
        plan.contacts.append(
            Contact(
                customer=customer,
                name=f"{person[0]} {person[1]}",
                email=_email(person, domain),
                role=role,
                is_primary=position == 0,
            )
        )

    plan.contracts = _plan_contracts(
        _rng(seed, index, "contracts"), customer=customer, currency=currency, story=story,
        today=today,
    )  # fmt: skip
    live = [c for c in plan.contracts if c.status != Contract.Status.DRAFT]
    since = min((c.start_date for c in live), default=today)
    current = next((c for c in plan.contracts if c.status == Contract.Status.ACTIVE), None)
    reference = current or plan.contracts[0]
    # Onboarding: signed but not live yet, or live for less than a month (a renewal is not).
    customer.status = (
        Customer.Status.ONBOARDING
        if current is None or since > today - dt.timedelta(days=30)
        else Customer.Status.ACTIVE
    )

    _plan_orders(
        _rng(seed, index, "orders"), plan=plan, key=key, currency=currency, since=since,
        today=today, domain=domain, contacts=plan.contacts, refs=refs,
    )  # fmt: skip

    window_start = today - dt.timedelta(days=days)
    dates = [window_start + dt.timedelta(days=offset) for offset in range(days)]
    plan.usage = _plan_usage(
        _rng(seed, index, "usage"), story=story,
        contracts=plan.contracts, dates=dates,
    )  # fmt: skip
    # A year of invoices (as far as the contracts go back), whatever the usage window.
    invoices_from = min(window_start, _add_months(_month_start(today), -11))
    _plan_invoices(plan=plan, key=key, today=today, window_start=invoices_from)
    _plan_tickets(
        _rng(seed, index, "tickets"), plan=plan, contacts=plan.contacts, today=today,
        enterprise=reference.plan == Contract.Plan.ENTERPRISE, refs=refs,
    )  # fmt: skip
    return plan


# --- Writing: insert what is missing, with history -------------------------------------


def _insert(objs: Sequence[models.Model], model: type[models.Model], created: Counter, name: str):
    if objs:
        bulk_create_with_history(objs, model)
        created[name] += len(objs)


def _tag_new_tickets(planned: Sequence[PlannedTicket], tags: dict[str, Tag]) -> int:
    """Tag just-created tickets, recording the tags in their creation history row.

    ``ticket.tags.add()`` would write a second (``~``) history row per ticket through the
    m2m signal; here the through rows and simple-history's m2m snapshot rows (what
    ``create_historical_record_m2ms`` writes) are inserted in bulk, once per ticket.
    """
    through = Ticket.tags.through
    links = through.objects.bulk_create(
        [
            through(ticket_id=item.ticket.pk, tag_id=tags[name].pk)
            for item in planned
            for name in item.tag_names
        ]
    )
    if not links:
        return 0
    history = Ticket.history.model
    creation_rows = dict(
        history.objects.filter(
            id__in={link.ticket_id for link in links}, history_type="+"
        ).values_list("id", "history_id")
    )
    m2m_history = history.tags.model
    m2m_history.objects.bulk_create(
        [
            m2m_history(
                history_id=creation_rows[link.ticket_id],
                id=link.pk,
                ticket_id=link.ticket_id,
                tag_id=link.tag_id,
            )
            for link in links
        ]
    )
    return len(links)


def _insert_cases(planned: Sequence[PlannedCase], created: Counter) -> None:
    keys = [item.case.dedupe_key for item in planned]
    existing = set(Case.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))
    new = []
    for item in planned:
        if item.case.dedupe_key in existing:
            continue
        if item.subject is not None:
            item.case.subject_type = ContentType.objects.get_for_model(item.subject)
            item.case.subject_id = str(item.subject.pk)
        new.append(item.case)
    _insert(new, Case, created, "cases")


def _write_plans(plans: Sequence[CustomerPlan], refs: DemoRefs, created: Counter) -> None:
    by_tenant = {plan.customer.external_id: plan for plan in plans}
    known = dict(
        Customer.objects.filter(external_id__in=by_tenant).values_list("external_id", "pk")
    )
    for tenant, pk in known.items():
        by_tenant[tenant].customer.pk = pk
    _insert(
        [plan.customer for plan in plans if plan.customer.external_id not in known],
        Customer,
        created,
        "customers",
    )
    customer_ids = [plan.customer.pk for plan in plans]

    contacts = set(
        Contact.objects.filter(customer_id__in=customer_ids).values_list(
            "customer_id", Lower("email")
        )
    )
    _insert(
        [
            contact
            for plan in plans
            for contact in plan.contacts
            if (plan.customer.pk, contact.email.lower()) not in contacts
        ],
        Contact,
        created,
        "contacts",
    )

    # Contracts have no natural key: a customer that has any keeps what it has.
    contracted = set(
        Contract.objects.filter(customer_id__in=customer_ids).values_list("customer_id", flat=True)
    )
    _insert(
        [c for plan in plans if plan.customer.pk not in contracted for c in plan.contracts],
        Contract,
        created,
        "contracts",
    )

    orders = [order for plan in plans for order in plan.orders]
    known_orders = dict(
        Order.objects.filter(external_id__in=[o.external_id for o in orders]).values_list(
            "external_id", "pk"
        )
    )
    for order in orders:
        order.pk = known_orders.get(order.external_id)
    _insert([o for o in orders if o.pk is None], Order, created, "orders")

    entitlements = [e for plan in plans for e in plan.entitlements]
    known_codes = dict(
        Entitlement.objects.filter(code__in=[e.code for e in entitlements]).values_list(
            "code", "pk"
        )
    )
    for entitlement in entitlements:
        entitlement.pk = known_codes.get(entitlement.code)
    _insert([e for e in entitlements if e.pk is None], Entitlement, created, "entitlements")

    first_day = min((row.date for plan in plans for row in plan.usage), default=None)
    reported = set()
    if first_day is not None:
        reported = set(
            UsageDaily.objects.filter(
                customer_id__in=customer_ids, date__gte=first_day
            ).values_list("customer_id", "date")
        )
    # Usage is most of the volume (3.65M rows at 10,000 x 365): COPY, not INSERT.
    usage = [
        UsageDaily(customer_id=plan.customer.pk, **report._asdict())
        for plan in plans
        for report in plan.usage
        if (plan.customer.pk, report.date) not in reported
    ]
    copy_with_history(usage, UsageDaily)
    created["usage rows"] += len(usage)

    invoices = [invoice for plan in plans for invoice in plan.invoices]
    known_invoices = dict(
        Invoice.objects.filter(external_id__in=[i.external_id for i in invoices]).values_list(
            "external_id", "pk"
        )
    )
    for invoice in invoices:
        invoice.pk = known_invoices.get(invoice.external_id)
    _insert([i for i in invoices if i.pk is None], Invoice, created, "invoices")

    # Tickets: one per subject per customer by construction.
    asked = set(
        Ticket.objects.filter(customer_id__in=customer_ids).values_list("customer_id", "subject")
    )
    new_tickets = [
        item
        for plan in plans
        for item in plan.tickets
        if (plan.customer.pk, item.ticket.subject) not in asked
    ]
    _insert([item.ticket for item in new_tickets], Ticket, created, "tickets")
    created["ticket tags"] += _tag_new_tickets(new_tickets, refs.tags)

    _insert_cases([case for plan in plans for case in plan.cases], created)


def _ensure_staff(created: Counter) -> dict[str, User]:
    users = {user.username: user for user in User.objects.filter(
        username__in=[staff.username for staff in DEMO_STAFF]
    )}  # fmt: skip
    groups = {group.name: group for group in Group.objects.all()}
    # One hash for all: PBKDF2 takes a noticeable fraction of a second per call.
    password = make_password(DEMO_PASSWORD) if len(users) < len(DEMO_STAFF) else None
    for staff in DEMO_STAFF:
        user = users.get(staff.username)
        if user is None:
            user = User(
                username=staff.username,
                email=f"{staff.username}@{DEMO_EMAIL_DOMAIN}",
                first_name=staff.first_name,
                last_name=staff.last_name,
                password=password,
                is_staff=True,
                is_superuser=staff.is_superuser,
            )
            user.save()
            created["users"] += 1
            users[staff.username] = user
        if staff.group:
            user.groups.add(groups[staff.group])  # adds nothing when already a member
    return users


def _ensure_reference_data(created: Counter) -> DemoRefs:
    users = _ensure_staff(created)

    tags = {tag.name: tag for tag in Tag.objects.filter(name__in=TAGS)}
    new_tags = [Tag(name=name, description=text) for name, text in TAGS.items() if name not in tags]
    _insert(new_tags, Tag, created, "tags")
    tags.update({tag.name: tag for tag in new_tags})

    products = {p.sku: p for p in Product.objects.filter(sku__in=[d.sku for d in PRODUCTS])}
    new_products = [
        Product(
            sku=demo.sku,
            name=demo.name,
            term_days=demo.term_days,
            status=Product.Status.RETIRED if demo.retired else Product.Status.ACTIVE,
        )
        for demo in PRODUCTS
        if demo.sku not in products
    ]
    _insert(new_products, Product, created, "products")
    products.update({product.sku: product for product in new_products})
    return DemoRefs(users=users, products=products, tags=tags)


def _webhook_id(rng: random.Random) -> str:
    return f"msg_{rng.getrandbits(120):030x}"


def _envelope(kind: str, at: dt.datetime, data: dict) -> dict:
    return {"type": kind, "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "data": data}


def _write_inbox(*, seed: int, today: dt.date, refs: DemoRefs, created: Counter) -> None:
    """What came in through the webhook and matched no customer: unmatched tickets, an order
    from an unknown tenant (failed fulfilment), and a rejected event."""
    rng = _rng(seed, "inbox")
    anchor = _at(today, 0)
    events: list[WebhookEvent] = []
    tickets: list[PlannedTicket] = []
    for request in UNMATCHED_REQUESTS:
        at = anchor - dt.timedelta(hours=request.hours_ago, minutes=rng.randint(0, 59))
        event = WebhookEvent(
            webhook_id=_webhook_id(rng),
            type="support.request",
            tenant_id=request.tenant_id,
            status=WebhookEvent.Status.PROCESSED,
            payload=_envelope(
                "support.request",
                at,
                {
                    "tenant_id": request.tenant_id,
                    "user": {"email": request.email, "name": request.name},
                    "subject": request.subject,
                    "message": request.message,
                    "category": request.category,
                    "severity": request.priority,
                },
            ),
            attempts=1,
            received_at=at + dt.timedelta(seconds=1),
            processed_at=at + dt.timedelta(seconds=3),
        )
        events.append(event)
        tickets.append(
            PlannedTicket(
                Ticket(
                    customer=None,
                    subject=request.subject,
                    message=request.message,
                    requester_email=request.email,
                    requester_name=request.name,
                    category=request.category,
                    priority=request.priority,
                    status=Ticket.Status.OPEN,
                    webhook_event=event,
                    first_response_due_at=at + dt.timedelta(seconds=3) + SLA[request.priority],
                    created_at=at + dt.timedelta(seconds=3),
                ),
                request.tags,
            )
        )

    paid_at = anchor - dt.timedelta(days=3, hours=rng.randint(1, 10))
    order_event = WebhookEvent(
        webhook_id=_webhook_id(rng),
        type="order.completed",
        tenant_id=UNKNOWN_TENANT_ORDER_TENANT,
        status=WebhookEvent.Status.PROCESSED,
        attempts=1,
        received_at=paid_at + dt.timedelta(seconds=4),
        processed_at=paid_at + dt.timedelta(seconds=6),
    )
    order = Order(
        external_id=f"ord_{rng.getrandbits(32):08x}",
        tenant_id=UNKNOWN_TENANT_ORDER_TENANT,
        customer=None,
        sku="SEAT-VIEWER-1Y",
        product=refs.products["SEAT-VIEWER-1Y"],
        quantity=5,
        amount=Decimal("300.00"),
        currency="EUR",
        paid_at=paid_at,
        fulfilment=Order.Fulfilment.FAILED,
        created_at=paid_at + dt.timedelta(seconds=6),
    )
    order_event.payload = _envelope(
        "order.completed",
        paid_at,
        {
            "tenant_id": order.tenant_id,
            "order_id": order.external_id,
            "sku": order.sku,
            "quantity": order.quantity,
            "amount": str(order.amount),
            "currency": order.currency,
            "paid_at": paid_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    events.append(order_event)
    rejected_at = anchor - dt.timedelta(hours=rng.randint(20, 40))
    events.append(
        WebhookEvent(
            webhook_id=_webhook_id(rng),
            type="",
            status=WebhookEvent.Status.REJECTED,
            raw_body='{"type": "support.request", "data": {"tenant_id": "acme-7f3a", "subj',
            error="body is not JSON",
            attempts=0,
            received_at=rejected_at,
        )
    )

    known_events = set(
        WebhookEvent.objects.filter(webhook_id__in=[e.webhook_id for e in events]).values_list(
            "webhook_id", flat=True
        )
    )
    _insert([e for e in events if e.webhook_id not in known_events], WebhookEvent, created,
            "webhook events")  # fmt: skip
    # An unmatched ticket is created with its event: a known event means a known ticket.
    new_tickets = [
        item for item in tickets if item.ticket.webhook_event.webhook_id not in known_events
    ]
    _insert([item.ticket for item in new_tickets], Ticket, created, "tickets")
    created["ticket tags"] += _tag_new_tickets(new_tickets, refs.tags)
    order.pk = (
        Order.objects.filter(external_id=order.external_id).values_list("pk", flat=True).first()
    )
    if order.pk is None:
        _insert([order], Order, created, "orders")
    _insert_cases(
        [
            PlannedCase(
                Case(
                    kind=Case.Kind.FAILED_FULFILMENT,
                    state=Case.State.OPEN,
                    customer=None,
                    summary=f"Order {order.external_id} from unknown tenant {order.tenant_id}",
                    expected=f"{order.quantity} x {order.sku} issued to tenant {order.tenant_id}",
                    found="No customer with this tenant id; nothing issued",
                    expected_amount=order.amount,
                    dedupe_key=case_dedupe_key(
                        Case.Kind.FAILED_FULFILMENT, "order", order.external_id
                    ),
                    opened_at=order.created_at,
                ),
                order,
            )
        ],
        created,
    )


def seed_demo(
    *,
    customers: int = DEFAULT_CUSTOMERS,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    today: dt.date | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[str], None] | None = None,
) -> SeedResult:
    """Create whatever of the demo data set ``(customers, days, seed)`` is missing.

    Idempotent: a second run with the same arguments on the same day creates no row and
    no history row. Each chunk of customers is one transaction, so an interrupted run
    keeps whole customers and a rerun completes it. History is attributed to the current
    actor (``audit.context``): run it inside ``acting_as`` or from ``AuditedCommand``.
    """
    started = time.monotonic()
    today = today or timezone.now().date()
    result = SeedResult(customers=customers, days=days, seed=seed)
    created = result.created
    with transaction.atomic():
        refs = _ensure_reference_data(created)
        _write_inbox(seed=seed, today=today, refs=refs, created=created)
    for first in range(0, customers, chunk_size):
        last = min(first + chunk_size, customers)
        with transaction.atomic():
            plans = [
                customer_plan(seed=seed, index=index, today=today, days=days, refs=refs)
                for index in range(first, last)
            ]
            _write_plans(plans, refs, created)
        # With DEBUG on, Django keeps every query's SQL: a 2,000-row INSERT each.
        reset_queries()
        if progress is not None:
            progress(
                f"seed_demo: customers {first + 1}-{last} of {customers}, "
                f"{result.total} rows created, {time.monotonic() - started:.1f}s"
            )
    if created["invoices"]:
        # The billing findings come from the real reconciliation of the invoiced year,
        # so the demo's ops inbox shows exactly what a daily run would.
        this_month = _month_start(today)
        for back in range(11, -1, -1):
            run = reconcile(month=_add_months(this_month, -back), today=today)
            created["cases"] += run.opened
    with transaction.atomic():
        seed_onboarding(seed=seed, today=today, created=created)
    result.seconds = time.monotonic() - started
    return result
