"""``order.completed`` and ``entitlement.redeemed``: what the product sold, and who used it.

An order the product reports is always recorded; what cannot be fulfilled opens a
failed-fulfilment case. A redemption opsdesk cannot accept as it stands (unknown code,
another tenant's code, a dead seat, someone else's seat) opens a problem-redemption
case and changes no entitlement: the event still ends processed, with a warning naming
the case, because retrying it would find the same problem.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import connection
from django.utils import formats

from customers.entitlements import EntitlementError, entitlement_redeem, entitlements_issue
from customers.models import Customer, Entitlement, Order, Product
from support.cases import case_dedupe_key, case_open
from support.models import Case, WebhookEvent
from support.webhook_schemas import EntitlementRedeemed, OrderCompleted, happened_at
from support.webhooks import handles

logger = logging.getLogger(__name__)

# What an order event says about the order: a second event with the same order id must
# say the same, or it is a conflict for a person to look at.
ORDER_FIELDS = ("tenant_id", "sku", "quantity", "amount", "currency", "paid_at")
REDEEMED_REASON = "redeemed in the product"


def _warn(event: WebhookEvent, message: str) -> None:
    event.warning = message
    logger.warning("%s %s: %s", event.type, event.webhook_id, message)


def _when(moment: dt.datetime) -> str:
    """``21 Nov 2026 09:30`` (UTC): how cases show a moment (kit.dates' style)."""
    return formats.date_format(moment.astimezone(dt.UTC), "DATETIME_FORMAT")


@handles("order.completed")
def order_record(event: WebhookEvent, data: OrderCompleted) -> Order:
    """Record the order and fulfil it: ``quantity`` entitlements of the SKU's product for
    the tenant's customer, and the order marked fulfilled.

    Idempotent per order id: the same order again, under any webhook id, changes nothing.
    An event with a known order id but other content leaves the order as recorded and
    warns on the event. An order that cannot be fulfilled (unknown tenant or SKU, retired
    product) is recorded as failed and opens one failed-fulfilment case.

    Events of one order id are serialized with a transaction-scoped advisory lock (as
    error spikes are): a retry racing the first delivery waits for it and finds the
    order, instead of failing on the unique order id and waiting for its own retry.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"order:{data.order_id}"]
        )
    order = Order.objects.select_for_update().filter(external_id=data.order_id).first()
    if order is not None:
        differs = [name for name in ORDER_FIELDS if getattr(order, name) != getattr(data, name)]
        if differs:
            _warn(
                event,
                f"order {data.order_id} was recorded before with other "
                f"{', '.join(differs)}; left as recorded",
            )
        return order

    customer = Customer.objects.filter(external_id=data.tenant_id).first()
    product = Product.objects.filter(sku=data.sku).first()
    if customer is None:
        why = f"no customer with tenant id {data.tenant_id}"
    elif product is None:
        why = f"no product with SKU {data.sku}"
    elif product.status == Product.Status.RETIRED:
        why = f"product {data.sku} is retired"
    else:
        why = ""

    order = Order(
        external_id=data.order_id,
        tenant_id=data.tenant_id,
        customer=customer,
        sku=data.sku,
        product=product,
        quantity=data.quantity,
        amount=data.amount,
        currency=data.currency,
        paid_at=data.paid_at,
        fulfilment=Order.Fulfilment.FAILED if why else Order.Fulfilment.PENDING,
        created_at=happened_at(event.payload),
    )
    order._change_reason = f"order {data.order_id} not fulfilled: {why}" if why else ""
    order.save()
    if why:
        case = case_open(
            kind=Case.Kind.FAILED_FULFILMENT,
            customer=customer,
            subject=order,
            summary=f"Order {data.order_id}: {why}",
            expected=f"{data.quantity} × {data.sku} for {data.tenant_id}",  # noqa: RUF001
            found=why,
            dedupe_key=case_dedupe_key(Case.Kind.FAILED_FULFILMENT, "order", data.order_id),
            expected_amount=data.amount,
        )
        _warn(event, f"order {data.order_id} not fulfilled: case #{case.pk} opened ({why})")
        return order

    reason = f"order {data.order_id} fulfilled"
    entitlements_issue(
        order=order, product=product, customer=customer, quantity=data.quantity, reason=reason
    )
    order.fulfilment = Order.Fulfilment.FULFILLED
    order._change_reason = reason
    order.save(update_fields=["fulfilment"])
    return order


def _problem(
    entitlement: Entitlement | None, data: EntitlementRedeemed, email: str
) -> tuple[str, str] | None:
    """Why this redemption cannot be accepted as it stands, as (what was expected, what
    is wrong), or None when it can."""
    if entitlement is None:
        return f"a code issued to {data.tenant_id}", "the code is unknown"
    owner = entitlement.customer.external_id
    if owner != data.tenant_id:
        return f"a code issued to {data.tenant_id}", f"the code was issued to {owner}"
    if entitlement.state == Entitlement.State.REVOKED:
        return "a live entitlement", (
            f"it was revoked on {_when(entitlement.revoked_at)}: {entitlement.revoke_reason}"
        )
    if entitlement.state == Entitlement.State.EXPIRED or (
        entitlement.valid_until is not None and data.redeemed_at.date() > entitlement.valid_until
    ):
        return "a live entitlement", f"it ended on {entitlement.valid_until:%d %b %Y}"
    if entitlement.state == Entitlement.State.REDEEMED and entitlement.redeemed_by_email != email:
        return f"redeemed once, by {entitlement.redeemed_by_email}", (
            f"it was redeemed by {entitlement.redeemed_by_email}"
            f" on {_when(entitlement.redeemed_at)}"
        )
    if entitlement.state == Entitlement.State.ASSIGNED and entitlement.assignee_email != email:
        return f"redeemed by the assignee {entitlement.assignee_email}", "not the assignee"
    return None


@handles("entitlement.redeemed")
def entitlement_record_redemption(
    event: WebhookEvent, data: EntitlementRedeemed
) -> Entitlement | None:
    """Mark the entitlement with ``data.code`` (any case) redeemed by ``data.user_email``.

    Idempotent: a redemption already recorded for the same user changes nothing. Any
    other redemption that is not issued-or-assignee's opens one problem-redemption case
    per (entitlement, user) or per unknown code, leaves the entitlement as it was, and
    ends the event processed with a warning naming the case (never retried: it would
    find the same problem). Returns the entitlement redeemed, or None.
    """
    code = data.code.strip().upper()
    email = data.user_email.strip().lower()
    entitlement = (
        Entitlement.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(code=code)
        .first()
    )
    if (
        entitlement is not None
        and entitlement.state == Entitlement.State.REDEEMED
        and entitlement.redeemed_by_email == email
        and entitlement.customer.external_id == data.tenant_id
    ):
        return None

    problem = _problem(entitlement, data, email)
    if problem is None:
        try:
            return entitlement_redeem(
                entitlement=entitlement, email=email, at=data.redeemed_at, reason=REDEEMED_REASON
            )
        except EntitlementError as exc:  # a rule of the state machine the checks above miss
            problem = ("a redemption the entitlement allows", str(exc))
    expected, why = problem
    if entitlement is None:
        customer = Customer.objects.filter(external_id=data.tenant_id).first()
        key = case_dedupe_key(Case.Kind.PROBLEM_REDEMPTION, "code", code)
    else:
        customer = entitlement.customer
        key = case_dedupe_key(Case.Kind.PROBLEM_REDEMPTION, "entitlement", code, email)
    case = case_open(
        kind=Case.Kind.PROBLEM_REDEMPTION,
        customer=customer,
        subject=entitlement,
        summary=f"Code {code} redeemed by {email}: {why}",
        expected=expected,
        found=f"redeemed by {email} on {_when(data.redeemed_at)}",
        dedupe_key=key,
        # What "accept" needs to record the redemption as the product reported it.
        details={
            "code": code,
            "email": email,
            "redeemed_at": data.redeemed_at.isoformat(),
            "tenant_id": data.tenant_id,
        },
    )
    _warn(event, f"redemption of {code} not recorded: case #{case.pk} ({why})")
    return None
