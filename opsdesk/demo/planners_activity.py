"""Plans of what a customer did and what happened to it: orders and their
entitlements, invoices, tickets and cases."""

from __future__ import annotations

import copy
import datetime as dt
import random
from collections.abc import Sequence
from decimal import Decimal

from billing.models import Invoice
from customers.codes import redemption_code_generate
from customers.models import Contact, Contract, Entitlement, Order
from kit.months import add_months, month_end, month_start
from opsdesk.demo.catalogue import (
    PRIORITIES,
    PRODUCTS,
    RETIRED_SKU,
    TICKET_TOPICS,
    TOPIC_BY_SUBJECT,
    DemoProduct,
    Story,
    TicketTopic,
)
from opsdesk.demo.plan_shapes import (
    CustomerPlan,
    DemoRefs,
    PlannedCase,
    PlannedTicket,
    at_time,
    email_address,
    failed_fulfilment_case,
    person_name,
    rounded_money,
)
from support.cases import case_dedupe_key
from support.models import Case, Ticket
from support.sla import default_targets


def plan_orders(
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
    anchor = at_time(today, 0)
    first_paid = max(since, today - dt.timedelta(days=420))
    spread = max((today - first_paid).days - 1, 1)
    active = [product for product in PRODUCTS if not product.retired]
    wanted: list[tuple[DemoProduct, int, dt.datetime, str]] = []
    # Nothing bought before the first contract starts (drafts and brand-new customers).
    count = rng.choices((0, 1, 2, 3), (25, 35, 25, 15))[0] if since < today else 0
    for _ in range(count):
        product = rng.choice(active)
        paid_at = at_time(
            first_paid + dt.timedelta(days=rng.randint(0, spread)), rng.randint(7, 18)
        )
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
            amount=rounded_money(product.unit_price * quantity, currency, step=Decimal("1")),
            currency=currency,
            paid_at=paid_at,
            fulfilment=Order.Fulfilment.FAILED if failed else Order.Fulfilment.FULFILLED,
            created_at=paid_at + dt.timedelta(seconds=rng.randint(2, 40)),
        )
        plan.orders.append(order)
        if failed:
            why = f"product {product.sku} is retired"
            plan.cases.append(PlannedCase(failed_fulfilment_case(order, why), order))
            continue
        issued_at = paid_at + dt.timedelta(minutes=2)
        if kind == "resolved":
            # Fulfilled by hand two days after the order failed.
            issued_at = paid_at + dt.timedelta(days=2, hours=3)
            case = failed_fulfilment_case(
                order,
                "fulfilment timed out",
                state=Case.State.RESOLVED,
                owner=refs.users["opslead"],
                acknowledged_at=paid_at + dt.timedelta(hours=20),
                closed_at=issued_at,
                closing_note=(
                    f"Fulfilled now: re-ran fulfilment, {quantity} codes issued "
                    "and sent to the customer's admin."
                ),
            )
            plan.cases.append(PlannedCase(case, order))
        valid_from = paid_at.date()
        valid_until = (
            valid_from + dt.timedelta(days=product.term_days) if product.term_days else None
        )
        for _ in range(quantity):
            holder = email_address(person_name(rng, taken), domain)
            entitlement = Entitlement(
                order=order,
                customer=customer,
                product=refs.products[product.sku],
                code=redemption_code_generate(rng),
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
                holder=email_address(person_name(rng, taken), domain),
                anchor=anchor,
                today=today,
                state=Entitlement.State.ASSIGNED,
            )
            intruder = email_address(person_name(rng, taken), "gmail.example")
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


def plan_invoices(
    *,
    plan: CustomerPlan,
    key: int,
    today: dt.date,
    window_start: dt.date,
) -> None:
    this_month = month_start(today)
    month = month_start(window_start)
    while month <= this_month:
        last_day = month_end(month)
        for contract in plan.contracts:
            if contract.status not in (Contract.Status.ACTIVE, Contract.Status.ENDED):
                continue
            if contract.start_date > last_day or (
                contract.end_date is not None and contract.end_date < month
            ):
                continue
            latest = month == this_month
            overdue = plan.story == Story.OVERDUE_INVOICE and month == add_months(this_month, -2)
            # Billing slips that reconciliation finds: a month the billing system skipped
            # (amount-mismatch story), and a month it invoiced twice (overdue story).
            if plan.story == Story.AMOUNT_MISMATCH and month == add_months(this_month, -4):
                break
            twice = plan.story == Story.OVERDUE_INVOICE and month == add_months(this_month, -3)
            amount = contract.monthly_fee
            if plan.story == Story.AMOUNT_MISMATCH and month == add_months(this_month, -1):
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
                period_end=last_day,
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
        month = add_months(month, 1)


def plan_tickets(
    rng: random.Random,
    *,
    plan: CustomerPlan,
    contacts: Sequence[Contact],
    today: dt.date,
    enterprise: bool,
    refs: DemoRefs,
) -> None:
    anchor = at_time(today, 0)
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
        # Replies planned around the default target; the deadlines themselves are support's
        # (support.ticket_sla.tickets_sla_fill, when the tickets are written).
        target = default_targets()[priority].first_response
        responded = None
        if status != "open" or rng.random() < 0.4:
            candidate = created_at + target * rng.uniform(0.1, 1.6)
            if candidate < anchor:
                responded = candidate
        if responded is None and status != "open":
            responded = min(created_at + target * 0.5, anchor - dt.timedelta(minutes=1))
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
                    first_responded_at=responded,
                    created_at=created_at,
                ),
                tuple(tags),
            )
        )
