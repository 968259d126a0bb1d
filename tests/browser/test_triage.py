"""A support agent works the triage queue and a ticket in a real browser."""

import datetime as dt

import pytest
from django.utils import timezone

from audit.context import acting_as
from support.models import Tag, Ticket, TicketComment
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.sla_policies import first_response_clock

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tickets(customer):
    now = timezone.now()
    with acting_as("test:fixture"):
        late = builders.ticket(
            customer=customer,
            subject="Export stuck since this morning",
            requester_email="pat@acme.com",
            priority=Ticket.Priority.HIGH,
            **first_response_clock(now - dt.timedelta(hours=2)),
        )
        builders.ticket(
            subject="Trial question",
            tenant_id="ghost-42",
            requester_email="kim@hooli.com",
            **first_response_clock(now + dt.timedelta(hours=6)),
        )
        # Agents tag with existing tags; making one needs support.add_tag.
        Tag.objects.create(name="needs-engineering")
    return late


def test_an_agent_takes_a_ticket_from_the_queue_and_answers_it(
    live_server, page, screenshot, agent, tickets
):
    sign_in(page, live_server, agent.username, PASSWORD)
    page.get_by_role("link", name="Triage queue").click()
    page.wait_for_load_state("networkidle")

    rows = page.get_by_test_id("queue-row")
    assert rows.count() == 2
    first = rows.nth(0)
    assert first.get_by_text("Export stuck since this morning").is_visible()
    time_left = first.get_by_test_id("time-left")
    assert time_left.inner_text().startswith("first response overdue by 2 h")
    assert time_left.evaluate("el => getComputedStyle(el).color") == "rgb(185, 28, 28)"
    screenshot("triage-queue")

    first.get_by_role("button", name="Assign to me").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("is now assigned to Sam").is_visible()
    # Overdue, it stays first whoever has it.
    assert page.get_by_test_id("queue-row").nth(0).get_by_text("Sam").is_visible()

    row = page.locator(f'[data-ticket="{tickets.pk}"]')
    with page.expect_navigation():  # choosing submits: no second click
        row.get_by_label(f"Priority of #{tickets.pk}").select_option("urgent")
    assert page.get_by_text("now has priority urgent").is_visible()
    row.get_by_label(f"Add a tag to #{tickets.pk}").fill("needs-engineering")
    with page.expect_navigation():
        row.get_by_label(f"Add a tag to #{tickets.pk}").press("Enter")
    assert row.get_by_text("needs-engineering").is_visible()

    row.get_by_role("link", name="Export stuck since this morning").click()
    page.wait_for_load_state("networkidle")
    context = page.get_by_test_id("ticket-context")
    assert context.get_by_role("link", name="Acme Corp").is_visible()
    assert context.get_by_text("Growth").first.is_visible()
    assert context.get_by_text("50 contracted · 0 assigned to people").is_visible()

    page.get_by_placeholder("Write a reply").fill("We are on it; a fix ships today.")
    with page.expect_navigation():
        page.get_by_role("button", name="Send reply", exact=True).click()
    # The next ticket of Sam's queue opens: the unassigned one; the message links back.
    assert page.get_by_test_id("ticket-head").get_by_text("Trial question").is_visible()
    assert page.get_by_text("Reply recorded; it is being sent to pat@acme.com.").is_visible()
    with page.expect_navigation():
        page.get_by_role("link", name=f"#{tickets.pk}").click()
    assert page.get_by_test_id("comment-reply").get_by_text("We are on it").is_visible()
    screenshot("ticket-with-context")

    ticket = Ticket.objects.get(pk=tickets.pk)
    assert (ticket.assignee, ticket.priority) == (agent, "urgent")
    assert ticket.first_responded_at is not None
    assert TicketComment.objects.get().author == agent
