"""Writing the plans: insert what is missing, with the history of its past (``pasts``)."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from audit.bulk import (
    PastChange,
    bulk_create_with_history,
    bulk_create_with_past,
    copy_with_history,
)
from audit.context import acting_as, acting_as_user, recorded_at
from billing.models import Invoice
from customers.models import Contact, Contract, Customer, Entitlement, Order, Product, UsageDaily
from opsdesk.demo import pasts
from opsdesk.demo.catalogue import (
    DEMO_EMAIL_DOMAIN,
    DEMO_PASSWORD,
    DEMO_STAFF,
    PRODUCTS,
    TAGS,
    UNKNOWN_TENANT_ORDER_TENANT,
    UNMATCHED_REQUESTS,
)
from opsdesk.demo.plan_shapes import (
    CustomerPlan,
    DemoRefs,
    PlannedCase,
    PlannedTicket,
    at_time,
    failed_fulfilment_case,
    seeded_rng,
)
from support.models import Case, Tag, Ticket, WebhookEvent
from support.ticket_sla import tickets_sla_fill

# --- Writing: insert what is missing, with history -------------------------------------


def _insert(objs: Sequence[models.Model], model: type[models.Model], created: Counter, name: str):
    if objs:
        bulk_create_with_history(objs, model)
        created[name] += len(objs)


def _insert_past(
    items: Sequence[tuple[models.Model, Sequence[PastChange]]],
    model: type[models.Model],
    created: Counter,
    name: str,
):
    if items:
        bulk_create_with_past(items, model)
        created[name] += len(items)


def _tag_new_tickets(planned: Sequence[PlannedTicket], tags: dict[str, Tag]) -> int:
    """Tag just-created tickets, recording the tags in their creation history row.

    ``ticket.tags.add()`` would write a second (``~``) history row per ticket through the
    m2m signal; here the through rows and simple-history's m2m snapshot rows (what
    ``create_historical_record_m2ms`` writes) are inserted in bulk, for each history row
    of the ticket's past: it had its tags from the start.
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
    rows: dict[int, list[int]] = {}
    for ticket_id, history_id in history.objects.filter(
        id__in={link.ticket_id for link in links}
    ).values_list("id", "history_id"):
        rows.setdefault(ticket_id, []).append(history_id)
    m2m_history = history.tags.model
    m2m_history.objects.bulk_create(
        [
            m2m_history(
                history_id=history_id,
                id=link.pk,
                ticket_id=link.ticket_id,
                tag_id=link.tag_id,
            )
            for link in links
            for history_id in rows[link.ticket_id]
        ]
    )
    return len(links)


def _case_raised_by(item: PlannedCase) -> str:
    """The webhook that raised a case: the order's, or the redemption attempt's."""
    if isinstance(item.subject, Order):
        return pasts.order_actor(item.subject)
    return pasts.webhook_actor("code.redeemed", item.case.details.get("code"),
                               item.case.details.get("email"))  # fmt: skip


def _insert_cases(
    planned: Sequence[PlannedCase],
    created: Counter,
    users: dict[str, User],
    raised_by: Callable[[PlannedCase], str] = _case_raised_by,
) -> None:
    keys = [item.case.dedupe_key for item in planned]
    existing = set(Case.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))
    new = []
    for item in planned:
        if item.case.dedupe_key in existing:
            continue
        if item.subject is not None:
            item.case.subject_type = ContentType.objects.get_for_model(item.subject)
            item.case.subject_id = str(item.subject.pk)
        new.append((item.case, pasts.case_past(item.case, raised_by(item), users)))
    _insert_past(new, Case, created, "cases")


def write_plans(plans: Sequence[CustomerPlan], refs: DemoRefs, created: Counter) -> None:
    clock = pasts.Clock(timezone.now())
    users = refs.users
    by_tenant = {plan.customer.external_id: plan for plan in plans}
    known = dict(
        Customer.objects.filter(external_id__in=by_tenant).values_list("external_id", "pk")
    )
    for tenant, pk in known.items():
        by_tenant[tenant].customer.pk = pk
    _insert_past(
        [
            (plan.customer, pasts.customer_past(plan.customer, plan.contracts, users, clock))
            for plan in plans
            if plan.customer.external_id not in known
        ],
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
    _insert_past(
        [
            (
                contact,
                pasts.contact_past(
                    contact,
                    pasts.customer_created_at(plan.customer, plan.contracts, clock),
                    pasts.owner_of(plan.customer, users),
                    clock,
                ),
            )
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
    _insert_past(
        [
            (c, pasts.contract_past(c, pasts.owner_of(plan.customer, users), clock))
            for plan in plans
            if plan.customer.pk not in contracted
            for c in plan.contracts
        ],
        Contract,
        created,
        "contracts",
    )
    # Orders that failed: their case says why, and, resolved, when ops fulfilled them.
    failed = [
        item
        for plan in plans
        for item in plan.cases
        if isinstance(item.subject, Order) and item.case.kind == Case.Kind.FAILED_FULFILMENT
    ]
    failures = {id(item.subject): item.case.found for item in failed}
    fixed_by = {
        id(item.subject): item.case for item in failed if item.case.state == Case.State.RESOLVED
    }

    orders = [order for plan in plans for order in plan.orders]
    known_orders = dict(
        Order.objects.filter(external_id__in=[o.external_id for o in orders]).values_list(
            "external_id", "pk"
        )
    )
    for order in orders:
        order.pk = known_orders.get(order.external_id)
    _insert_past(
        [
            (o, pasts.order_past(o, failures.get(id(o), ""), fixed_by.get(id(o)), users))
            for o in orders
            if o.pk is None
        ],
        Order,
        created,
        "orders",
    )

    def issued_by(entitlement: Entitlement) -> PastChange:
        case = fixed_by.get(id(entitlement.order))
        if case is not None:
            owner = case.owner or users["opslead"]
            return PastChange(entitlement.issued_at, owner.get_username(), owner)
        return PastChange(entitlement.issued_at, pasts.order_actor(entitlement.order))

    entitlements = [e for plan in plans for e in plan.entitlements]
    known_codes = dict(
        Entitlement.objects.filter(code__in=[e.code for e in entitlements]).values_list(
            "code", "pk"
        )
    )
    for entitlement in entitlements:
        entitlement.pk = known_codes.get(entitlement.code)
    _insert_past(
        [
            (e, pasts.entitlement_past(e, issued_by=issued_by(e), users=users, clock=clock))
            for e in entitlements
            if e.pk is None
        ],
        Entitlement,
        created,
        "entitlements",
    )

    first_day = min((row.date for plan in plans for row in plan.usage), default=None)
    reported = set()
    if first_day is not None:
        reported = set(
            UsageDaily.objects.filter(
                customer_id__in=customer_ids, date__gte=first_day
            ).values_list("customer_id", "date")
        )
    # Usage is most of the volume (3.65M rows at 10,000 x 365): COPY, not INSERT.
    # Each day reported by the product's webhook early the next morning.
    usage = [
        UsageDaily(
            customer_id=plan.customer.pk,
            reported_at=clock.past(
                at_time(report.date + dt.timedelta(days=1), 0, 5 + plan.index % 50)
            ),
            **report._asdict(),
        )
        for plan in plans
        for report in plan.usage
        if (plan.customer.pk, report.date) not in reported
    ]
    with acting_as(pasts.USAGE_ACTOR):
        copy_with_history(usage, UsageDaily, dated_by="reported_at")
    created["usage rows"] += len(usage)

    invoices = [invoice for plan in plans for invoice in plan.invoices]
    known_invoices = dict(
        Invoice.objects.filter(external_id__in=[i.external_id for i in invoices]).values_list(
            "external_id", "pk"
        )
    )
    for invoice in invoices:
        invoice.pk = known_invoices.get(invoice.external_id)
    _insert_past(
        [(i, pasts.invoice_past(i, clock)) for i in invoices if i.pk is None],
        Invoice,
        created,
        "invoices",
    )

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
    tickets_sla_fill(tickets=[item.ticket for item in new_tickets])  # support's own rules
    _insert_past(
        [(item.ticket, pasts.ticket_past(item.ticket, users, clock)) for item in new_tickets],
        Ticket,
        created,
        "tickets",
    )
    created["ticket tags"] += _tag_new_tickets(new_tickets, refs.tags)

    _insert_cases([case for plan in plans for case in plan.cases], created, users)


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


def ensure_reference_data(created: Counter, *, today: dt.date) -> DemoRefs:
    """The staff, tags and products; the tags and products set up by the admin when the
    company started with opsdesk (``pasts.epoch``), before any customer."""
    users = _ensure_staff(created)
    with acting_as_user(users["admin"]), recorded_at(pasts.epoch(today)):
        return _ensure_catalogue(users, created)


def _ensure_catalogue(users: dict[str, User], created: Counter) -> DemoRefs:

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


def write_inbox(*, seed: int, today: dt.date, refs: DemoRefs, created: Counter) -> None:
    """What came in through the webhook and matched no customer: unmatched tickets, an order
    from an unknown tenant (failed fulfilment), and a rejected event."""
    rng = seeded_rng(seed, "inbox")
    anchor = at_time(today, 0)
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
    _insert_past(
        [(e, pasts.webhook_event_past(e)) for e in events if e.webhook_id not in known_events],
        WebhookEvent,
        created,
        "webhook events",
    )
    # An unmatched ticket is created with its event: a known event means a known ticket.
    new_tickets = [
        item for item in tickets if item.ticket.webhook_event.webhook_id not in known_events
    ]
    tickets_sla_fill(tickets=[item.ticket for item in new_tickets])
    clock = pasts.Clock(timezone.now())
    _insert_past(
        [(item.ticket, pasts.ticket_past(item.ticket, refs.users, clock)) for item in new_tickets],
        Ticket,
        created,
        "tickets",
    )
    created["ticket tags"] += _tag_new_tickets(new_tickets, refs.tags)
    order.pk = (
        Order.objects.filter(external_id=order.external_id).values_list("pk", flat=True).first()
    )
    order_actor = f"webhook:{order_event.webhook_id}"
    # Why, as support.order_events says it for an order of an unknown tenant.
    why = f"no customer with tenant id {order.tenant_id}"
    if order.pk is None:
        past = [PastChange(order.created_at, order_actor, reason=pasts.not_fulfilled(order, why))]
        _insert_past([(order, past)], Order, created, "orders")
    _insert_cases(
        [PlannedCase(failed_fulfilment_case(order, why), order)],
        created,
        refs.users,
        raised_by=lambda item: order_actor,
    )
