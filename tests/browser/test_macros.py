"""A support agent writes a macro in a real browser (its unknown placeholder refused with
its name, then saved) and applies it to a ticket from its preview: the reply and the
changes shown are what the ticket then has, in one history entry naming the macro."""

import datetime as dt

import pytest
from django.utils import timezone

from audit.context import acting_as
from support.models import Macro, Ticket
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ticket(customer):
    with acting_as("test:fixture"):
        return builders.ticket(
            customer=customer,
            subject="Invoice <b>twice</b> this month",
            message="We were charged twice for November.",
            requester_name="Pat Doe",
            requester_email="pat@acme.com",
            first_response_due_at=timezone.now() + dt.timedelta(hours=8),
        )


def test_an_agent_writes_a_macro_and_applies_it_from_its_preview(
    live_server, page, screenshot, agent, ticket, monkeypatch
):
    monkeypatch.setattr("kit.publish._publish", lambda name, args: None)
    sign_in(page, live_server, agent.username, PASSWORD)

    # Write it: the sidebar's "Macros", then "Add".
    page.goto(f"{live_server.url}/admin/support/macro/add/")
    page.get_by_label("Name").fill("Billing: charged twice")
    page.get_by_label("Reply").fill(
        "Hi {requester_name},\n\nsorry about the double charge at {customer_name}; "
        "our billing desk has it now.\n\n{agent}"
    )
    page.get_by_label("Status").select_option("pending")
    page.get_by_label("Priority").select_option("high")
    page.get_by_label("Queue").fill("billing")
    page.get_by_label("Assign", exact=True).select_option("me")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    refused = page.get_by_text("Unknown placeholder {customer_name}. Allowed:")
    assert refused.is_visible()
    screenshot("macro-refused")
    assert not Macro.objects.exists()

    reply = page.get_by_label("Reply")
    reply.fill(reply.input_value().replace("{customer_name}", "{customer}"))
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    assert page.url.endswith("/admin/support/macro/")
    macro = Macro.objects.get()
    assert (macro.set_status, macro.set_priority, macro.assign) == ("pending", "high", "me")
    screenshot("macro-list")

    # Apply it on the ticket: choose it under the composer, preview, apply.
    page.goto(f"{live_server.url}/admin/support/ticket/{ticket.pk}/change/")
    page.get_by_label("Apply macro").select_option(label="Billing: charged twice")
    with page.expect_navigation():
        page.get_by_test_id("macro-preview").click()
    shown = page.get_by_test_id("macro-reply").locator(".od-macro-reply").inner_text()
    assert "Hi Pat Doe,\n\nsorry about the double charge at Acme Corp;" in shown
    assert page.get_by_role(
        "heading", name="Apply “Billing: charged twice”", exact=True
    ).is_visible()
    crumb = f"#{ticket.pk} Invoice <b>twice</b> this month"  # from outside: shown as text
    assert page.get_by_role("link", name=crumb).is_visible()
    rows = page.get_by_test_id("macro-change")
    assert [rows.nth(n).inner_text().split("\t") for n in range(rows.count())] == [
        ["Priority", "Normal", "High"],
        ["Assignee", "nobody", "Sam"],
        ["Queue", "none", "billing"],
        ["Status", "Open", "Waiting on customer"],
    ]
    screenshot("macro-preview")
    page.set_viewport_size({"width": 390, "height": 900})
    screenshot("macro-preview-narrow")
    page.set_viewport_size({"width": 1440, "height": 1000})
    history = ticket.history.count()

    with page.expect_navigation():
        page.get_by_test_id("macro-apply").click()

    assert page.url.endswith(f"/admin/support/ticket/{ticket.pk}/change/#conversation")
    said = page.get_by_text("“Billing: charged twice” applied.")
    assert said.is_visible()
    assert "Reply recorded; it is being sent to pat@acme.com." in said.inner_text()
    assert page.get_by_test_id("ticket-status").inner_text() == "WAITING ON CUSTOMER"
    assert (
        page.get_by_test_id("comment-reply")
        .last.get_by_text("sorry about the double charge at Acme Corp")
        .is_visible()
    )
    screenshot("macro-applied")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.queue, ticket.assignee) == (
        Ticket.Status.PENDING,
        Ticket.Priority.HIGH,
        "billing",
        agent,
    )
    # As typed in the browser's textarea (CRLF), as the composer keeps a reply.
    assert ticket.comments.get().body.replace("\r\n", "\n") == shown
    assert ticket.history.count() == history + 1
    assert ticket.history.first().history_change_reason == "macro: Billing: charged twice"
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{live_server.url}/admin/support/ticket/{ticket.pk}/change/#composer")
    screenshot("macro-ticket-narrow")


def test_an_agent_without_the_entitlement_permission_sees_the_workflow_and_cannot_apply_it(
    live_server, page, screenshot, agent, ticket
):
    with acting_as("test:fixture"):
        seat = builders.entitlement(
            customer=ticket.customer,
            product=builders.product(sku="SEAT-PRO-1Y", name="Pro seat, 1 year"),
            code="7T3W-GQRW-TS2H",
            state="assigned",
            assignee_email="pat@acme.com",
        )
        macro = builders.macro(
            name="Reissue code",
            reply="Hi {requester_name}, your new code is {new_code}.",
            workflow=Macro.Workflow.REISSUE_CODE,
        )
    sign_in(page, live_server, agent.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/support/ticket/{ticket.pk}/macro/?macro={macro.pk}")

    assert page.get_by_test_id("macro-new-code").inner_text() == "new code"
    steps = page.get_by_test_id("macro-workflow").get_by_role("listitem")
    assert steps.first.inner_text() == (
        "Revoke 7T3W-GQRW-TS2H (Pro seat, 1 year, assigned, pat@acme.com): the code stops working."
    )
    assert (
        page.get_by_test_id("macro-blocked")
        .inner_text()
        .startswith(
            "You may not revoke and reissue codes (it needs the permission "
            "customers.change_entitlement)"
        )
    )
    assert page.get_by_test_id("macro-apply").count() == 0
    screenshot("macro-workflow-refused")
    seat.refresh_from_db()
    assert seat.state == "assigned"
