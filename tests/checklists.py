"""The onboarding checklist templates and the onboarding Acme, as a pytest plugin
(registered in tests/conftest.py, so every test that walks the whole admin has them), and
the customers and contracts the onboarding tests start checklists from."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from audit.context import acting_as
from customers.models import Contact, Contract, Customer
from onboarding.models import ChecklistTemplate, Role, TemplateItem
from tests import builders


@pytest.fixture
def templates(db):
    """Standard (every plan), Enterprise extras (enterprise only) and a retired one."""
    with acting_as("test:fixture"):
        standard = ChecklistTemplate.objects.create(name="Standard onboarding")
        items = {
            "kickoff": TemplateItem(
                title="Kick-off call with {customer}",
                text="Call {primary_contact} to plan the rollout of {seats} seats ({plan}).",
                role=Role.ACCOUNT_MANAGER,
                due_offset_days=2,
                position=1,
            ),
            "sso": TemplateItem(
                title="Configure SSO",
                text="Set up single sign-on for {customer} with {technical_contact}.",
                role=Role.SUPPORT,
                due_offset_days=7,
                integration=Contract.Integration.SSO,
                position=2,
            ),
            "crm": TemplateItem(
                title="Link CRM record {crm_id}",
                text="Sync {integrations} for tenant {tenant_id}.",
                role=Role.OPS,
                due_offset_days=5,
                integration=Contract.Integration.CRM_SYNC,
                position=3,
            ),
            "training": TemplateItem(
                title="Train admins for {seats} seats",
                text="Two sessions, scheduled by {account_manager}.",
                role=Role.ACCOUNT_MANAGER,
                due_offset_days=14,
                seats_above=100,
                position=4,
            ),
            "success_plan": TemplateItem(
                title="Write the success plan",
                role=Role.ACCOUNT_MANAGER,
                due_offset_days=10,
                plan=Contract.Plan.ENTERPRISE,
                position=5,
            ),
        }
        for item in items.values():
            item.template = standard
            item.full_clean()
            item.save()
        enterprise = ChecklistTemplate.objects.create(
            name="Enterprise extras", plan=Contract.Plan.ENTERPRISE
        )
        items["security"] = TemplateItem.objects.create(
            template=enterprise,
            title="Security review",
            text="Starts {start_date}.",
            role=Role.OPS,
            due_offset_days=21,
        )
        retired = ChecklistTemplate.objects.create(name="Retired", active=False)
        items["retired"] = TemplateItem.objects.create(
            template=retired, title="Fax the welcome pack", role=Role.SUPPORT
        )
    return items


@pytest.fixture
def acme(customer):
    """Acme (growth, 50 seats, SSO and CRM sync, from 1 Jan 2026) with its contacts."""
    with acting_as("test:fixture"):
        builders.contact(
            customer=customer, name="Pia Primary", email="pia@acme.test", is_primary=True
        )
        builders.contact(
            customer=customer, name="Tom Tech", email="tom@acme.test", role=Contact.Role.TECHNICAL
        )
    return customer


def new_contract(customer: Customer, **scope) -> Contract:
    """An active starter contract of ``customer`` from 1 Mar 2026: 10 seats, 100.00 a
    month, 5.00 per extra seat, no integrations; ``scope`` overrides any of these."""
    fields = {
        "plan": Contract.Plan.STARTER,
        "seats": 10,
        "monthly_fee": Decimal("100.00"),
        "price_per_extra_seat": Decimal("5.00"),
        "start_date": dt.date(2026, 3, 1),
        **scope,
    }
    with acting_as("test:fixture"):
        return builders.contract(customer=customer, **fields)


def new_customer(name: str, manager=None, **fields) -> Customer:
    """``name``, tenant id ``name`` in lower case with dashes, managed by ``manager``."""
    with acting_as("test:fixture"):
        return builders.customer(
            external_id=name.lower().replace(" ", "-"), name=name, account_manager=manager, **fields
        )
