"""Fixtures the casework tests share: the webhook secret, the seat product, and Acme's
seat assigned to Ann that Bob redeemed."""

from __future__ import annotations

import pytest

from audit.context import acting_as
from customers.entitlements import entitlement_assign
from customers.models import Customer, Entitlement, Product
from support.models import Case
from tests import builders
from tests.opsdesk.casework.cases import redemption_case
from tests.records import issue
from tests.support.sender import SECRET, deliver, order_completed


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


@pytest.fixture
def globex(db) -> Customer:
    with acting_as("test:fixture"):
        return builders.customer(external_id="globex-1", name="Globex")


@pytest.fixture
def failed_order_case(product) -> Case:
    """ord_1001 (3 × SEAT-PRO-1Y) from a tenant opsdesk does not know: failed, a case."""  # noqa: RUF002
    deliver(order_completed(tenant_id="nobody-0000"), "msg_order")
    return Case.objects.get(kind=Case.Kind.FAILED_FULFILMENT)
