"""``order.completed`` events record the order and fulfil it, through the receiver."""

import datetime as dt
import re
from decimal import Decimal

import pytest

from audit.context import acting_as
from customers.models import Entitlement, Order, Product
from support.models import Case
from support.order_events import order_record
from support.webhook_schemas import parse_event
from support.webhooks import event_process
from tests import builders
from tests.support.sender import SECRET, deliver, order_completed

pytestmark = pytest.mark.django_db

CODE = re.compile(r"^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}(-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}){2}$")


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


@pytest.fixture
def product(db) -> Product:
    with acting_as("test:fixture"):
        return builders.product(sku="SEAT-PRO-1Y", name="Pro seat, 1 year", term_days=365)


def test_an_order_is_recorded_and_fulfilled_with_one_entitlement_per_unit(customer, product):
    event = deliver(order_completed())
    assert (event.status, event.error, event.warning) == ("processed", "", "")
    order = Order.objects.get()
    assert (
        order.external_id,
        order.tenant_id,
        order.customer,
        order.sku,
        order.product,
        order.quantity,
        order.amount,
        order.currency,
        order.paid_at,
        order.created_at,
        order.fulfilment,
    ) == (
        "ord_1001",
        "acme-7f3a",
        customer,
        "SEAT-PRO-1Y",
        product,
        3,
        Decimal("1200.00"),
        "EUR",
        dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 21, 9, 30, 5, tzinfo=dt.UTC),
        "fulfilled",
    )
    entitlements = list(Entitlement.objects.order_by("pk"))
    assert [
        (e.order, e.customer, e.product, e.state, e.assignee_email, e.valid_from, e.valid_until)
        for e in entitlements
    ] == [
        (order, customer, product, "issued", "", dt.date(2026, 11, 21), dt.date(2027, 11, 21))
    ] * 3
    assert not Case.objects.exists()


def test_the_order_and_its_entitlements_have_history_by_the_webhook(customer, product):
    deliver(order_completed(), webhook_id="msg_7")
    order = Order.objects.get()
    fulfilled, recorded = order.history.order_by("-history_id")
    assert (recorded.history_type, recorded.history_actor, recorded.fulfilment) == (
        "+",
        "webhook:msg_7",
        "pending",
    )
    assert (
        fulfilled.history_type,
        fulfilled.history_actor,
        fulfilled.fulfilment,
        fulfilled.history_change_reason,
    ) == ("~", "webhook:msg_7", "fulfilled", "order ord_1001 fulfilled")
    rows = Entitlement.history.order_by("history_id")
    assert [(r.history_type, r.history_actor, r.history_change_reason) for r in rows] == [
        ("+", "webhook:msg_7", "order ord_1001 fulfilled")
    ] * 3


def test_codes_are_unique_and_from_the_unambiguous_alphabet(customer, product):
    deliver(order_completed(quantity=50))
    codes = list(Entitlement.objects.values_list("code", flat=True))
    assert len(codes) == 50
    assert len(set(codes)) == 50
    assert all(CODE.match(code) for code in codes), codes


def test_a_perpetual_product_issues_entitlements_without_an_end(customer):
    with acting_as("test:fixture"):
        builders.product(sku="API-ADDON", name="API add-on")
    deliver(order_completed(sku="API-ADDON", quantity=1))
    assert list(Entitlement.objects.values_list("valid_from", "valid_until")) == [
        (dt.date(2026, 11, 21), None)
    ]


def test_the_same_event_again_changes_nothing(customer, product):
    event = deliver(order_completed())
    assert event_process(event_id=event.pk) is None  # already processed
    order_record(event, parse_event(event.payload)[1])  # the handler run again
    order = Order.objects.get()
    assert order.history.count() == 2
    assert Entitlement.objects.count() == 3
    assert Entitlement.history.count() == 3


def test_the_same_order_under_another_webhook_id_changes_nothing(customer, product):
    deliver(order_completed(), webhook_id="msg_1")
    again = deliver(order_completed(), webhook_id="msg_2")
    assert (again.status, again.error, again.warning) == ("processed", "", "")
    assert Order.objects.get().history.count() == 2
    assert Entitlement.objects.count() == 3
    assert Entitlement.history.count() == 3


def test_the_same_order_id_with_other_content_is_left_as_recorded_with_a_warning(customer, product):
    deliver(order_completed(), webhook_id="msg_1")
    again = deliver(order_completed(quantity=5, amount="2000.00"), webhook_id="msg_2")
    assert (again.status, again.error) == ("processed", "")
    assert again.warning == (
        "order ord_1001 was recorded before with other quantity, amount; left as recorded"
    )
    order = Order.objects.get()
    assert (order.quantity, order.amount, order.history.count()) == (3, Decimal("1200.00"), 2)
    assert Entitlement.objects.count() == 3


def failed_fulfilment_case() -> Case:
    case = Case.objects.get()
    assert case.kind == "failed_fulfilment"
    assert case.state == "open"
    return case


def test_an_unknown_tenants_order_is_recorded_failed_with_a_case(product):
    event = deliver(order_completed(tenant_id="nobody-0000"))
    order = Order.objects.get()
    assert (order.tenant_id, order.customer, order.product, order.fulfilment) == (
        "nobody-0000",
        None,
        product,
        "failed",
    )
    case = failed_fulfilment_case()
    assert (
        case.customer,
        case.subject,
        case.summary,
        case.expected,
        case.found,
        case.expected_amount,
        case.dedupe_key,
    ) == (
        None,
        order,
        "Order ord_1001: no customer with tenant id nobody-0000",
        "3 × SEAT-PRO-1Y for nobody-0000",  # noqa: RUF001
        "no customer with tenant id nobody-0000",
        Decimal("1200.00"),
        "failed_fulfilment:order:ord_1001",
    )
    assert (event.status, event.error) == ("processed", "")
    assert event.warning == (
        f"order ord_1001 not fulfilled: case #{case.pk} opened"
        " (no customer with tenant id nobody-0000)"
    )
    assert not Entitlement.objects.exists()


def test_an_unknown_sku_is_recorded_failed_with_a_case(customer, product):
    deliver(order_completed(sku="NOPE-1"))
    order = Order.objects.get()
    assert (order.customer, order.product, order.sku, order.fulfilment) == (
        customer,
        None,
        "NOPE-1",
        "failed",
    )
    case = failed_fulfilment_case()
    assert (case.customer, case.subject, case.expected, case.found) == (
        customer,
        order,
        "3 × NOPE-1 for acme-7f3a",  # noqa: RUF001
        "no product with SKU NOPE-1",
    )
    assert not Entitlement.objects.exists()


def test_a_retired_product_is_recorded_failed_with_a_case_and_history(customer, product):
    with acting_as("test:fixture"):
        product.status = Product.Status.RETIRED
        product.save()
    deliver(order_completed(), webhook_id="msg_3")
    order = Order.objects.get()
    assert (order.product, order.fulfilment) == (product, "failed")
    case = failed_fulfilment_case()
    assert (case.found, case.subject) == ("product SEAT-PRO-1Y is retired", order)
    [recorded] = order.history.all()
    assert (recorded.history_type, recorded.history_actor, recorded.history_change_reason) == (
        "+",
        "webhook:msg_3",
        "order ord_1001 not fulfilled: product SEAT-PRO-1Y is retired",
    )
    [opened] = case.history.all()
    assert (opened.history_type, opened.history_actor) == ("+", "webhook:msg_3")
    assert not Entitlement.objects.exists()


def test_a_failed_order_sent_again_opens_no_second_case(product):
    deliver(order_completed(tenant_id="nobody-0000"), webhook_id="msg_1")
    again = deliver(order_completed(tenant_id="nobody-0000"), webhook_id="msg_2")
    assert (again.status, again.warning) == ("processed", "")
    assert Case.objects.count() == 1
    assert Order.objects.get().history.count() == 1


def test_orders_of_two_customers_are_fulfilled_each_to_its_own(customer, product):
    with acting_as("test:fixture"):
        globex = builders.customer(external_id="globex-1", name="Globex")
    deliver(order_completed(), webhook_id="msg_1")
    deliver(
        order_completed(tenant_id="globex-1", order_id="ord_2002", quantity=1),
        webhook_id="msg_2",
    )
    assert sorted(Entitlement.objects.values_list("customer__name", "order__external_id")) == [
        ("Acme Corp", "ord_1001"),
        ("Acme Corp", "ord_1001"),
        ("Acme Corp", "ord_1001"),
        ("Globex", "ord_2002"),
    ]
    assert Order.objects.get(external_id="ord_2002").customer == globex
