"""What each builder of tests/builders.py makes: its defaults, unique values on every
call, the records it builds around it, and a history row naming the actor."""

import datetime as dt
import itertools
import re
from decimal import Decimal

import pytest
import time_machine

from audit.context import acting_as
from billing.models import Invoice
from customers.models import Contact, Contract, Customer, Entitlement, Order, Product
from support.models import Case, Tag, Ticket, TicketComment
from tests import builders

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def numbered_from_one(monkeypatch):
    """Each test counts from 1, so the defaults can be asserted whole."""
    monkeypatch.setattr(builders, "_numbers", itertools.count(1))


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield


def made_by(obj) -> list[tuple[str, str]]:
    return [(h.history_type, h.history_actor) for h in obj.history.all()]


def test_a_customer_is_named_and_numbered_and_onboarding():
    made = builders.customer()
    assert Customer.objects.values_list(
        "external_id", "name", "account_manager", "crm_id", "status"
    ).get(pk=made.pk) == ("customer-b1", "Customer 1", None, "", "onboarding")
    assert made_by(made) == [("+", "test:builder")]


def test_every_default_gives_way_to_a_field_given(manager):
    made = builders.customer(
        name="Acme", external_id="acme", account_manager=manager, status="active"
    )
    assert (made.name, made.external_id, made.account_manager, made.status) == (
        "Acme",
        "acme",
        manager,
        "active",
    )


def test_each_call_makes_new_unique_values():
    first, second = builders.customer(), builders.customer()
    assert [c.external_id for c in (first, second)] == ["customer-b1", "customer-b2"]
    first_code, second_code = builders.entitlement(), builders.entitlement()
    assert (first_code.code, second_code.code) == ("CODE-B3", "CODE-B6")


def test_a_test_s_own_actor_is_kept():
    with acting_as("webhook:msg_1"):
        made = builders.ticket()
    assert made_by(made) == [("+", "webhook:msg_1")]


def test_a_contact_belongs_to_a_new_customer_unless_given():
    made = builders.contact()
    assert Contact.objects.values_list(
        "customer__external_id", "name", "email", "role", "is_primary"
    ).get(pk=made.pk) == ("customer-b2", "Contact 1", "contact-b1@example.com", "user", False)
    acme = builders.customer(name="Acme")
    assert builders.contact(customer=acme).customer == acme
    assert made_by(made) == [("+", "test:builder")]
    assert made_by(made.customer) == [("+", "test:builder")]


def test_a_contract_is_an_active_growth_contract_from_january():
    made = builders.contract()
    assert Contract.objects.values_list(
        "customer__external_id",
        "plan",
        "seats",
        "monthly_fee",
        "price_per_extra_seat",
        "currency",
        "start_date",
        "end_date",
        "status",
        "integrations",
    ).get(pk=made.pk) == (
        "customer-b1",
        "growth",
        20,
        Decimal("500.00"),
        Decimal("10.00"),
        "EUR",
        dt.date(2026, 1, 1),
        None,
        "active",
        [],
    )
    assert made_by(made) == [("+", "test:builder")]


def test_a_product_is_active_and_perpetual():
    made = builders.product()
    assert Product.objects.values_list("sku", "name", "status", "term_days").get(pk=made.pk) == (
        "SKU-B1",
        "Product 1",
        "active",
        None,
    )
    assert made_by(made) == [("+", "test:builder")]


def test_an_order_is_one_new_product_for_a_new_customer_paid_now():
    made = builders.order()
    assert Order.objects.values_list(
        "external_id",
        "tenant_id",
        "customer__external_id",
        "sku",
        "product__sku",
        "quantity",
        "amount",
        "currency",
        "paid_at",
        "fulfilment",
        "refunded_at",
    ).get(pk=made.pk) == (
        "ord_b1",
        "customer-b2",
        "customer-b2",
        "SKU-B3",
        "SKU-B3",
        1,
        Decimal("100.00"),
        "EUR",
        NOW,
        "pending",
        None,
    )
    assert [made_by(x) for x in (made, made.customer, made.product)] == [
        [("+", "test:builder")]
    ] * 3


def test_an_order_from_an_unknown_tenant_or_of_an_unknown_sku_builds_neither():
    made = builders.order(tenant_id="ghost-9", sku="NOPE")
    assert (made.customer, made.tenant_id, made.product, made.sku) == (
        None,
        "ghost-9",
        None,
        "NOPE",
    )
    assert (Customer.objects.count(), Product.objects.count()) == (0, 0)


def test_a_refunded_order_is_refunded_now():
    made = builders.order(fulfilment=Order.Fulfilment.REFUNDED)
    assert (made.fulfilment, made.refunded_at) == ("refunded", NOW)


def test_an_entitlement_is_issued_from_january_without_an_order():
    made = builders.entitlement()
    assert Entitlement.objects.values_list(
        "code",
        "customer__external_id",
        "product__sku",
        "order",
        "state",
        "valid_from",
        "valid_until",
        "issued_at",
        "assignee_email",
        "redeemed_by_email",
    ).get(pk=made.pk) == (
        "CODE-B1",
        "customer-b2",
        "SKU-B3",
        None,
        "issued",
        dt.date(2026, 1, 1),
        None,
        NOW,
        "",
        "",
    )
    assert made_by(made) == [("+", "test:builder")]


def test_an_entitlement_of_an_order_is_its_customer_s_and_product_s():
    bought = builders.order()
    made = builders.entitlement(order=bought)
    assert (made.order, made.customer, made.product) == (bought, bought.customer, bought.product)
    assert (Customer.objects.count(), Product.objects.count()) == (1, 1)


@pytest.mark.parametrize(
    ("state", "filled"),
    [
        ("assigned", ("user-b1@example.com", NOW, "", None, None, "")),
        ("redeemed", ("", None, "user-b1@example.com", NOW, None, "")),
        ("revoked", ("", None, "", None, NOW, "refunded")),
        ("expired", ("", None, "", None, None, "")),
    ],
)
def test_an_entitlement_in_a_state_has_the_fields_that_state_needs(state, filled):
    made = builders.entitlement(state=state)
    assert (
        made.assignee_email,
        made.assigned_at,
        made.redeemed_by_email,
        made.redeemed_at,
        made.revoked_at,
        made.revoke_reason,
    ) == filled
    assert Entitlement.objects.get(pk=made.pk).state == state


def test_a_ticket_is_open_normal_and_matched_to_no_customer():
    vip = Tag.objects.create(name="vip")
    made = builders.ticket(tags=[vip])
    assert Ticket.objects.values_list(
        "subject",
        "customer",
        "requester_email",
        "status",
        "priority",
        "category",
        "first_response_due_at",
        "created_at",
    ).get(pk=made.pk) == ("Ticket 1", None, "", "open", "normal", "other", None, NOW)
    assert list(made.tags.all()) == [vip]
    # Tags are added to the saved ticket: a change of its own (newest first).
    assert made_by(made) == [("~", "test:builder"), ("+", "test:builder")]
    assert made_by(builders.ticket()) == [("+", "test:builder")]


def test_a_case_is_an_open_failed_fulfilment_opened_now():
    made = builders.case()
    assert Case.objects.values_list(
        "kind",
        "summary",
        "state",
        "customer",
        "subject_id",
        "owner",
        "opened_at",
        "acknowledged_at",
        "closed_at",
        "closing_note",
    ).get(pk=made.pk) == (
        "failed_fulfilment",
        "Case 1",
        "open",
        None,
        "",
        None,
        NOW,
        None,
        None,
        "",
    )
    assert made_by(made) == [("+", "test:builder")]


@pytest.mark.parametrize(
    ("state", "filled"),
    [
        ("acknowledged", (NOW, None, "")),
        ("resolved", (None, NOW, "closed")),
        ("waived", (None, NOW, "closed")),
    ],
)
def test_a_case_in_a_state_has_the_fields_that_state_needs(state, filled):
    made = builders.case(state=state)
    assert (made.acknowledged_at, made.closed_at, made.closing_note) == filled


def test_an_invoice_is_a_paid_october_invoice_of_a_new_customer():
    made = builders.invoice()
    assert Invoice.objects.values_list(
        "external_id",
        "tenant_id",
        "customer__external_id",
        "number",
        "status",
        "currency",
        "amount_due",
        "amount_paid",
        "period_start",
        "period_end",
        "issued_at",
        "due_at",
    ).get(pk=made.pk) == (
        "in_b1",
        "customer-b2",
        "customer-b2",
        "OPS-B1",
        "paid",
        "EUR",
        Decimal("500.00"),
        Decimal("500.00"),
        dt.date(2026, 10, 1),
        dt.date(2026, 10, 31),
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 15),
    )
    assert made_by(made) == [("+", "test:builder")]


def test_an_invoice_of_an_unknown_tenant_has_no_customer():
    made = builders.invoice(tenant_id="ghost-9")
    assert (made.customer, made.tenant_id, Customer.objects.count()) == (None, "ghost-9", 0)


def test_a_reply_is_a_pending_reply_to_the_requester(agent):
    ticket = builders.ticket(requester_email="kim@cinder.example")

    made = builders.reply(ticket=ticket, author=agent)

    assert (made.kind, made.sent_to, made.author, made.ticket) == (
        TicketComment.Kind.REPLY,
        "kim@cinder.example",
        agent,
        ticket,
    )
    assert re.fullmatch(r"Reply \d+", made.body)
    assert (made.sent_at, made.failed_at, made.message_id) == (None, None, "")
    assert made_by(made) == [("+", "test:builder")]
