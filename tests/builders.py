"""Builders: one keyword-only function per record tests make, so a test names only the
fields it is about and leaves the rest to plain defaults.

Every builder
- writes through the ORM, not a service: the services have their own tests, and a test
  must be able to set up any state, the ones a service refuses to reach included;
- fills the fields the database requires with values unique across the run (one counter
  for all builders, and a ``b``/``B`` before the number, so tenant ids, codes, SKUs,
  order and invoice ids never collide with each other or with a test's own) and
  leaves every other field at the model's default unless the docstring says otherwise;
- builds the records it points to when none is given (a contract's customer, an order's
  customer and product...);
- runs inside ``acting_as("test:builder")`` when no actor is active, so its history row
  names who made it; inside a test's own ``acting_as`` that actor is kept;
- returns the saved object; keyword arguments override any default.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Iterable, Iterator
from decimal import Decimal

from django.utils import timezone

from audit.context import UNATTRIBUTED, acting_as, current_actor
from billing.models import Invoice
from customers.models import Contact, Contract, Customer, Entitlement, Order, Product
from opsdesk.models import Notification
from support.models import Case, InboundEmail, Macro, Problem, Tag, Ticket, TicketComment

ACTOR = "test:builder"
# The first day the fixed-date defaults (contracts, entitlements) count from.
START = dt.date(2026, 1, 1)

_numbers = itertools.count(1)


def _number() -> int:
    return next(_numbers)


@contextlib.contextmanager
def _attributed() -> Iterator[None]:
    """Keep the actor a test set; otherwise write as ``test:builder``."""
    if current_actor().label != UNATTRIBUTED:
        yield
        return
    with acting_as(ACTOR):
        yield


def customer(**fields) -> Customer:
    """A customer: name ``Customer <n>``, tenant id ``customer-b<n>``; no account manager,
    no CRM id, status onboarding (the model's default)."""
    n = _number()
    values = {"external_id": f"customer-b{n}", "name": f"Customer {n}", **fields}
    with _attributed():
        return Customer.objects.create(**values)


# The builders below take a ``customer`` or ``product`` argument, which hides the builder.
_new_customer = customer


def contact(*, customer: Customer | None = None, **fields) -> Contact:
    """A contact of ``customer`` (a new customer if None): ``Contact <n>``,
    ``contact-b<n>@example.com``, role user, not primary."""
    n = _number()
    with _attributed():
        values = {
            "customer": customer or _new_customer(),
            "name": f"Contact {n}",
            "email": f"contact-b{n}@example.com",
            **fields,
        }
        return Contact.objects.create(**values)


def contract(*, customer: Customer | None = None, **fields) -> Contract:
    """A contract of ``customer`` (a new customer if None), active: growth, 20 seats,
    500.00 EUR a month, 10.00 per extra seat, from 1 Jan 2026, open-ended, no
    integrations."""
    with _attributed():
        values = {
            "customer": customer or _new_customer(),
            "plan": Contract.Plan.GROWTH,
            "seats": 20,
            "monthly_fee": Decimal("500.00"),
            "price_per_extra_seat": Decimal("10.00"),
            "currency": "EUR",
            "start_date": START,
            "status": Contract.Status.ACTIVE,
            **fields,
        }
        return Contract.objects.create(**values)


def product(**fields) -> Product:
    """A product: SKU ``SKU-B<n>``, name ``Product <n>``, active, perpetual (no term)."""
    n = _number()
    values = {"sku": f"SKU-B{n}", "name": f"Product {n}", **fields}
    with _attributed():
        return Product.objects.create(**values)


_new_product = product


def order(*, customer: Customer | None = None, product: Product | None = None, **fields) -> Order:
    """An order ``ord_b<n>`` of one ``product`` for 100.00 EUR, paid now, fulfilment pending.

    Without ``customer`` a new customer buys it, unless ``tenant_id`` is given: then the
    order is from a tenant opsdesk does not know (no customer). Likewise without
    ``product`` a new product is bought, unless ``sku`` is given (an unknown SKU).
    A refunded order gets ``refunded_at`` now."""
    n = _number()
    with _attributed():
        if customer is None and "tenant_id" not in fields:
            customer = _new_customer()
        if product is None and "sku" not in fields:
            product = _new_product()
        values = {
            "external_id": f"ord_b{n}",
            "customer": customer,
            "tenant_id": customer.external_id if customer else "",
            "product": product,
            "sku": product.sku if product else "",
            "quantity": 1,
            "amount": Decimal("100.00"),
            "currency": "EUR",
            "paid_at": timezone.now(),
            **fields,
        }
        if values.get("fulfilment") == Order.Fulfilment.REFUNDED:
            values.setdefault("refunded_at", timezone.now())
        return Order.objects.create(**values)


def entitlement(
    *,
    customer: Customer | None = None,
    product: Product | None = None,
    order: Order | None = None,
    state: str = Entitlement.State.ISSUED,
    **fields,
) -> Entitlement:
    """An entitlement with code ``CODE-B<n>``, valid from 1 Jan 2026 with no end, issued now,
    of ``order``'s customer and product when an order is given, else of a new customer
    and product; no order unless given.

    The fields a state needs are filled unless given: assigned to
    ``user-b<n>@example.com`` now; redeemed by ``user-b<n>@example.com`` now; revoked now
    with the reason "refunded"."""
    n = _number()
    now = timezone.now()
    with _attributed():
        if customer is None:
            customer = order.customer if order and order.customer else _new_customer()
        if product is None:
            product = order.product if order and order.product else _new_product()
        values = {
            "customer": customer,
            "product": product,
            "order": order,
            "code": f"CODE-B{n}",
            "state": state,
            "valid_from": START,
            "issued_at": now,
            **fields,
        }
        if state == Entitlement.State.ASSIGNED:
            values.setdefault("assignee_email", f"user-b{n}@example.com")
            values.setdefault("assigned_at", now)
        elif state == Entitlement.State.REDEEMED:
            values.setdefault("redeemed_by_email", f"user-b{n}@example.com")
            values.setdefault("redeemed_at", now)
        elif state == Entitlement.State.REVOKED:
            values.setdefault("revoked_at", now)
            values.setdefault("revoke_reason", "refunded")
        return Entitlement.objects.create(**values)


def ticket(*, tags: Iterable[Tag] = (), **fields) -> Ticket:
    """A ticket with subject ``Ticket <n>``: no customer (a tenant opsdesk does not know),
    no requester, open, normal priority, no deadline, created now; ``tags`` added."""
    n = _number()
    values = {"subject": f"Ticket {n}", **fields}
    with _attributed():
        made = Ticket.objects.create(**values)
        if tags:
            made.tags.add(*tags)
    return made


def problem(*, tickets: Iterable[Ticket] = (), **fields) -> Problem:
    """A problem of fingerprint ``E-B<n>`` titled ``Problem <n>``: open, opened now (a
    solved one solved now); ``tickets`` linked to it."""
    n = _number()
    values = {"fingerprint": f"E-B{n}", "title": f"Problem {n}", **fields}
    if values.get("status") == Problem.Status.SOLVED:
        values.setdefault("solved_at", timezone.now())
    with _attributed():
        made = Problem.objects.create(**values)
        for each in tickets:
            each.problem = made
            each.save(update_fields=["problem"])
    return made


def reply(*, ticket: Ticket, author, **fields) -> TicketComment:
    """A reply on ``ticket`` by ``author`` with body ``Reply <n>``, to the ticket's
    requester (``pat@acme.com`` when it has none), written now and not yet sent."""
    n = _number()
    values = {
        "kind": TicketComment.Kind.REPLY,
        "body": f"Reply {n}",
        "sent_to": ticket.requester_email or "pat@acme.com",
        **fields,
    }
    with _attributed():
        return TicketComment.objects.create(ticket=ticket, author=author, **values)


def inbound_email(*, sender: str = "pat@acme.com", subject: str = "", body: str = "", **fields):
    """An email received by the webhook from ``sender`` (subject ``Email <n>``, body
    ``Message <n>``, Message-ID ``<email-<n>@mail.example>``), stored and pending."""
    n = _number()
    subject = subject or f"Email {n}"
    message_id = fields.pop("message_id", f"<email-{n}@mail.example>")
    raw = (
        f"From: {sender}\r\nTo: support@localhost\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body or f'Message {n}'}\r\n"
    ).encode()
    values = {
        "source": InboundEmail.Source.WEBHOOK,
        "delivery_id": f"msg_builder_{n}",
        "message_id": message_id,
        "raw": raw,
        "size": len(raw),
        "from_address": sender,
        "subject": subject,
        **fields,
    }
    with _attributed():
        return InboundEmail.objects.create(**values)


def customer_message(*, ticket: Ticket, body: str = "", **fields) -> TicketComment:
    """The requester's email answer on ``ticket`` (body ``Answer <n>``), as processed: its
    InboundEmail matched to the ticket, the entry in the conversation."""
    n = _number()
    sender = fields.pop("sender", ticket.requester_email or "pat@acme.com")
    inbound = inbound_email(
        sender=sender,
        subject=f"Re: {ticket.subject} [#{ticket.pk}]",
        body=body or f"Answer {n}",
        ticket=ticket,
        status=InboundEmail.Status.PROCESSED,
        kind=InboundEmail.Kind.MESSAGE,
        matched_by=InboundEmail.MatchedBy.ADDRESS,
    )
    values = {
        "kind": TicketComment.Kind.CUSTOMER,
        "body": body or f"Answer {n}",
        "sender": sender,
        "inbound": inbound,
        "message_id": inbound.message_id,
        **fields,
    }
    with _attributed():
        return TicketComment.objects.create(ticket=ticket, **values)


def comment(*, ticket: Ticket, kind: str, author, **fields) -> TicketComment:
    """A conversation entry of any kind: a note or a reply by ``author``, or a customer's
    message (which has no author)."""
    if kind == TicketComment.Kind.CUSTOMER:
        return customer_message(ticket=ticket, **fields)
    if kind == TicketComment.Kind.REPLY:
        return reply(ticket=ticket, author=author, **fields)
    with _attributed():
        return TicketComment.objects.create(ticket=ticket, kind=kind, author=author, **fields)


def macro(*, add_tags: Iterable[Tag] = (), remove_tags: Iterable[Tag] = (), **fields) -> Macro:
    """An active macro named ``Macro <n>`` whose reply is ``Thanks, {requester_name}.`` and
    that changes nothing else unless told; ``add_tags`` and ``remove_tags`` set."""
    n = _number()
    values = {"name": f"Macro {n}", "reply": "Thanks, {requester_name}.", **fields}
    with _attributed():
        made = Macro.objects.create(**values)
        if add_tags:
            made.add_tags.add(*add_tags)
        if remove_tags:
            made.remove_tags.add(*remove_tags)
    return made


def case(**fields) -> Case:
    """A failed-fulfilment case with summary ``Case <n>``: open, no customer, no subject,
    no owner, opened now. A closed case (resolved, waived) is closed now with the note
    "closed"; an acknowledged one is acknowledged now."""
    n = _number()
    now = timezone.now()
    values = {"kind": Case.Kind.FAILED_FULFILMENT, "summary": f"Case {n}", **fields}
    state = values.get("state", Case.State.OPEN)
    if state in Case.CLOSED_STATES:
        values.setdefault("closed_at", now)
        values.setdefault("closing_note", "closed")
    elif state == Case.State.ACKNOWLEDGED:
        values.setdefault("acknowledged_at", now)
    with _attributed():
        return Case.objects.create(**values)


def invoice(*, customer: Customer | None = None, **fields) -> Invoice:
    """A paid invoice ``in_b<n>`` numbered ``OPS-B<n>`` of ``customer`` (a new customer if
    None, unless ``tenant_id`` is given: then of a tenant opsdesk does not know) for
    500.00 EUR, for October 2026, issued 1 Nov and due 15 Nov 2026."""
    n = _number()
    with _attributed():
        if customer is None and "tenant_id" not in fields:
            customer = _new_customer()
        values = {
            "external_id": f"in_b{n}",
            "customer": customer,
            "tenant_id": customer.external_id if customer else "",
            "number": f"OPS-B{n}",
            "status": Invoice.Status.PAID,
            "currency": "EUR",
            "amount_due": Decimal("500.00"),
            "amount_paid": Decimal("500.00"),
            "period_start": dt.date(2026, 10, 1),
            "period_end": dt.date(2026, 10, 31),
            "issued_at": dt.date(2026, 11, 1),
            "due_at": dt.date(2026, 11, 15),
            **fields,
        }
        return Invoice.objects.create(**values)


def notification(*, recipient, **fields) -> Notification:
    """A notification for ``recipient`` that a ticket was assigned to them, subject
    ``Notification <n>`` linking ticket 1's page, emailed now (status sent)."""
    n = _number()
    values = {
        "kind": "ticket_assigned",
        "subject": f"Notification {n}",
        "text": "Assigned by Olga.",
        "url": "/admin/support/ticket/1/change/",
        "dedupe_key": f"test:{n}",
        "status": Notification.Status.SENT,
        "sent_at": timezone.now(),
        **fields,
    }
    with _attributed():
        return Notification.objects.create(recipient=recipient, **values)
