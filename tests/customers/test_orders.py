"""Ending an order that could not be fulfilled: fulfil it by hand, or record its refund."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from audit.context import acting_as, acting_as_user
from customers.models import Customer, Entitlement, Order, Product
from customers.orders import OrderError, order_fulfil, order_record_refund
from tests import builders

pytestmark = pytest.mark.django_db

PAID_AT = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
FORBIDDEN = "You may not do this: it needs the permission customers.change_order"


@pytest.fixture
def product(db) -> Product:
    with acting_as("test:fixture"):
        return builders.product(sku="SEAT-PRO-1Y", name="Pro seat, 1 year", term_days=365)


@pytest.fixture
def order(db) -> Order:
    """Three seats bought by a tenant opsdesk does not know: recorded, failed (when paid,
    so that its history is older than the tests' changes, whatever today's date)."""
    with time_machine.travel(PAID_AT, tick=False), acting_as("test:fixture"):
        return builders.order(
            external_id="ord_1001",
            tenant_id="nobody-0000",
            sku="SEAT-PRO-1Y",
            quantity=3,
            amount=Decimal("1200.00"),
            paid_at=PAID_AT,
            fulfilment=Order.Fulfilment.FAILED,
        )


def set_fulfilment(order: Order, fulfilment: str) -> None:
    with acting_as("test:fixture"):
        order.fulfilment = fulfilment
        order.refunded_at = PAID_AT if fulfilment == Order.Fulfilment.REFUNDED else None
        order.save()


def everything() -> tuple:
    """Orders and entitlements as stored, and their history counts: what a refusal keeps."""
    return (
        list(
            Order.objects.order_by("pk").values_list(
                "pk",
                "customer_id",
                "product_id",
                "fulfilment",
                "refunded_at",
                "refund_reference",
            )
        ),
        Order.history.count(),
        list(Entitlement.objects.values_list("pk", flat=True)),
        Entitlement.history.count(),
    )


# --- Fulfil -------------------------------------------------------------------------------


def test_an_ops_lead_fulfils_a_failed_order_to_the_customer_and_product_chosen(
    order, customer, product, ops_lead
):
    with time_machine.travel(NOW, tick=False), acting_as_user(ops_lead):
        issued = order_fulfil(
            order=order,
            customer=customer,
            product=product,
            reason="  tenant id was mistyped  ",
            by=ops_lead,
        )

    order.refresh_from_db()
    assert (order.customer, order.product, order.fulfilment, order.tenant_id, order.sku) == (
        customer,
        product,
        "fulfilled",
        "nobody-0000",  # as the product sent it
        "SEAT-PRO-1Y",
    )
    assert len(issued) == 3
    assert sorted(e.pk for e in issued) == list(
        Entitlement.objects.order_by("pk").values_list("pk", flat=True)
    )
    assert [
        (e.order, e.customer, e.product, e.state, e.valid_from, e.valid_until, e.issued_at)
        for e in Entitlement.objects.all()
    ] == [
        (order, customer, product, "issued", dt.date(2026, 11, 21), dt.date(2027, 11, 21), NOW)
    ] * 3
    assert len({e.code for e in issued}) == 3

    latest = order.history.latest()
    assert (
        latest.history_type,
        latest.history_actor,
        latest.history_user,
        latest.history_change_reason,
        latest.fulfilment,
    ) == ("~", "olga", ops_lead, "tenant id was mistyped", "fulfilled")
    assert order.history.count() == 2
    assert [
        (r.history_type, r.history_actor, r.history_user_id, r.history_change_reason)
        for r in Entitlement.history.all()
    ] == [("+", "olga", ops_lead.pk, "tenant id was mistyped")] * 3


def test_a_pending_order_can_be_fulfilled_too(order, customer, product, ops_lead):
    set_fulfilment(order, Order.Fulfilment.PENDING)

    with acting_as_user(ops_lead):
        issued = order_fulfil(
            order=order, customer=customer, product=product, reason="stuck", by=ops_lead
        )

    order.refresh_from_db()
    assert (order.fulfilment, len(issued)) == ("fulfilled", 3)


def test_a_perpetual_product_issues_entitlements_without_an_end(order, customer, ops_lead):
    with acting_as("test:fixture"):
        addon = builders.product(sku="API-ADDON", name="API add-on")

    with acting_as_user(ops_lead):
        order_fulfil(order=order, customer=customer, product=addon, reason="sku", by=ops_lead)

    assert (
        list(Entitlement.objects.values_list("product__sku", "valid_until"))
        == [("API-ADDON", None)] * 3
    )


@pytest.mark.parametrize(
    ("fulfilment", "shown"), [("fulfilled", "fulfilled"), ("refunded", "refunded")]
)
def test_an_order_that_was_ended_is_not_fulfilled_again(
    order, customer, product, ops_lead, fulfilment, shown
):
    set_fulfilment(order, fulfilment)
    before = everything()

    with acting_as_user(ops_lead), pytest.raises(OrderError) as refused:
        order_fulfil(order=order, customer=customer, product=product, reason="x", by=ops_lead)

    assert str(refused.value) == (
        f"Order ord_1001 is {shown}; only a pending or failed order can be fulfilled or refunded."
    )
    assert everything() == before


def test_a_stale_copy_of_a_failed_order_is_not_fulfilled_twice(order, customer, product, ops_lead):
    stale = Order.objects.get(pk=order.pk)
    with acting_as_user(ops_lead):
        order_fulfil(order=order, customer=customer, product=product, reason="one", by=ops_lead)
    before = everything()

    with acting_as_user(ops_lead), pytest.raises(OrderError):
        order_fulfil(order=stale, customer=customer, product=product, reason="two", by=ops_lead)

    assert everything() == before
    assert Entitlement.objects.count() == 3


def test_a_retired_product_is_refused(order, customer, product, ops_lead):
    with acting_as("test:fixture"):
        product.status = Product.Status.RETIRED
        product.save()
    before = everything()

    with acting_as_user(ops_lead), pytest.raises(OrderError) as refused:
        order_fulfil(order=order, customer=customer, product=product, reason="x", by=ops_lead)

    assert (
        str(refused.value)
        == "Pro seat, 1 year (SEAT-PRO-1Y) is retired; pick a product that is sold."
    )
    assert everything() == before


def test_a_churned_customer_is_refused(order, customer, product, ops_lead):
    with acting_as("test:fixture"):
        customer.status = Customer.Status.CHURNED
        customer.save()
    before = everything()

    with acting_as_user(ops_lead), pytest.raises(OrderError) as refused:
        order_fulfil(order=order, customer=customer, product=product, reason="x", by=ops_lead)

    assert str(refused.value) == "Acme Corp has churned; pick a live customer."
    assert everything() == before


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_fulfilling_needs_a_reason(order, customer, product, ops_lead, reason):
    before = everything()

    with acting_as_user(ops_lead), pytest.raises(OrderError) as refused:
        order_fulfil(order=order, customer=customer, product=product, reason=reason, by=ops_lead)

    assert str(refused.value) == "Give a reason: it is kept in the order's history."
    assert everything() == before


@pytest.mark.parametrize("persona", ["agent", "manager", "outsider"])
def test_only_people_who_may_change_orders_fulfil_them(request, order, customer, product, persona):
    user = request.getfixturevalue(persona)
    before = everything()

    with acting_as_user(user), pytest.raises(OrderError) as refused:
        order_fulfil(order=order, customer=customer, product=product, reason="x", by=user)

    assert str(refused.value) == FORBIDDEN
    assert everything() == before


# --- Record a refund ----------------------------------------------------------------------


def test_an_ops_lead_records_that_a_failed_order_was_refunded(order, ops_lead):
    with time_machine.travel(NOW, tick=False), acting_as_user(ops_lead):
        refunded = order_record_refund(
            order=order, reference="  cn_2026_0042 ", reason="tenant cancelled", by=ops_lead
        )

    order.refresh_from_db()
    assert refunded == order
    assert (order.fulfilment, order.refunded_at, order.refund_reference) == (
        "refunded",
        NOW,
        "cn_2026_0042",
    )
    assert (order.customer, order.product) == (None, None)
    latest = order.history.latest()
    assert (
        latest.history_type,
        latest.history_actor,
        latest.history_user,
        latest.history_change_reason,
        latest.fulfilment,
        latest.refund_reference,
    ) == ("~", "olga", ops_lead, "tenant cancelled", "refunded", "cn_2026_0042")
    assert not Entitlement.objects.exists()


def test_a_pending_order_can_be_refunded_and_a_long_reference_is_cut_to_fit(order, ops_lead):
    set_fulfilment(order, Order.Fulfilment.PENDING)

    with acting_as_user(ops_lead):
        order_record_refund(order=order, reference="R" * 150, reason="cancelled", by=ops_lead)

    order.refresh_from_db()
    assert (order.fulfilment, order.refund_reference) == ("refunded", "R" * 100)


@pytest.mark.parametrize("fulfilment", ["fulfilled", "refunded"])
def test_an_order_that_was_ended_is_not_refunded(order, ops_lead, fulfilment):
    set_fulfilment(order, fulfilment)
    before = everything()

    with acting_as_user(ops_lead), pytest.raises(OrderError) as refused:
        order_record_refund(order=order, reference="cn_1", reason="x", by=ops_lead)

    assert str(refused.value) == (
        f"Order ord_1001 is {fulfilment}; only a pending or failed order can be fulfilled or"
        " refunded."
    )
    assert everything() == before


@pytest.mark.parametrize("reason", ["", "  "])
def test_recording_a_refund_needs_a_reason(order, ops_lead, reason):
    before = everything()

    with acting_as_user(ops_lead), pytest.raises(OrderError) as refused:
        order_record_refund(order=order, reference="cn_1", reason=reason, by=ops_lead)

    assert str(refused.value) == "Give a reason: it is kept in the order's history."
    assert everything() == before


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_only_people_who_may_change_orders_record_refunds(request, order, persona):
    user = request.getfixturevalue(persona)
    before = everything()

    with acting_as_user(user), pytest.raises(OrderError) as refused:
        order_record_refund(order=order, reference="cn_1", reason="x", by=user)

    assert str(refused.value) == FORBIDDEN
    assert everything() == before
