"""The trace: everything that happened to an order, an entitlement or a customer, from
their history rows (``audit.timeline``), with what each step was called here."""

from __future__ import annotations

from django.db import models
from django.db.models import Q, Subquery

from audit.timeline import PAGE_SIZE, Step, TimelinePage, previous_row, timeline
from customers.models import Contact, Contract, Customer, Entitlement, Order

_ENTITLEMENT_STATES = {
    Entitlement.State.ASSIGNED: "assigned",
    Entitlement.State.REDEEMED: "redeemed",
    Entitlement.State.REVOKED: "revoked",
    Entitlement.State.EXPIRED: "expired",
    Entitlement.State.ISSUED: "put back to issued",
}

_ORDER_FULFILMENTS = {
    Order.Fulfilment.FULFILLED: "fulfilled",
    Order.Fulfilment.FAILED: "failed",
    Order.Fulfilment.REFUNDED: "refunded",
    Order.Fulfilment.PENDING: "put back to pending",
}


def entitlement_verb(step: Step) -> str:
    """What one history row of an entitlement did, in the words of the state machine
    (customers.entitlements): the first change that names it wins."""
    row = step.row
    if row.history_type == "+":
        return "issued"
    if row.history_type == "-":
        return "deleted"
    if "customer" in step.changed:
        return "transferred"
    if "state" in step.changed:
        return _ENTITLEMENT_STATES.get(row.state, "changed")
    if "code" in step.changed:
        return "code reissued"
    if "assignee_email" in step.changed:
        return "reassigned"
    return "changed"


def order_verb(step: Step) -> str:
    row = step.row
    if row.history_type == "+":
        # An order that cannot be fulfilled is recorded as failed at once.
        return "ordered, not fulfilled" if row.fulfilment == Order.Fulfilment.FAILED else "ordered"
    if row.history_type == "-":
        return "deleted"
    if "fulfilment" in step.changed:
        return _ORDER_FULFILMENTS.get(row.fulfilment, "changed")
    return "changed"


VERBS = {Entitlement: entitlement_verb, Order: order_verb}


def entitlement_trace(entitlement: Entitlement, *, page: int = 1) -> TimelinePage:
    """The entitlement's own history and the creation of its order."""
    sources = [Entitlement.history.filter(id=entitlement.pk)]
    if entitlement.order_id:
        sources.append(Order.history.filter(id=entitlement.order_id, history_type="+"))
    return timeline(sources, verbs=VERBS, page=page, subject=entitlement)


def order_trace(order: Order, *, page: int = 1) -> TimelinePage:
    """The order's history and its entitlements' (wherever they went since)."""
    sources = [
        Order.history.filter(id=order.pk),
        Entitlement.history.filter(order_id=order.pk),
    ]
    return timeline(sources, verbs=VERBS, page=page, subject=order)


def while_theirs(model: type[models.Model], customer: Customer) -> models.QuerySet:
    """History rows of ``model`` from while it belonged to ``customer``, and the row that
    moved it away (a transfer, an account migration): what the customer's people may
    know, not what its new owner did with it later."""
    history = model.history.model
    rows = history._default_manager
    return (
        rows.filter(id__in=rows.filter(customer_id=customer.pk).values("id"))
        .annotate(_previous_customer=Subquery(previous_row(history).values("customer_id")[:1]))
        .filter(Q(customer_id=customer.pk) | Q(_previous_customer=customer.pk))
    )


def customer_sources(customer: Customer) -> list[models.QuerySet]:
    """History of the customer's record, contacts, contracts, orders and entitlements,
    including what was moved to another customer (up to the move). Orders show whole: an
    order recorded for an unknown tenant and matched later was the customer's all along."""
    orders = Order.history.model._default_manager
    return [
        Customer.history.filter(id=customer.pk),
        while_theirs(Contact, customer),
        while_theirs(Contract, customer),
        orders.filter(id__in=orders.filter(customer_id=customer.pk).values("id")),
        while_theirs(Entitlement, customer),
    ]


def customer_trace(
    customer: Customer, *, page: int = 1, page_size: int = PAGE_SIZE
) -> TimelinePage:
    """The customer's trace: ``customer_sources`` as one timeline."""
    return timeline(
        customer_sources(customer), verbs=VERBS, page=page, page_size=page_size, subject=customer
    )
