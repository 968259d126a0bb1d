"""The database itself refuses records that break the rules."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import Contact, Contract, Customer, Entitlement, Product, UsageDaily

pytestmark = pytest.mark.django_db


def refused(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_a_tenant_id_belongs_to_one_customer(customer):
    refused(lambda: Customer.objects.create(external_id="acme-7f3a", name="Other"))


def test_one_usage_row_per_customer_and_day(customer):
    day = {"active_users_1d": 1, "active_users_7d": 1, "requests": 5, "errors": 0}
    UsageDaily.objects.create(customer=customer, date=dt.date(2026, 11, 1), **day)
    refused(lambda: UsageDaily.objects.create(customer=customer, date=dt.date(2026, 11, 1), **day))


def test_errors_cannot_exceed_requests(customer):
    refused(
        lambda: UsageDaily.objects.create(
            customer=customer,
            date=dt.date(2026, 11, 2),
            active_users_1d=1,
            active_users_7d=1,
            requests=5,
            errors=6,
        )
    )


def test_a_contract_cannot_end_before_it_starts_nor_use_a_made_up_currency(customer):
    base = {
        "customer": customer,
        "plan": "starter",
        "seats": 5,
        "monthly_fee": Decimal("10"),
        "price_per_extra_seat": Decimal("1"),
        "start_date": dt.date(2026, 2, 1),
    }
    refused(lambda: Contract.objects.create(**base, end_date=dt.date(2026, 1, 1)))
    refused(lambda: Contract.objects.create(**base, currency="eur"))
    refused(lambda: Contract.objects.create(**{**base, "seats": 0}))


def test_contact_emails_are_unique_per_customer_ignoring_case(customer):
    Contact.objects.create(customer=customer, name="A", email="a@acme.test")
    refused(lambda: Contact.objects.create(customer=customer, name="B", email="A@ACME.TEST"))


def test_entitlement_states_carry_what_they_require(customer):
    product = Product.objects.create(sku="SKU-1", name="One")
    base = {
        "customer": customer,
        "product": product,
        "valid_from": dt.date(2026, 1, 1),
        "issued_at": timezone.now(),
    }
    refused(lambda: Entitlement.objects.create(**base, code="A1", state="assigned"))
    refused(lambda: Entitlement.objects.create(**base, code="A2", state="redeemed"))
    refused(
        lambda: Entitlement.objects.create(
            **base, code="A3", state="revoked", revoked_at=timezone.now()
        )
    )
    Entitlement.objects.create(**base, code="A4", state="assigned", assignee_email="x@acme.test")
    refused(lambda: Entitlement.objects.create(**base, code="A4"))


def test_a_customer_with_contracts_cannot_be_deleted(customer):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        customer.delete()
