"""Fixtures the casework tests share: the webhook secret, the seat product, and Acme's
seat assigned to Ann that Bob redeemed."""

from __future__ import annotations

import pytest

from audit.context import acting_as
from customers.entitlements import entitlement_assign
from customers.models import Entitlement, Product
from support.models import Case
from tests import builders
from tests.opsdesk.casework.cases import redemption_case
from tests.records import issue
from tests.support.sender import SECRET


@pytest.fixture(autouse=True)
def _secrets(settings):
    """The secret tests.support.sender signs with."""
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


@pytest.fixture
def product(db) -> Product:
    with acting_as("test:fixture"):
        return builders.product(sku="SEAT-PRO-1Y", name="Pro seat, 1 year", term_days=365)


@pytest.fixture
def assigned(customer) -> Entitlement:
    """Acme's seat, assigned to Ann."""
    seat = issue(customer)
    with acting_as("test:fixture"):
        return entitlement_assign(entitlement=seat, email="ann@acme.com", reason="new hire")


@pytest.fixture
def wrong_user_case(assigned) -> Case:
    """Bob redeemed the seat assigned to Ann."""
    return redemption_case(assigned.code, user_email="bob@acme.com")
