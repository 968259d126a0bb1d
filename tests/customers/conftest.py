"""Fixtures the entitlement workflow tests share: the seat product, Globex, and Acme's
seats in every state."""

from __future__ import annotations

import pytest

from audit.context import acting_as
from customers.models import Customer, Entitlement, Product
from tests import builders
from tests.customers.seats import make


@pytest.fixture
def product(db) -> Product:
    with acting_as("test:fixture"):
        return builders.product(sku="SEAT-PRO-1Y", name="Pro seat", term_days=365)


@pytest.fixture
def globex(db) -> Customer:
    with acting_as("test:fixture"):
        return builders.customer(external_id="globex-1", name="Globex")


@pytest.fixture
def seats(customer, product) -> dict[str, Entitlement]:
    """Acme's seats, one per state, named by it."""
    return {
        "issued": make(customer, product, "ISSU-ED00-0001"),
        "issued2": make(customer, product, "ISSU-ED00-0002"),
        "assigned": make(customer, product, "ASSI-GNED-0001", "assigned", "ann@acme.com"),
        "redeemed": make(customer, product, "REDE-EMED-0001", "redeemed", "kim@acme.com"),
        "revoked": make(customer, product, "REVO-KED0-0001", "revoked"),
    }
