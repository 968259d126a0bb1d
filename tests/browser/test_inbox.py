"""An ops lead clears the exception inbox in a real browser: a failed fulfilment and a
seat redeemed by the wrong person, each raised by a real product event."""

import pytest

from audit.context import acting_as
from customers.entitlements import entitlement_assign
from customers.models import Entitlement, Order, Product
from support.models import Case
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.records import issue
from tests.support.sender import deliver, entitlement_redeemed, order_completed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _secrets(settings):
    from tests.support.sender import SECRET

    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


@pytest.fixture
def failed_order(customer):
    """The product sold 3 seats to a tenant opsdesk does not know (a typo in its id)."""
    with acting_as("test:fixture"):
        builders.product(sku="SEAT-PRO-1Y", name="Pro seat", term_days=365)
    deliver(order_completed(tenant_id="acme-7f3b", order_id="ord_typo"), webhook_id="msg_o")
    return Case.objects.get(kind=Case.Kind.FAILED_FULFILMENT)


@pytest.fixture
def wrong_redemption(customer):
    """Acme's seat was assigned to Ann; Bob redeemed its code."""
    seat = issue(customer)
    with acting_as("test:fixture"):
        entitlement_assign(entitlement=seat, email="ann@acme.com", reason="new hire")
    deliver(entitlement_redeemed(seat.code, user_email="bob@acme.com"), webhook_id="msg_r")
    return Case.objects.get(kind=Case.Kind.PROBLEM_REDEMPTION)


def test_an_ops_lead_resolves_a_failed_fulfilment_and_a_wrong_redemption_from_the_inbox(
    live_server, page, screenshot, ops_lead, customer, failed_order, wrong_redemption
):
    sign_in(page, live_server, ops_lead.username, PASSWORD)
    page.get_by_role("link", name="Exceptions").click()
    page.wait_for_load_state("networkidle")
    rows = page.get_by_test_id("inbox-row")
    assert rows.count() == 2
    # Oldest first: the order came before the redemption.
    assert rows.nth(0).get_attribute("data-case") == str(failed_order.pk)
    assert rows.nth(0).get_by_text("Failed fulfilment").is_visible()
    assert rows.nth(1).get_by_text("not the assignee").is_visible()
    screenshot("inbox")

    # Both are acknowledged at once; acknowledging takes them.
    page.get_by_label("Select all").check()
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("2 case(s) acknowledged.").is_visible()
    assert page.get_by_test_id("inbox-row").nth(0).get_by_text("Acknowledged").is_visible()

    # The failed order: fulfil it for Acme, whose tenant id the product mistyped.
    page.locator(f'[data-case="{failed_order.pk}"]').get_by_role("link", name="Fulfil now").click()
    page.wait_for_load_state("networkidle")
    page.locator(".select2-selection").click()
    page.keyboard.type("Acme")
    page.locator(".select2-results__option", has_text="Acme Corp").click()
    assert page.get_by_label("Product").input_value() == str(Product.objects.get().pk)
    page.get_by_label("Closing note").fill("Tenant id was mistyped in the shop; Acme confirmed.")
    screenshot("case-fulfil-now")
    page.get_by_role("button", name="Fulfil now and resolve").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text(f"Case #{failed_order.pk} resolved. Fulfilled: 3").is_visible()
    panel = page.get_by_test_id("case-panel")
    assert panel.get_by_text("Resolved").is_visible()
    assert panel.get_by_text("Tenant id was mistyped").is_visible()
    screenshot("case-resolved")
    order = Order.objects.get(external_id="ord_typo")
    assert (order.fulfilment, order.customer) == (Order.Fulfilment.FULFILLED, customer)
    assert order.entitlements.count() == 3

    # The wrong redemption, from its case page: Bob keeps the seat.
    page.get_by_role("link", name="Exceptions").first.click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("inbox-row").count() == 1
    page.get_by_role("link", name=wrong_redemption.summary).click()
    page.wait_for_load_state("networkidle")
    screenshot("case-problem-redemption")
    page.get_by_test_id("case-actions").get_by_role("link", name="Accept redemption").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Closing note").fill("Ann left; her manager gave Bob the code.")
    page.get_by_role("button", name="Accept redemption and resolve").click()
    page.wait_for_load_state("networkidle")
    seat = Entitlement.objects.get(order__external_id="ord_acme-7f3a")
    assert (seat.state, seat.redeemed_by_email) == (Entitlement.State.REDEEMED, "bob@acme.com")
    assert page.get_by_text(
        f"Case #{wrong_redemption.pk} resolved. {seat.code} moved from ann@acme.com to bob@acme.com"
        " and redeemed."
    ).is_visible()

    page.get_by_role("link", name="Exceptions").first.click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("inbox-empty").is_visible()
