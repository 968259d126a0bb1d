"""An account manager reads a customer's billing tab in a real browser and follows a
finding to its case."""

import datetime as dt

import pytest
import time_machine

from audit.context import acting_as
from support.models import Case
from tests.billing.crafted import fjord_year
from tests.browser.session import SCREENSHOTS, sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_billing_tab_shows_the_year_and_links_each_finding_to_its_case(
    live_server, page, manager, ops_lead
):
    with time_machine.travel(dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)):
        with acting_as("test:billing-tab"):
            fjord = fjord_year(ops_lead)
        sign_in(page, live_server, manager.username, PASSWORD)
        page.goto(f"{live_server.url}/admin/customers/customer/{fjord.pk}/change/")
        billing = page.get_by_test_id("overview-billing")
        billing.scroll_into_view_if_needed()

        months = billing.locator("tbody tr")
        assert months.count() == 11
        october = billing.get_by_test_id("billing-2026-10")
        assert october.get_by_test_id("difference").inner_text() == "+800.00"
        assert "od-billing-off" in october.get_by_test_id("difference").get_attribute("class")
        assert october.get_by_text("Overdue", exact=True).is_visible()
        assert billing.get_by_test_id("billing-2026-06").inner_text().split("\t")[1:] == [
            "—",
            "—",
            "—",
            "No contract and no invoice",
        ]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        billing.screenshot(
            path=str(SCREENSHOTS / "customer-billing-tab.png"),
            style="#submit-row { visibility: hidden; }",
        )
        # Nothing overflows: the table fits its card at 1440 px.
        assert billing.evaluate("card => card.scrollWidth <= card.clientWidth")

        missing = Case.objects.get(customer=fjord, kind="missing_invoice")
        billing.get_by_test_id("billing-2026-07").get_by_role(
            "link", name="Missing invoice"
        ).click()
        page.wait_for_load_state("networkidle")
        assert page.url == f"{live_server.url}/admin/support/case/{missing.pk}/change/"
