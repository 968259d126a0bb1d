"""A support agent reads a ticket's conversation and answers it from the one composer, in
a real browser: a reply, a triage change and a status in one submit, then the next
ticket of the queue; a refused submit keeps what was typed and chosen."""

import datetime as dt

import pytest
from django.utils import timezone

from audit.context import acting_as
from support.models import EmailAttachment, InboundEmail, Ticket
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def conversation(agent, customer):
    """Pat's ticket, Sam's: Pat's request, an answer by email with a log file, Sam's reply
    and note, Pat's out-of-office; and an unassigned ticket waiting after it."""
    start = timezone.now() - dt.timedelta(hours=3)
    with acting_as("test:fixture"):
        ticket = builders.ticket(
            customer=customer,
            subject="Export stuck since this morning",
            message="The CSV export spins forever.\nWe need it for the board meeting.",
            requester_name="Pat Doe",
            requester_email="pat@acme.com",
            assignee=agent,
            created_at=start,
            first_response_due_at=start + dt.timedelta(hours=8),
        )
        builders.reply(
            ticket=ticket,
            author=agent,
            body="Sorry about that. Which browser do you use?",
            created_at=start + dt.timedelta(minutes=20),
            sent_at=start + dt.timedelta(minutes=20),
        )
        answer = builders.customer_message(
            ticket=ticket,
            body="Chrome 131. <b>Still</b> stuck; the log is attached.\n\n-- sent from my phone",
            created_at=start + dt.timedelta(minutes=50),
        )
        answer.inbound.from_name = "Pat Doe"
        answer.inbound.save()
        EmailAttachment.objects.create(
            inbound=answer.inbound,
            filename="export-log.txt",
            content_type="text/plain",
            size=18_432,
            content=b"x" * 18_432,
        )
        builders.comment(
            ticket=ticket,
            kind="note",
            author=agent,
            body="Same trace as the bug engineering fixed in 4.2; asked them.",
            created_at=start + dt.timedelta(minutes=55),
        )
        builders.inbound_email(
            ticket=ticket,
            kind=InboundEmail.Kind.AUTO_REPLY,
            subject="Out of office until Monday",
            status=InboundEmail.Status.PROCESSED,
            received_at=start + dt.timedelta(minutes=56),
        )
        following = builders.ticket(
            subject="Trial question",
            requester_email="kim@hooli.com",
            first_response_due_at=timezone.now() + dt.timedelta(hours=6),
        )
    return ticket, following


def test_an_agent_replies_raises_the_priority_and_marks_waiting_in_one_submit(
    live_server, page, screenshot, agent, conversation, monkeypatch
):
    monkeypatch.setattr("kit.publish._publish", lambda name, args: None)
    ticket, following = conversation
    sign_in(page, live_server, agent.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/support/ticket/{ticket.pk}/change/")

    thread = page.get_by_test_id("conversation")
    assert thread.get_by_test_id("entry-request").is_visible()
    assert thread.get_by_test_id("comment-customer").get_by_text("<b>Still</b> stuck").is_visible()
    assert thread.get_by_role("link", name="export-log.txt").is_visible()
    assert thread.get_by_text("Internal note — only staff see this").is_visible()
    assert thread.get_by_test_id("entry-auto_reply").is_visible()
    screenshot("ticket-conversation")
    page.emulate_media(color_scheme="dark")  # the admin's theme follows the system's
    page.reload()
    screenshot("ticket-conversation-dark")
    page.emulate_media(color_scheme="light")
    page.reload()

    page.get_by_label("Reply or note").fill("A fix ships tonight; I'll write once it is out.")
    page.get_by_test_id("ticket-triage").get_by_label("Priority").select_option("urgent")
    with page.expect_navigation():
        page.get_by_role("button", name="Send and mark waiting").click()

    # The next ticket of Sam's queue, saying what was done on the one before.
    assert page.url.endswith(f"/admin/support/ticket/{following.pk}/change/")
    assert page.get_by_test_id("ticket-head").get_by_role("heading").inner_text() == (
        f"Trial question #{following.pk}"
    )
    said = page.get_by_text("Reply recorded; it is being sent to pat@acme.com.")
    assert said.is_visible()
    assert "is now waiting on customer" in said.inner_text()
    assert "now has priority urgent" in said.inner_text()
    screenshot("ticket-next-in-queue")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority) == (Ticket.Status.PENDING, Ticket.Priority.URGENT)
    reply = ticket.comments.filter(kind="reply").latest("created_at")
    assert (reply.body, reply.author) == ("A fix ships tonight; I'll write once it is out.", agent)

    with page.expect_navigation():
        page.get_by_role("link", name=f"#{ticket.pk}").click()
    assert page.get_by_test_id("ticket-status").inner_text() == "WAITING ON CUSTOMER"
    assert page.get_by_test_id("comment-reply").last.get_by_text("A fix ships tonight").is_visible()


def test_an_empty_reply_is_refused_and_keeps_the_triage_changes_typed(
    live_server, page, screenshot, agent, conversation, monkeypatch
):
    monkeypatch.setattr("kit.publish._publish", lambda name, args: None)
    ticket, _ = conversation
    sign_in(page, live_server, agent.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/support/ticket/{ticket.pk}/change/")
    triage = page.get_by_test_id("ticket-triage")

    triage.get_by_label("Priority").select_option("high")
    triage.get_by_label("Queue").fill("tier-2")
    with page.expect_navigation():
        page.get_by_role("button", name="Send reply", exact=True).click()

    errors = page.get_by_test_id("form-errors")
    assert errors.get_by_text("Not saved or sent.").is_visible()
    assert errors.get_by_text("Write something first: the reply is empty.").is_visible()
    triage = page.get_by_test_id("ticket-triage")
    assert triage.get_by_label("Priority").input_value() == "high"
    assert triage.get_by_label("Queue").input_value() == "tier-2"
    assert page.get_by_test_id("ticket-priority").inner_text() == "NORMAL"  # as stored
    screenshot("ticket-refused")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.queue, ticket.comments.count()) == ("normal", "", 3)

    page.get_by_label("Reply or note").fill("Fixed in 4.2, rolled out now.")
    with page.expect_navigation():
        page.get_by_role("button", name="Send and solve").click()
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.queue) == ("solved", "high", "tier-2")
