"""An ops lead runs the entitlement workflows in a real browser: revoke one seat from its
page through the confirmation page, and migrate an account through its preview."""

import pytest

from audit.context import acting_as
from customers.models import Customer, Entitlement
from support.models import Ticket
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def globex(db):
    with acting_as("test:fixture"):
        globex = builders.customer(
            external_id="globex-1", name="Globex", status=Customer.Status.ACTIVE
        )
        builders.contact(customer=globex, name="Lou", email="lou@globex.com", is_primary=True)
    return globex


def test_an_ops_lead_revokes_a_seat_from_its_page(live_server, page, screenshot, ops_lead, seats):
    sign_in(page, live_server, ops_lead.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/customers/entitlement/{seats.pk}/change/")
    # An assigned seat offers what its state allows, and nothing else.
    assert page.get_by_role("link", name="Reassign…").is_visible()
    assert page.get_by_role("link", name="Assign…", exact=True).count() == 0

    page.get_by_role("link", name="Revoke…").click()
    page.wait_for_load_state("networkidle")
    row = page.get_by_test_id("workflow-row")
    assert row.count() == 1
    assert row.get_by_test_id("outcome").inner_text() == (
        "assigned → revoked; 7T3W-GQRW-TS2H stops working"
    )
    screenshot("entitlement-revoke-confirm")

    page.get_by_role("button", name="Revoke").click()  # no reason yet
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("Give a reason: it is kept in the entitlement's history.").is_visible()
    seats.refresh_from_db()
    assert seats.state == "assigned"

    page.get_by_label("Reason").fill("Ann left the company")
    page.get_by_role("button", name="Revoke").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/admin/customers/entitlement/{seats.pk}/change/")
    assert page.get_by_text("Revoked 1 entitlement: 7T3W-GQRW-TS2H.").is_visible()
    # Revoked: no workflow is offered any more.
    assert page.get_by_role("link", name="Revoke…").count() == 0
    seats.refresh_from_db()
    assert (seats.state, seats.revoke_reason) == ("revoked", "Ann left the company")
    assert seats.history.latest().history_actor == "olga"
    screenshot("entitlement-revoked")


def test_an_ops_lead_migrates_an_account_through_its_preview(
    live_server, page, screenshot, ops_lead, seats, globex, customer
):
    sign_in(page, live_server, ops_lead.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/customers/customer/{customer.pk}/change/")
    page.get_by_role("link", name="Migrate account…").click()
    page.wait_for_load_state("networkidle")

    def pick(name: str, button: str) -> None:
        # The target comes from the admin's searchable select.
        page.get_by_test_id("migration-target").locator(".select2-selection").click()
        page.locator(".select2-search__field").fill(name[:4])
        page.locator(".select2-results__option", has_text=name).click()
        page.get_by_role("button", name=button).click()
        page.wait_for_load_state("networkidle")

    # Initech already has Pat: the preview says so and offers no way to run it.
    with acting_as("test:fixture"):
        initech = builders.customer(external_id="initech-1", name="Initech")
        builders.contact(customer=initech, name="Pat I", email="pat@acme.com")
    pick("Initech", "Preview the migration")
    assert page.get_by_test_id("migration-problem").inner_text() == (
        "Initech already has a contact pat@acme.com; merge or remove one first."
    )
    assert page.get_by_test_id("migration-form").count() == 0
    screenshot("account-migration-conflict")

    pick("Globex", "Preview again")

    assert page.get_by_test_id("count-contacts").inner_text() == "1"
    assert page.get_by_test_id("count-entitlements").inner_text() == "2"
    assert page.get_by_test_id("count-tickets").inner_text() == "1"
    assert page.get_by_text("moves; no longer the primary contact (Globex has one)").is_visible()
    assert (
        page.get_by_test_id("migration-ticket").get_by_text("Seats for the new team").is_visible()
    )
    screenshot("account-migration-preview")

    page.get_by_label("Reason").fill("Acme bought Globex")
    page.get_by_role("button", name="Migrate Acme Corp into Globex").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/admin/customers/customer/{globex.pk}/change/")
    assert page.get_by_text(
        "Migrated Acme Corp into Globex: 1 contact, 2 entitlements and 1 open ticket "
        "moved. Pat stays a contact but is no longer the primary one."
    ).is_visible()
    assert Entitlement.objects.filter(customer=globex).count() == 2
    assert Ticket.objects.get(subject="Seats for the new team").customer_id == globex.pk
    screenshot("account-migrated")
