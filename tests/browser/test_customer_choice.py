"""An account manager adds a contact in a real browser: the customer field offers only
the customers he manages; a superuser's version page of a contract shows it read-only."""

import pytest

from customers.models import Contact
from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.records import populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_customer_field_lists_only_the_managers_customers(
    live_server, page, screenshot, manager, other_manager
):
    populate(1, manager=manager, start=10)
    populate(1, manager=other_manager, start=20)
    sign_in(page, live_server, manager.username, PASSWORD)

    page.goto(f"{live_server.url}/admin/customers/contact/add/")
    page.locator(".field-customer .select2-selection").click()
    options = page.locator(".select2-results__option")
    options.first.wait_for()
    page.wait_for_load_state("networkidle")
    screenshot("row-rule-customer-choices")
    assert options.all_inner_texts() == ["Customer 10"]

    options.first.click()
    page.fill("#id_name", "Nora New")
    page.fill("#id_email", "nora@example.com")
    with page.expect_navigation():
        page.locator("button[name=_save], input[name=_save]").first.click()
    assert Contact.objects.get(email="nora@example.com").customer.name == "Customer 10"


def test_a_version_page_is_read_only(live_server, page, screenshot, superuser):
    [customer] = populate(1)
    contract = customer.contracts.get()
    version = contract.history.get()
    sign_in(page, live_server, superuser.username, PASSWORD)

    page.goto(f"{live_server.url}/admin/customers/contract/{contract.pk}/history/{version.pk}/")
    screenshot("history-version-read-only")
    assert page.locator("input[name=seats]").count() == 0
    assert page.get_by_text("Revert").count() == 0
    assert page.get_by_test_id("history-version-note").is_visible()
