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
    # The CRM may send a contract of no seats (docs/contracts/crm.md), never fewer.
    refused(lambda: Contract.objects.create(**{**base, "seats": -1}))


def test_a_customer_is_known_by_its_tenant_id_or_else_its_crm_id(customer):
    # Before its product tenant exists, an account from the CRM has no tenant id.
    Customer.objects.create(external_id="", crm_id="001-NEW", name="New")
    Customer.objects.create(external_id="", crm_id="001-NEWER", name="Newer")
    refused(lambda: Customer.objects.create(external_id="", name="Nobody"))
    refused(lambda: Customer.objects.create(external_id="globex-1", crm_id="001-NEW", name="G"))


def test_crm_ids_are_unique_and_a_record_taken_from_the_crm_has_one(customer):
    taken = timezone.now()
    refused(lambda: Customer.objects.create(external_id="b-1", name="B", crm_updated_at=taken))
    contract = customer.contracts.get()
    contract.crm_id = "800-1"
    contract.save()
    copy = {
        f.attname: getattr(contract, f.attname)
        for f in Contract._meta.concrete_fields
        if not f.primary_key
    }
    refused(lambda: Contract.objects.create(**copy))
    refused(lambda: Contract.objects.create(**{**copy, "crm_id": "", "crm_updated_at": taken}))
    Contract.objects.create(**{**copy, "crm_id": ""})  # typed in opsdesk: no CRM id
    Contract.objects.create(**{**copy, "crm_id": ""})


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
