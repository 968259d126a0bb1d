"""Plans: what one customer looks like (contacts, contracts, usage), built without
touching the database; ``customer_plan`` puts a customer's whole plan together."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from decimal import Decimal

from customers.models import Contact, Contract, Customer
from kit.months import add_months, month_start
from opsdesk.demo.catalogue import (
    LEGAL_FORMS,
    MANAGER_PATTERN,
    NAME_INDUSTRIES,
    NAME_PREFIXES,
    PLAN_TERMS,
    USAGE_STORIES,
    Story,
)
from opsdesk.demo.plan_shapes import (
    CustomerPlan,
    DemoRefs,
    UsageReport,
    at_time,
    email_address,
    person_name,
    rounded_money,
    seeded_rng,
    story_for,
    tenant_key,
)
from opsdesk.demo.planners_activity import plan_invoices, plan_orders, plan_tickets


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
        "monthly_fee": rounded_money(terms.fee_per_seat * seats, currency),
        "price_per_extra_seat": rounded_money(terms.extra_seat, currency, step=Decimal("1")),
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
    this_month = month_start(today)
    plan, seats = _pick_plan(rng, story=story)

    def contract(**values) -> Contract:
        return Contract(customer=customer, **values)

    if story == Story.NEW_ONBOARDING:
        start = add_months(this_month, 1)
        return [
            contract(
                **_contract_terms(rng, plan, currency, seats),
                start_date=start,
                end_date=add_months(start, 12) - dt.timedelta(days=1),
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
                start_date=add_months(this_month, -11),
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
    start = add_months(this_month, -months_ago)
    term = 12 if plan != Contract.Plan.ENTERPRISE else rng.choice((12, 24, 36))
    terms: list[tuple[dt.date, dt.date, str, int]] = []
    while True:
        end = add_months(start, term) - dt.timedelta(days=1)
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
        last_login = at_time(before, rng.randint(8, 19), rng.randint(0, 59))
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
            last_login = at_time(day, rng.randint(8, 20), rng.randint(0, 59))
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


def customer_plan(
    *, seed: int, index: int, today: dt.date, days: int, refs: DemoRefs
) -> CustomerPlan:
    """Everything about demo customer ``index``: unsaved model instances, linked together."""
    story = story_for(seed=seed, index=index)
    key = tenant_key(seed=seed, index=index)
    profile = seeded_rng(seed, index, "profile")
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

    people = seeded_rng(seed, index, "contacts")
    taken: set[tuple[str, str]] = set()
    others = [
        Contact.Role.BILLING,
        Contact.Role.TECHNICAL,
        Contact.Role.EXECUTIVE,
        Contact.Role.USER,
    ]
    contact_roles = [Contact.Role.ADMIN, *people.sample(others, people.randint(1, 3))]
    for position, role in enumerate(contact_roles):
        person = person_name(people, taken)
        plan.contacts.append(
            Contact(
                customer=customer,
                name=f"{person[0]} {person[1]}",
                email=email_address(person, domain),
                role=role,
                is_primary=position == 0,
            )
        )

    plan.contracts = _plan_contracts(
        seeded_rng(seed, index, "contracts"), customer=customer, currency=currency, story=story,
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

    plan_orders(
        seeded_rng(seed, index, "orders"), plan=plan, key=key, currency=currency, since=since,
        today=today, domain=domain, contacts=plan.contacts, refs=refs,
    )  # fmt: skip

    window_start = today - dt.timedelta(days=days)
    dates = [window_start + dt.timedelta(days=offset) for offset in range(days)]
    plan.usage = _plan_usage(
        seeded_rng(seed, index, "usage"), story=story,
        contracts=plan.contracts, dates=dates,
    )  # fmt: skip
    # A year of invoices (as far as the contracts go back), whatever the usage window.
    invoices_from = min(window_start, add_months(month_start(today), -11))
    plan_invoices(plan=plan, key=key, today=today, window_start=invoices_from)
    plan_tickets(
        seeded_rng(seed, index, "tickets"), plan=plan, contacts=plan.contacts, today=today,
        enterprise=reference.plan == Contract.Plan.ENTERPRISE, refs=refs,
    )  # fmt: skip
    return plan
