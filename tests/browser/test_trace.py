"""Support reads the trace of an entitlement, its order and its customer in a real browser."""

import datetime as dt
from decimal import Decimal

import pytest

from audit.context import acting_as, acting_as_user, acting_for
from customers.entitlements import (
    entitlement_assign,
    entitlement_reassign,
    entitlement_redeem,
    entitlement_revoke,
    entitlements_issue,
)
from customers.models import Order
from opsdesk.account_migration.services import account_migrate
from support.models import Case
from tests import builders
from tests.browser.session import SCREENSHOTS, sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def story(customer, ops_lead):
    """Acme's order of 5 seats: one assigned, corrected for a case and redeemed, one
    revoked; and Initech's 40 seats migrated into Acme."""
    with acting_as("webhook:msg_2b7d"):
        product = builders.product(sku="SEAT-PRO-1Y", name="Pro seat", term_days=365)
        order = builders.order(
            external_id="ord_8841",
            customer=customer,
            product=product,
            quantity=5,
            amount=Decimal("1200.00"),
            paid_at=dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC),
        )
        seat, other, *_ = entitlements_issue(
            order=order, product=product, customer=customer, quantity=5, reason="order fulfilled"
        )
        order.fulfilment = Order.Fulfilment.FULFILLED
        order._change_reason = "order fulfilled"
        order.save()
    with acting_as("test:fixture"):
        case = builders.case(
            kind=Case.Kind.PROBLEM_REDEMPTION,
            customer=customer,
            summary="Redeemed by someone else",
        )
        initech = builders.customer(external_id="initech", name="Initech")
        entitlements_issue(
            order=order, product=product, customer=initech, quantity=40, reason="imported"
        )
    with acting_as_user(ops_lead):
        entitlement_assign(entitlement=seat, email="ann@acme.com", reason="new hire")
        with acting_for(case):
            entitlement_reassign(
                entitlement=seat, email="ann.lee@acme.com", reason="typo in the email"
            )
        entitlement_revoke(entitlement=other, reason="left the company")
    with acting_as("webhook:msg_9f1c"):
        entitlement_redeem(
            entitlement=seat,
            email="ann.lee@acme.com",
            at=dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC),
            reason="redeemed in the product",
        )
    with acting_as_user(ops_lead):
        account_migrate(source=initech, target=customer, reason="Acme bought Initech")
    return seat, order, case


def shoot(page, name: str) -> None:
    """The trace section itself (without the sticky submit row, which a shot of a tall
    element puts over it), and the viewport scrolled to the bottom, as people see it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.get_by_test_id("trace").screenshot(
        path=str(SCREENSHOTS / f"{name}.png"), style="#submit-row { visibility: hidden; }"
    )
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-bottom.png"))


def test_support_follows_a_seat_from_its_trace_to_its_order_and_customer(
    live_server, page, agent, story
):
    seat, order, case = story
    sign_in(page, live_server, agent.username, PASSWORD)

    page.goto(f"{live_server.url}/admin/customers/entitlement/{seat.pk}/change/")
    trace = page.get_by_test_id("trace")
    entries = trace.get_by_test_id("trace-entry")
    assert [h.inner_text() for h in trace.get_by_test_id("trace-headline").all()] == [
        "Redeemed",
        "Reassigned",
        "Assigned",
        "Issued",
        "Order ord_8841 ordered",
    ]
    reassigned = entries.nth(1)
    assert reassigned.get_by_test_id("trace-actor").inner_text() == "Olga"
    assert reassigned.get_by_test_id("trace-reason").inner_text() == "typo in the email"
    assert reassigned.get_by_text("assignee email: ann@acme.com → ann.lee@acme.com").is_visible()
    assert reassigned.get_by_role("link", name=f"Case #{case.pk}").is_visible()
    shoot(page, "trace-entitlement")

    trace.get_by_role("link", name="ord_8841").click()
    page.wait_for_load_state("networkidle")
    trace = page.get_by_test_id("trace")
    assert trace.get_by_text("5 entitlements issued").is_visible()
    assert trace.get_by_text(f"Entitlement {seat.code} redeemed").is_visible()
    shoot(page, "trace-order")

    page.goto(f"{live_server.url}/admin/customers/customer/{order.customer_id}/change/")
    trace = page.get_by_test_id("trace")
    migrated = trace.get_by_test_id("trace-entry").first
    assert migrated.get_by_test_id("trace-headline").inner_text() == "40 entitlements transferred"
    assert migrated.get_by_text("customer: Initech → Acme Corp").is_visible()
    assert migrated.get_by_test_id("trace-reason").inner_text() == (
        "account migration from Initech to Acme Corp: Acme bought Initech"
    )
    # The trace is the last section of the overview: no horizontal overflow on the page.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shoot(page, "trace-customer")
