"""Signing in as each role and opening a customer page, in a real browser."""

import pytest

from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.records import populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("persona", ["agent", "manager", "ops_lead", "superuser"])
def test_each_role_signs_in_and_opens_a_customer_page(
    request, live_server, page, screenshot, persona
):
    user = request.getfixturevalue(persona)
    [customer] = populate(1, manager=user)

    sign_in(page, live_server, user.username, PASSWORD)
    assert page.url == f"{live_server.url}/admin/"

    page.goto(f"{live_server.url}/admin/customers/customer/")
    page.get_by_role("link", name="Customer 0").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/admin/customers/customer/{customer.pk}/change/")
    for section in ("contracts", "usage", "entitlements", "tickets", "cases", "invoices"):
        assert page.get_by_test_id(f"overview-{section}").is_visible(), section
    assert page.get_by_test_id("overview-entitlements").get_by_text("CODE-0-0").is_visible()
    screenshot(f"customer-page-{persona}")


def test_a_wrong_password_is_refused_with_a_message(live_server, page, agent):
    sign_in(page, live_server, agent.username, "not-the-password")
    assert page.url.startswith(f"{live_server.url}/admin/login/")
    assert page.get_by_text("Please enter the correct username and password").is_visible()
