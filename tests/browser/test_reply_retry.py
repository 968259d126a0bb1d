"""A support agent sees a reply that could not be sent, and why, and sends it again."""

import datetime as dt

import pytest
from django.utils import timezone

from audit.context import acting_as
from support.models import TicketComment
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_retries_a_parked_reply_from_the_ticket_page(
    live_server, page, screenshot, agent, customer, monkeypatch
):
    published = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: published.append((name, args)))
    with acting_as("test:fixture"):
        ticket = builders.ticket(
            customer=customer,
            subject="Export stuck\r\nsince this morning",
            requester_email="pat@acme.com",
        )
        reply = TicketComment.objects.create(
            ticket=ticket,
            kind="reply",
            body="We are on it; a fix ships today.",
            author=agent,
            sent_to="pat@acme.com",
            delivery_attempts=9,
            last_attempt_at=timezone.now() - dt.timedelta(minutes=3),
            failed_at=timezone.now() - dt.timedelta(minutes=3),
            delivery_error="SMTPRecipientsRefused: {'pat@acme.com': (550, b'5.1.1 No such user')}",
        )

    sign_in(page, live_server, agent.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/support/ticket/{ticket.pk}/change/")
    parked = page.get_by_test_id("reply-parked")
    assert parked.is_visible()
    assert page.get_by_test_id("reply-state").inner_text() == "not sent"
    assert page.get_by_test_id("reply-error").inner_text() == (
        "SMTPRecipientsRefused: {'pat@acme.com': (550, b'5.1.1 No such user')}"
    )
    parked.scroll_into_view_if_needed()
    screenshot("ticket-parked-reply")

    with page.expect_navigation():
        parked.get_by_role("button", name="Retry").click()
    assert page.get_by_text(
        "The reply is queued again; it is being sent to pat@acme.com."
    ).is_visible()
    assert page.get_by_test_id("reply-parked").count() == 0
    assert page.get_by_test_id("comment-reply").get_by_text("sending…").is_visible()
    screenshot("ticket-reply-retried")
    assert published == [("support.reply_send", [reply.pk])]
