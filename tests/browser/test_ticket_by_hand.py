"""A support agent opens a ticket by hand and works it from the ticket page, in a real
browser: the add form has no status, assignee or tags to set; the ticket page's side
panel does, applied by the services when the person presses Save."""

import pytest

from audit.context import acting_as
from support import sla
from support.models import Tag, Ticket, TriageCondition, TriageRule
from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.sla_policies import business_hours, first_response

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def vip_rule(customer):
    """Acme's tickets are tagged vip."""
    with acting_as("test:fixture"):
        rule = TriageRule.objects.create(name="Acme is VIP")
        TriageCondition.objects.create(
            rule=rule,
            field=TriageCondition.Field.CUSTOMER_STATUS,
            operator="equals",
            value="active",
        )
        rule.add_tags.add(Tag.objects.create(name="vip"))
    return rule


def test_an_agent_opens_a_ticket_by_hand_and_works_it_from_its_page(
    live_server, page, screenshot, agent, customer, vip_rule
):
    sign_in(page, live_server, agent.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/support/ticket/add/")
    for field in ("status", "assignee", "tags", "queue"):
        assert page.locator(f"[name={field}]").count() == 0
    page.fill("#id_subject", "Invoice shows 60 seats")
    page.fill("#id_message", "Pat called: October's invoice bills 60 seats, they have 50.")
    page.fill("#id_requester_name", "Pat")
    page.fill("#id_requester_email", "pat@acme.com")
    page.select_option("#id_category", "billing")
    page.select_option("#id_priority", "urgent")
    # The customer is picked with the admin's autocomplete (select2).
    page.locator(".field-customer .select2-selection").click()
    page.locator(".select2-search__field").fill("Acme")
    page.locator(".select2-results__option", has_text="Acme Corp").click()
    screenshot("ticket-add")
    with page.expect_navigation():
        page.get_by_role("button", name="Save and continue editing").click()

    ticket = Ticket.objects.get()
    # Urgent on Acme's Growth contract: one business hour.
    assert (ticket.priority, ticket.first_response_due_at) == (
        "urgent",
        sla.business_deadline(ticket.created_at, first_response("urgent"), business_hours()),
    )
    assert list(ticket.tags.values_list("name", flat=True)) == ["vip"]
    triage = page.get_by_test_id("ticket-triage")
    assert triage.get_by_role("listitem", name="vip").is_visible()
    # What the requester said is the ticket's text, not a field.
    for field in ("subject", "message", "requester_email"):
        assert page.locator(f"form#ticket_form [name={field}]").count() == 0
    screenshot("ticket-page")

    # Choosing changes nothing until Save: nothing typed is lost to a reload.
    triage.get_by_label("Status").select_option("pending")
    triage.get_by_label("Assignee").select_option(label="Sam")
    triage.locator(".field-tags .select2-selection__choice__remove").click()
    page.keyboard.press("Escape")  # the tag list select2 opened
    ticket.refresh_from_db()
    assert ticket.status == "open"
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    said = page.get_by_text("is now waiting on customer")
    assert said.is_visible()
    assert "is now assigned to Sam" in said.inner_text()
    assert "is no longer tagged vip" in said.inner_text()
    assert page.get_by_text("Your queue is clear.").is_visible()
    screenshot("ticket-page-worked")

    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee, list(ticket.tags.all())) == ("pending", agent, [])
