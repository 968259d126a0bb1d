"""Orders after the fact: fulfil a failed order by hand, or record that it was refunded.

The product's ``order.completed`` event records and fulfils orders (support.order_events);
these are the two ways ops ends an order that could not be fulfilled (a failed-fulfilment
case's resolutions). Each checks the order's state and ``by``'s permission, needs a
reason, runs in one transaction and raises ``OrderError`` without changing anything when
it refuses.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from customers.entitlements import entitlements_issue
from customers.models import Customer, Entitlement, Order, Product

CHANGE = "customers.change_order"
UNFULFILLED = (Order.Fulfilment.PENDING, Order.Fulfilment.FAILED)
# The fulfilment states each action starts from: the one table the services below refuse
# by and the ops inbox's failed-fulfilment resolutions (opsdesk.casework.resolutions) check.
ORDER_ACTIONS: dict[str, tuple[str, ...]] = {
    "fulfil": UNFULFILLED,
    "refund": UNFULFILLED,
}


class OrderError(Exception):
    """An order change that is not allowed; the message says why. Nothing was changed."""


def order_action_allowed(order: Order, action: str) -> bool:
    """Whether ``order``'s fulfilment allows ``action`` (a key of ``ORDER_ACTIONS``) as it
    was read; the service checks again on the locked row."""
    return order.fulfilment in ORDER_ACTIONS[action]


def _locked(
    order: Order, action: str, by: AbstractBaseUser | None, reason: str
) -> tuple[Order, str]:
    if by is not None and not by.has_perm(CHANGE):
        raise OrderError("You may not do this: it needs the permission " + CHANGE)
    reason = (reason or "").strip()
    if not reason:
        raise OrderError("Give a reason: it is kept in the order's history.")
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if not order_action_allowed(locked, action):
        raise OrderError(
            f"Order {locked.external_id} is {locked.get_fulfilment_display().lower()};"
            " only a pending or failed order can be fulfilled or refunded."
        )
    return locked, reason


@transaction.atomic
def order_fulfil(
    *,
    order: Order,
    customer: Customer,
    product: Product,
    reason: str,
    by: AbstractBaseUser | None = None,
) -> list[Entitlement]:
    """pending | failed → fulfilled: issue the order's quantity of ``product`` to
    ``customer`` (which ops may have had to choose: the tenant was unknown, the SKU
    unknown or retired) and link the order to both."""
    order, reason = _locked(order, "fulfil", by, reason)
    if product.status != Product.Status.ACTIVE:
        raise OrderError(f"{product} is retired; pick a product that is sold.")
    if customer.status == Customer.Status.CHURNED:
        raise OrderError(f"{customer} has churned; pick a live customer.")
    entitlements = entitlements_issue(
        order=order, product=product, customer=customer, quantity=order.quantity, reason=reason
    )
    order.customer = customer
    order.product = product
    order.fulfilment = Order.Fulfilment.FULFILLED
    order._change_reason = reason
    order.save(update_fields=["customer", "product", "fulfilment"])
    return entitlements


@transaction.atomic
def order_record_refund(
    *, order: Order, reference: str, reason: str, by: AbstractBaseUser | None = None
) -> Order:
    """pending | failed → refunded: the customer got their money back instead (the
    refund itself happens in the billing system; ``reference`` names it there)."""
    order, reason = _locked(order, "refund", by, reason)
    order.fulfilment = Order.Fulfilment.REFUNDED
    order.refunded_at = timezone.now()
    order.refund_reference = (reference or "").strip()[:100]
    order._change_reason = reason
    order.save(update_fields=["fulfilment", "refunded_at", "refund_reference"])
    return order
