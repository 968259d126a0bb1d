"""The demo's history: what happened to each record, when and by whom (``audit.bulk.PastChange``).

A demo record is inserted as it is today; its history rows tell how it got there, each
at the moment of its own event: a contract signed (draft), live on its start date, ended
the day after its end date; a code issued with its order, assigned, redeemed, revoked or
expired; a ticket opened by the webhook, taken, answered, solved, closed; a case raised,
acknowledged, resolved. People's steps are the demo staff's (``DemoRefs.users``); the
system's are ``webhook:<id>``, ``task:<name>`` and ``command:<name>`` as
``audit.context`` names them. Every moment is before ``now``, in order; the last change
leaves the record as it is, so its latest history row is the record itself.

Deterministic like the rest of the demo: each record draws from a generator of its own,
keyed by its natural key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random

from django.contrib.auth.models import User

from audit.bulk import PastChange
from billing.models import Invoice
from customers.answers import NOT_FULFILLED
from customers.models import Contact, Contract, Customer, Entitlement, Order
from kit.months import add_months, month_start
from opsdesk.demo.plan_shapes import at_time
from support.models import Case, Ticket, WebhookEvent

EXPIRE_ACTOR = "task:entitlements_expire"  # customers.entitlements_expire, nightly
IMPORT_ACTOR = "command:import_invoices"  # the billing system's export, imported daily
USAGE_ACTOR = "webhook:usage.daily"


def epoch(today: dt.date) -> dt.datetime:
    """When the demo company set opsdesk up: before its oldest contract (40 months back)."""
    return at_time(add_months(month_start(today), -42), 9)


def _rng(*key: object) -> random.Random:
    return random.Random(":".join(["opsdesk-demo-past", *map(str, key)]))


def webhook_actor(*key: object) -> str:
    """A webhook delivery's actor, its id derived from what it was about."""
    digest = hashlib.sha256(":".join(map(str, key)).encode()).hexdigest()
    return f"webhook:msg_{digest[:30]}"


def _person(user: User, at: dt.datetime, reason: str = "", **values) -> PastChange:
    return PastChange(at=at, actor=user.get_username(), user=user, reason=reason, values=values)


def _system(actor: str, at: dt.datetime, reason: str = "", **values) -> PastChange:
    return PastChange(at=at, actor=actor, reason=reason, values=values)


class Clock:
    """Moments of the demo's past, never at or after ``now``."""

    def __init__(self, now: dt.datetime):
        self.now = now

    def past(self, moment: dt.datetime) -> dt.datetime:
        return min(moment, self.now - dt.timedelta(seconds=1))


# --- Customers and what they signed ------------------------------------------------------


def contract_signed_at(contract: Contract, clock: Clock) -> dt.datetime:
    rng = _rng("contract", contract.customer.external_id, contract.start_date)
    signed = at_time(
        contract.start_date - dt.timedelta(days=rng.randint(7, 30)),
        rng.randint(9, 17),
        rng.randint(0, 59),
    )
    # A draft for a start a few days off was signed in the last days.
    recent = clock.now - dt.timedelta(days=rng.randint(1, 6), hours=rng.randint(1, 8))
    return min(signed, recent)


def customer_created_at(customer: Customer, contracts: list[Contract], clock: Clock):
    """Some weeks before its first contract was signed, and at least 25 days ago (the
    onboarding story's trial began 21 days ago)."""
    rng = _rng("customer", customer.external_id)
    first = min(contract_signed_at(c, clock) for c in contracts)
    created = min(first, clock.now - dt.timedelta(days=25)) - dt.timedelta(
        days=rng.randint(7, 30), hours=rng.randint(0, 6)
    )
    return created.replace(hour=rng.randint(9, 16), minute=rng.randint(0, 59), second=0)


def owner_of(customer: Customer, users: dict[str, User]) -> User:
    """Who creates and keeps a customer's records: its account manager (the admin for a
    customer without one)."""
    return customer.account_manager or users["admin"]


def customer_past(
    customer: Customer, contracts: list[Contract], users: dict[str, User], clock: Clock
) -> list[PastChange]:
    """Created while onboarding; active a month after its first contract went live."""
    owner = owner_of(customer, users)
    created = customer_created_at(customer, contracts, clock)
    if customer.status != Customer.Status.ACTIVE:
        return [_person(owner, created)]
    live = min(c.start_date for c in contracts if c.status != Contract.Status.DRAFT)
    active = clock.past(at_time(live + dt.timedelta(days=30), 10))
    return [
        _person(owner, created, status=Customer.Status.ONBOARDING),
        _person(owner, max(active, created + dt.timedelta(minutes=1))),
    ]


def contact_past(
    contact: Contact, created: dt.datetime, owner: User, clock: Clock
) -> list[PastChange]:
    minutes = _rng("contact", contact.email).randint(5, 90)
    return [_person(owner, clock.past(created + dt.timedelta(minutes=minutes)))]


def contract_past(contract: Contract, owner: User, clock: Clock) -> list[PastChange]:
    """Signed as a draft; live from its start date; ended the day after its end date."""
    signed = contract_signed_at(contract, clock)
    if contract.status == Contract.Status.DRAFT:
        return [_person(owner, signed)]
    live = max(clock.past(at_time(contract.start_date, 6)), signed + dt.timedelta(minutes=1))
    past = [
        _person(owner, signed, status=Contract.Status.DRAFT),
        _person(owner, live, status=Contract.Status.ACTIVE),
    ]
    if contract.status == Contract.Status.ENDED:
        ended = clock.past(at_time(contract.end_date + dt.timedelta(days=1), 6))
        past.append(_person(owner, max(ended, live + dt.timedelta(minutes=1))))
    return past


# --- Orders, their codes and the cases they raised ---------------------------------------


def order_actor(order: Order) -> str:
    return webhook_actor("order.completed", order.external_id)


def not_fulfilled(order: Order, why: str) -> str:
    """The reason an order the product's event could not fulfil is recorded with, as
    ``support.order_events`` records it: the order page's answer and its trace read why
    it failed from it (``customers.answers.NOT_FULFILLED``)."""
    return NOT_FULFILLED.format(order_id=order.external_id) + why


def order_past(
    order: Order, failure: str, fixed_by: Case | None, users: dict[str, User]
) -> list[PastChange]:
    """Recorded by its webhook; one whose fulfilment failed with why (``failure``, what its
    case found), and, when ops fulfilled it by hand (``fixed_by``, its resolved case),
    failed until the case was resolved."""
    reason = not_fulfilled(order, failure) if failure else ""
    if fixed_by is None:
        return [_system(order_actor(order), order.created_at, reason)]
    return [
        _system(order_actor(order), order.created_at, reason, fulfilment=Order.Fulfilment.FAILED),
        _person(fixed_by.owner or users["opslead"], fixed_by.closed_at - dt.timedelta(minutes=1)),
    ]


_NOT_HANDED_OUT = {
    "state": Entitlement.State.ISSUED,
    "assignee_email": "",
    "assigned_at": None,
    "redeemed_by_email": "",
    "redeemed_at": None,
    "revoked_at": None,
    "revoke_reason": "",
}


def entitlement_past(
    entitlement: Entitlement,
    *,
    issued_by: PastChange,
    users: dict[str, User],
    clock: Clock,
) -> list[PastChange]:
    """Issued (``issued_by``: the order's webhook, or the person who fulfilled it), then
    each step its fields record, at its time."""
    e = entitlement
    values = dict(_NOT_HANDED_OUT)
    past = [PastChange(e.issued_at, issued_by.actor, issued_by.user, values=dict(values))]

    def step(change: PastChange, **changed) -> None:
        values.update(changed)
        past.append(PastChange(change.at, change.actor, change.user, change.reason, dict(values)))

    if e.assigned_at is not None:
        step(
            _person(users["support"], e.assigned_at),
            state=Entitlement.State.ASSIGNED,
            assignee_email=e.assignee_email,
            assigned_at=e.assigned_at,
        )
    if e.redeemed_at is not None:
        step(
            _system(webhook_actor("code.redeemed", e.code), e.redeemed_at),
            state=Entitlement.State.REDEEMED,
            redeemed_by_email=e.redeemed_by_email,
            redeemed_at=e.redeemed_at,
        )
    if e.revoked_at is not None:
        step(
            _person(users["support"], e.revoked_at, e.revoke_reason),
            state=Entitlement.State.REVOKED,
            revoked_at=e.revoked_at,
            revoke_reason=e.revoke_reason,
        )
    if e.state == Entitlement.State.EXPIRED:
        expired = clock.past(at_time(e.valid_until + dt.timedelta(days=1), 2))
        step(
            _system(EXPIRE_ACTOR, max(expired, past[-1].at + dt.timedelta(minutes=1)),
                    "past its end date"),
            state=Entitlement.State.EXPIRED,
        )  # fmt: skip
    # The last step is the record as it is.
    past[-1] = PastChange(past[-1].at, past[-1].actor, past[-1].user, past[-1].reason)
    return past


def case_past(case: Case, raised_by: str, users: dict[str, User]) -> list[PastChange]:
    """Raised by the system; acknowledged and closed by its owner."""
    owner = case.owner or users["opslead"]
    past = [
        _system(
            raised_by,
            case.opened_at,
            state=Case.State.OPEN,
            owner_id=None,
            acknowledged_at=None,
            closed_at=None,
            closing_note="",
        )
    ]
    if case.acknowledged_at is not None:
        past.append(
            _person(
                owner,
                case.acknowledged_at,
                state=Case.State.ACKNOWLEDGED,
                closed_at=None,
                closing_note="",
            )
        )
    if case.closed_at is not None:
        past.append(_person(owner, case.closed_at, case.closing_note))
    past[-1] = PastChange(past[-1].at, past[-1].actor, past[-1].user, past[-1].reason)
    return past


# --- Invoices, tickets, webhook events ---------------------------------------------------


def invoice_past(invoice: Invoice, clock: Clock) -> list[PastChange]:
    """Imported the morning it was issued; a paid one imported again when it was paid."""
    rng = _rng("invoice", invoice.external_id)
    imported = clock.past(at_time(invoice.issued_at, 6, rng.randint(0, 59)))
    if invoice.status != Invoice.Status.PAID:
        return [_system(IMPORT_ACTOR, imported)]
    paid = clock.past(at_time(invoice.issued_at + dt.timedelta(days=rng.randint(3, 25)), 6))
    return [
        _system(IMPORT_ACTOR, imported, status=Invoice.Status.OPEN, amount_paid=0),
        _system(IMPORT_ACTOR, max(paid, imported + dt.timedelta(minutes=1))),
    ]


def ticket_actor(ticket: Ticket) -> str:
    if ticket.webhook_event is not None:
        return f"webhook:{ticket.webhook_event.webhook_id}"
    return webhook_actor("support.request", ticket.customer.external_id, ticket.subject)


def ticket_past(ticket: Ticket, users: dict[str, User], clock: Clock) -> list[PastChange]:
    """Opened by the webhook; taken and answered by support; waiting on the customer,
    solved or closed as it is now."""
    rng = _rng("ticket", ticket.requester_email, ticket.subject)
    t = ticket
    agent = t.assignee or users["support"]
    values = {"status": Ticket.Status.OPEN, "assignee_id": None, "first_responded_at": None}
    past = [_system(ticket_actor(t), t.created_at, **values)]

    def step(at: dt.datetime, **changed) -> None:
        values.update(changed)
        at = max(clock.past(at), past[-1].at + dt.timedelta(seconds=1))
        past.append(_person(agent, at, **values))

    responded = t.first_responded_at
    if t.assignee_id is not None:
        taken = t.created_at + dt.timedelta(minutes=rng.randint(2, 30))
        if responded is not None:
            taken = min(taken, responded - dt.timedelta(minutes=1))
        step(max(taken, t.created_at + dt.timedelta(seconds=30)), assignee_id=t.assignee_id)
    if responded is not None:
        waiting = t.status == Ticket.Status.PENDING
        step(
            responded,
            first_responded_at=responded,
            status=Ticket.Status.PENDING if waiting else Ticket.Status.OPEN,
        )
    if t.status in (Ticket.Status.SOLVED, Ticket.Status.CLOSED):
        solved = (responded or t.created_at) + dt.timedelta(hours=rng.randint(1, 48))
        step(solved, status=Ticket.Status.SOLVED)
        if t.status == Ticket.Status.CLOSED:
            step(solved + dt.timedelta(days=3), status=Ticket.Status.CLOSED)
    past[-1] = PastChange(past[-1].at, past[-1].actor, past[-1].user)
    return past


def webhook_event_past(event: WebhookEvent) -> list[PastChange]:
    """Received (pending), then processed a few seconds later."""
    actor = f"webhook:{event.webhook_id}"
    if event.processed_at is None:
        return [_system(actor, event.received_at)]
    return [
        _system(
            actor,
            event.received_at,
            status=WebhookEvent.Status.PENDING,
            processed_at=None,
            attempts=0,
        ),
        _system(actor, event.processed_at),
    ]
