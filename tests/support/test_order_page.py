"""An order's page shows the record and a POST to it is refused: what the product sold is
the order event's, and an order ends only through its failed-fulfilment case
(customers.orders)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from audit.context import acting_as
from customers.models import Order
from tests import builders

pytestmark = pytest.mark.django_db

PAID_AT = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def order(db) -> Order:
    with acting_as("test:fixture"):
        return builders.order(
            external_id="ord_1001",
            tenant_id="nobody-0000",
            sku="SEAT-PRO-1Y",
            quantity=3,
            amount=Decimal("1200.00"),
            paid_at=PAID_AT,
            fulfilment=Order.Fulfilment.FAILED,
        )


def stored() -> list[tuple]:
    return list(
        Order.objects.order_by("pk").values_list(
            "external_id", "quantity", "amount", "fulfilment", "refunded_at", "refund_reference"
        )
    )


@pytest.mark.parametrize("persona", ["ops_lead", "superuser"])
def test_the_order_page_is_the_record_and_a_post_to_it_is_refused(request, client, order, persona):
    client.force_login(request.getfixturevalue(persona))
    before = (stored(), order.history.count())

    response = client.post(
        f"/admin/customers/order/{order.pk}/change/",
        {
            "external_id": "ord_1001",
            "tenant_id": "nobody-0000",
            "sku": "SEAT-PRO-1Y",
            "quantity": "300",
            "amount": "1.00",
            "currency": "EUR",
            "paid_at_0": "2026-11-21",
            "paid_at_1": "09:30:00",
            "fulfilment": "fulfilled",
            "refund_reference": "made-up",
            "_save": "Save",
        },
    )

    assert response.status_code == 403
    assert (stored(), order.history.count()) == before
    page = client.get(f"/admin/customers/order/{order.pk}/change/")
    assert page.status_code == 200
    assert list(page.context["adminform"].form.fields) == []
    assert page.context["has_change_permission"] is False  # no save buttons


def test_nobody_adds_an_order_by_hand(client, superuser):
    client.force_login(superuser)

    assert client.get("/admin/customers/order/add/").status_code == 403
    assert client.post("/admin/customers/order/add/", {"external_id": "x"}).status_code == 403
    assert Order.objects.count() == 0
