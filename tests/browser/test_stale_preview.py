"""A confirmation page opened before someone else changed the entitlement refuses to
apply: the ops lead reads what changed, the page now shows the entitlement as it is,
and confirming that works."""

import pytest

from audit.context import acting_as
from customers.entitlements import entitlement_reissue_code
from tests.browser.session import sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_stale_reissue_confirmation_says_what_changed_and_changes_nothing(
    live_server, page, screenshot, ops_lead, seats
):
    sign_in(page, live_server, ops_lead.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/customers/entitlement/{seats.pk}/change/")
    page.get_by_role("link", name="Reissue code…").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("workflow-row").get_by_test_id("outcome").inner_text() == (
        "gets a new code; 7T3W-GQRW-TS2H stops working"
    )
    # Meanwhile someone else reissues it.
    with acting_as("test:someone else"):
        entitlement_reissue_code(entitlement=seats, reason="code leaked")
    seats.refresh_from_db()
    reissued = seats.code

    page.get_by_label("Reason").fill("Ann lost the code")
    page.get_by_role("button", name="Reissue code").click()
    page.wait_for_load_state("networkidle")

    error = page.get_by_test_id("workflow-error")
    assert error.inner_text() == (
        "Nothing changed. This changed since you opened the preview: "
        "7T3W-GQRW-TS2H: its code; review it again."
    )
    assert page.get_by_test_id("workflow-row").get_attribute("data-code") == reissued
    assert page.get_by_label("Reason").input_value() == "Ann lost the code"
    seats.refresh_from_db()
    assert (seats.code, seats.history.count()) == (reissued, 2)
    screenshot("entitlement-reissue-stale")

    page.get_by_role("button", name="Reissue code").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/admin/customers/entitlement/{seats.pk}/change/")
    seats.refresh_from_db()
    assert seats.code != reissued and seats.history.count() == 3
    assert seats.history.latest().history_actor == "olga"
