"""The whole email conversation through real parts (docs/contracts/email.md): support
replies in the browser, a real Celery worker sends it over SMTP to a real server, and the
requester's answers come back through a real IMAP server (Dovecot) and through the signed
webhook, each landing on the ticket once; an auto-reply changes nothing."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import parseaddr

import pytest
from celery.contrib.testing.worker import start_worker

from audit.context import acting_as
from opsdesk.celery import app
from support import tickets
from support.email_thread import ticket_id_from_address
from support.models import InboundEmail, Ticket, TicketComment
from support.tasks import imap_poll
from tests import builders
from tests.browser.session import sign_in
from tests.live import post, wait_for
from tests.personas import PASSWORD
from tests.support.mail_sender import URL, signature_headers
from tests.support.sender import SECRET

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUPPORT_FROM = "Acme Support <support@acme.example>"
REPLY = "Reset your SSO session, then sign in again."
# A PNG's first bytes: what a pasted screenshot starts with.
SCREENSHOT = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def post_raw(live_server, raw: bytes, webhook_id: str) -> int:
    headers = {**signature_headers(raw, webhook_id=webhook_id), "Content-Type": "message/rfc822"}
    return post(live_server.url + URL, raw, headers)


def gmail_answer(sent: EmailMessage) -> bytes:
    """Gmail's answer to ``sent``: to its Reply-To, threaded on its Message-ID, the text
    above the quoted original and a signature, with a screenshot attached."""
    answer = EmailMessage()
    answer["From"] = "Jane Doe <jane@globex.example>"
    answer["To"] = sent["Reply-To"]
    answer["Subject"] = f"Re: {sent['Subject']}"
    answer["Message-ID"] = "<CAJ8d2+gmail-answer@mail.gmail.com>"
    answer["In-Reply-To"] = sent["Message-ID"]
    answer["References"] = sent["Message-ID"]
    answer["Date"] = "Sat, 5 Dec 2026 10:02:11 +0100"
    quoted = "\n".join(f"> {line}" for line in REPLY.splitlines())
    answer.set_content(
        "That worked, thank you!\n\n"
        "-- \nJane Doe | Globex IT\n\n"
        "On Sat, Dec 5, 2026 at 10:00 AM Acme Support <support@acme.example> wrote:\n"
        f"{quoted}\n"
    )
    answer.add_attachment(SCREENSHOT, maintype="image", subtype="png", filename="after.png")
    return answer.as_bytes()


def outlook_html_answer(sent: EmailMessage) -> bytes:
    """Outlook on the web, HTML only: the answer above a "From: ... Sent: ..." block,
    threaded by References alone and sent to the plain support address."""
    answer = EmailMessage()
    answer["From"] = "Jane Doe <jane@globex.example>"
    answer["To"] = "Acme Support <support@acme.example>"
    answer["Subject"] = f"RE: {sent['Subject']}"
    answer["Message-ID"] = "<AM0PR01MB1234.outlook-answer@AM0PR01MB1234.eurprd01.prod.outlook.com>"
    answer["References"] = sent["Message-ID"]
    answer["Thread-Index"] = "AQHbRzQ2xYc1n8tW0Uyq7k9Jh3mF2A=="
    answer.set_content(
        "<html><body><div>Now the <b>second</b> export is slow.</div>"
        "<script>alert(1)</script>"
        '<hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg">'
        "<b>From:</b> Acme Support &lt;support@acme.example&gt;<br>"
        "<b>Sent:</b> Saturday, December 5, 2026 10:00 AM<br>"
        "<b>To:</b> Jane Doe &lt;jane@globex.example&gt;<br>"
        f"<b>Subject:</b> {sent['Subject']}</div><div>{REPLY}</div></body></html>",
        subtype="html",
    )
    return answer.as_bytes()


def out_of_office(sent: EmailMessage) -> bytes:
    answer = EmailMessage()
    answer["From"] = "Jane Doe <jane@globex.example>"
    answer["To"] = sent["Reply-To"]
    answer["Subject"] = f"Automatic reply: {sent['Subject']}"
    answer["Message-ID"] = "<ooo-1@globex.example>"
    answer["In-Reply-To"] = sent["Message-ID"]
    answer["Auto-Submitted"] = "auto-replied"
    answer.set_content("I am out of the office until Monday.")
    return answer.as_bytes()


def test_a_reply_from_the_ticket_page_is_answered_by_email_through_imap_and_the_webhook(
    live_server, page, screenshot, settings, agent, customer, smtp_catcher, imap_mailbox
):
    settings.OPSDESK_SUPPORT_FROM = SUPPORT_FROM
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]
    settings.OPSDESK_IMAP_URL = imap_mailbox.url()
    with acting_as("test:fixture"):
        ticket = builders.ticket(
            customer=customer,
            subject="Cannot log in",
            message="The SSO page loops.",
            requester_email="jane@globex.example",
            requester_name="Jane Doe",
        )

    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        # Support answers in the browser and waits on the customer.
        sign_in(page, live_server, agent.username, PASSWORD)
        page.goto(f"{live_server.url}/admin/support/ticket/{ticket.pk}/change/")
        page.fill("textarea[name=body]", REPLY)
        with page.expect_navigation():
            page.get_by_role("button", name="Send and mark waiting").click()

        # The worker delivers it to the SMTP server with the contract's headers.
        [delivered] = smtp_catcher.wait_for(1, timeout=30)
        sent = delivered.message
        assert delivered.rcpt_tos == ["jane@globex.example"]
        assert sent["Subject"] == f"Re: Cannot log in [#{ticket.pk}]"
        assert ticket_id_from_address(parseaddr(sent["Reply-To"])[1]) == ticket.pk
        reply = TicketComment.objects.get(ticket=ticket, kind=TicketComment.Kind.REPLY)
        assert sent["Message-ID"] == reply.message_id
        ticket.refresh_from_db()
        assert ticket.status == Ticket.Status.PENDING

        # Jane answers from Gmail; the scheduler's poll fetches it from the IMAP server.
        uid = imap_mailbox.append(gmail_answer(sent))
        imap_poll.delay()
        assert wait_for(
            lambda: TicketComment.objects.filter(
                ticket=ticket, kind=TicketComment.Kind.CUSTOMER
            ).exists()
        )
        assert wait_for(lambda: imap_mailbox.is_seen(uid))
        [answer] = TicketComment.objects.filter(ticket=ticket, kind=TicketComment.Kind.CUSTOMER)
        assert answer.body == "That worked, thank you!"
        assert answer.sender == "jane@globex.example"
        assert answer.inbound.matched_by == InboundEmail.MatchedBy.ADDRESS
        [attachment] = answer.inbound.attachments.all()
        assert (attachment.filename, attachment.size) == ("after.png", len(SCREENSHOT))
        assert bytes(attachment.content) == SCREENSHOT
        ticket.refresh_from_db()
        assert ticket.status == Ticket.Status.OPEN
        assert ticket.next_response_due_at is not None

        # Then from Outlook on the web, HTML only, pushed by the mail provider's webhook;
        # the same message delivered again, and by IMAP too, is stored once.
        outlook = outlook_html_answer(sent)
        assert post_raw(live_server, outlook, "msg_outlook_1") == 202
        assert post_raw(live_server, outlook, "msg_outlook_1") == 200
        assert post_raw(live_server, outlook, "msg_outlook_2") == 200
        imap_mailbox.append(outlook)
        imap_poll.delay()
        assert wait_for(
            lambda: (
                TicketComment.objects.filter(
                    ticket=ticket, kind=TicketComment.Kind.CUSTOMER
                ).count()
                == 2
            )
        )
        assert wait_for(lambda: imap_mailbox.unseen() == [])
        second = TicketComment.objects.filter(ticket=ticket, kind="customer").latest("pk")
        assert second.body == "Now the second export is slow."
        assert second.inbound.matched_by == InboundEmail.MatchedBy.THREAD
        assert InboundEmail.objects.filter(message_id__contains="outlook-answer").count() == 1

        # Support solves it; Jane's out-of-office answers and changes nothing.
        with acting_as("test:fixture"):
            tickets.ticket_set_status(ticket=ticket, status=Ticket.Status.SOLVED, by=None)
        assert post_raw(live_server, out_of_office(sent), "msg_ooo") == 202
        assert wait_for(
            lambda: InboundEmail.objects.filter(
                delivery_id="msg_ooo", status=InboundEmail.Status.PROCESSED
            ).exists()
        )

    ooo = InboundEmail.objects.get(delivery_id="msg_ooo")
    assert (ooo.kind, ooo.ticket_id) == (InboundEmail.Kind.AUTO_REPLY, ticket.pk)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.SOLVED
    assert TicketComment.objects.filter(ticket=ticket, kind="customer").count() == 2
    to_jane = [m for m in smtp_catcher.messages if m.rcpt_tos == ["jane@globex.example"]]
    assert len(to_jane) == 1  # nothing answered the answers
    # Support was told of each of Jane's two answers (staff notifications), by email.
    assert wait_for(
        lambda: (
            [m.rcpt_tos for m in smtp_catcher.messages if m not in to_jane] == [[agent.email]] * 2
        )
    )

    # The conversation as support reads it.
    page.goto(f"{live_server.url}/admin/support/ticket/{ticket.pk}/change/")
    thread = page.get_by_test_id("conversation")
    assert thread.get_by_text("That worked, thank you!").is_visible()
    assert thread.get_by_text("Now the second export is slow.").is_visible()
    assert thread.get_by_role("link", name="after.png").is_visible()
    assert page.locator("script", has_text="alert(1)").count() == 0
    screenshot("ticket-email-conversation")
