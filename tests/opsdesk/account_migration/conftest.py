"""Fixtures the account migration tests share: Globex, the target, and Acme with
everything a migration moves."""

from __future__ import annotations

import pytest

from audit.context import acting_as
from customers.models import Customer
from tests import builders
from tests.opsdesk.account_migration.accounts import seat


@pytest.fixture
def globex(db) -> Customer:
    """Globex, active, with Lou as its primary contact."""
    with acting_as("test:fixture"):
        globex = builders.customer(
            external_id="globex-1", name="Globex", status=Customer.Status.ACTIVE
        )
        builders.contact(customer=globex, name="Lou", email="lou@globex.com", is_primary=True)
    return globex


@pytest.fixture
def acme(customer) -> Customer:
    """Acme: a primary and a plain contact, 4 entitlements of 2 products, an open, a
    waiting and a solved ticket."""
    with acting_as("test:fixture"):
        pro = builders.product(sku="SEAT-PRO", name="Pro seat")
        viewer = builders.product(sku="SEAT-VIEW", name="Viewer seat")
        builders.contact(customer=customer, name="Pat", email="pat@acme.com", is_primary=True)
        builders.contact(customer=customer, name="Kim", email="kim@acme.com")
        seat(customer, pro, "PRO-1")
        seat(customer, pro, "PRO-2", "assigned", "kim@acme.com")
        seat(customer, pro, "PRO-3", "revoked")
        seat(customer, viewer, "VIEW-1")
        for subject, status in [("Export stuck", "open"), ("SSO", "pending"), ("Old", "solved")]:
            builders.ticket(customer=customer, subject=subject, status=status)
    return customer
