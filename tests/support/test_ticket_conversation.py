"""The ticket page as a conversation: the thread read-only and in order, one form whose
composer sends a reply or a note with the triage changes and a status in one submit
(``support.tickets.ticket_update``), a refusal that keeps everything typed, and the next
ticket of my queue after a submit."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from audit.context import acting_as, acting_as_user
from kit import roles
from support import sla, tickets
from support.models import EmailAttachment, InboundEmail, Tag, Ticket
from support.selectors import ticket_next_in_queue, ticket_thread
from tests import builders
from tests.pages import messages_of
from tests.personas import staff_user
from tests.publishing import publish_thread_done
from tests.sla_policies import business_hours, first_response
from tests.support.ticket_pages import make_ticket, page, submit, textarea, ticket_form

pytestmark = pytest.mark.django_db

QUEUE = "/admin/support/ticket/queue/"


def stored(ticket: Ticket) -> tuple:
    ticket.refresh_from_db()
    return (
        ticket.status,
        ticket.priority,
        ticket.assignee_id,
        ticket.category,
        ticket.queue,
        sorted(ticket.tags.values_list("name", flat=True)),
        ticket.first_response_due_at,
        ticket.first_responded_at,
        list(ticket.comments.values_list("kind", "body")),
    )


@pytest.fixture
def published(monkeypatch):
    sent = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: sent.append((name, args)))
    return sent


def link_to(ticket: Ticket) -> str:
    return f'On <a class="od-message-link" href="{page(ticket)}">#{ticket.pk}</a>: '


# --- One submit --------------------------------------------------------------------------


def test_a_reply_with_a_triage_change_and_mark_waiting_is_one_submit(
    client, agent, customer, published, django_capture_on_commit_callbacks
):
    client.force_login(agent)
    ticket = make_ticket(customer=customer, next_response_due_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        response = submit(
            client, ticket, "reply_pending", body="  Reset your SSO session.  ", priority="high"
        )
    publish_thread_done()

    [reply] = ticket.comments.all()
    ticket.refresh_from_db()
    assert (reply.kind, reply.body, reply.author, reply.sent_to) == (
        "reply",
        "Reset your SSO session.",
        agent,
        "pat@acme.com",
    )
    assert (ticket.status, ticket.priority) == ("pending", "high")
    # The high priority's deadline (4 business hours from the opening), the clocks the
    # reply stops; waiting on the customer pauses the resolution.
    assert ticket.first_response_due_at == sla.business_deadline(
        ticket.created_at, first_response("high"), business_hours()
    )
    assert ticket.first_responded_at == reply.created_at
    assert ticket.next_response_due_at is None
    assert (ticket.sla_due_at, ticket.sla_paused_at) == (None, ticket.history.latest().history_date)
    assert published == [("support.reply_send", [reply.pk])]
    assert response["Location"] == QUEUE
    assert messages_of(response) == [
        link_to(ticket) + "“Cannot log in” now has priority high. Reply recorded; it is being "
        "sent to pat@acme.com. “Cannot log in” is now waiting on customer.",
        "Your queue is clear.",
    ]


def test_send_and_solve_solves_the_ticket(client, agent, published):
    client.force_login(agent)
    ticket = make_ticket()

    submit(client, ticket, "reply_solved", body="Fixed in 4.2.")

    ticket.refresh_from_db()
    assert ticket.status == "solved"
    assert list(ticket.comments.values_list("kind", "body")) == [("reply", "Fixed in 4.2.")]


def test_an_internal_note_is_recorded_and_not_sent(client, agent, published):
    client.force_login(agent)
    ticket = make_ticket()

    response = submit(client, ticket, "note", body="Checked the logs.", then_next=False)

    [note] = ticket.comments.all()
    assert (note.kind, note.body, note.author, note.sent_to) == (
        "note",
        "Checked the logs.",
        agent,
        "",
    )
    ticket.refresh_from_db()
    assert (ticket.status, ticket.first_responded_at) == ("open", None)
    assert published == [] and mail.outbox == []
    assert response["Location"] == page(ticket) + "#conversation"
    assert messages_of(response) == [link_to(ticket) + "Internal note added."]


def test_save_applies_the_triage_through_the_services_and_sends_nothing(client, agent):
    client.force_login(agent)
    with acting_as("test:fixture"):
        vip, billing = Tag.objects.create(name="vip"), Tag.objects.create(name="billing")
    ticket = make_ticket(tags=[billing])

    response = submit(
        client,
        ticket,
        "save",
        status="pending",
        priority="urgent",
        assignee=agent.pk,
        tags=[vip.pk],
        category="access",
        queue="  tier-2\r\n ",
        then_next=False,
    )

    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.assignee, ticket.category, ticket.queue) == (
        "pending",
        "urgent",
        agent,
        "access",
        "tier-2",
    )
    assert list(ticket.tags.values_list("name", flat=True)) == ["vip"]
    # Waiting on the customer: the unanswered first response is paused, no deadline.
    assert (ticket.first_response_due_at, ticket.sla_due_at) == (None, None)
    assert ticket.sla_paused_at is not None
    assert not ticket.comments.exists()
    assert messages_of(response) == [
        link_to(ticket) + "“Cannot log in” is now waiting on customer. “Cannot log in” now "
        "has priority urgent. “Cannot log in” is now assigned to Sam. “Cannot log in” is "
        "tagged vip. “Cannot log in” is no longer tagged billing. “Cannot log in” now has "
        "category access and queue “tier-2”."
    ]
    # Each change is the service's, as its own history row, by Sam.
    assert ticket.history.latest().history_actor == "sam"


def test_a_field_someone_changed_since_the_page_loaded_is_kept(client, agent, manager):
    client.force_login(agent)
    ticket = make_ticket()
    shown = ticket_form(client.get(page(ticket)))
    with acting_as_user(agent):  # meanwhile, in the queue
        tickets.ticket_set_priority(ticket=ticket, priority="urgent", by=agent)
        tickets.ticket_set_status(ticket=ticket, status="pending", by=agent)

    client.post(page(ticket), {**shown, "send": "save", "assignee": agent.pk})

    ticket.refresh_from_db()
    assert (ticket.priority, ticket.status, ticket.assignee) == ("urgent", "pending", agent)


def test_nothing_changed_says_so(client, agent):
    client.force_login(agent)
    ticket = make_ticket()
    before = stored(ticket)

    response = submit(client, ticket, "save", then_next=False)

    assert stored(ticket) == before
    assert messages_of(response) == [link_to(ticket) + "nothing was changed."]


def test_save_with_text_in_the_composer_keeps_the_text_for_later(client, agent, published):
    client.force_login(agent)
    ticket = make_ticket()

    response = submit(client, ticket, "save", body="Half a reply", priority="low")

    assert response["Location"] == page(ticket) + "#composer"
    assert messages_of(response)[-1] == "Your text is still in the composer: it was not sent."
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.comments.count(), published) == ("low", 0, [])
    assert textarea(client.get(page(ticket))) == "Half a reply"
    assert textarea(client.get(page(ticket))) == ""  # handed back once


def test_pressing_enter_in_a_field_saves_and_never_sends(client, agent):
    """The form's first button (the one Enter presses) is Save."""
    client.force_login(agent)
    body = client.get(page(make_ticket())).content.decode()
    form = body[body.index('id="ticket_form"') :]
    first_button = form[form.index("<button") : form.index("</button>")]
    assert 'name="send" value="save"' in first_button


# --- Refusals keep everything typed ------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "send", "typed", "said"),
    [
        (
            {},
            "reply_pending",
            {"body": "   ", "priority": "urgent", "queue": "tier-2"},
            "Write something first: the reply is empty.",
        ),
        (
            {},
            "note",
            {"body": "", "priority": "urgent", "queue": "tier-2"},
            "Write something first: the note is empty.",
        ),
        (  # refused by the service, after the priority was applied: rolled back
            {"requester_email": ""},
            "reply",
            {"body": "Hello there", "priority": "urgent", "queue": "tier-2"},
            "This ticket has no requester email, so a reply can't reach anyone; add an "
            "internal note instead.",
        ),
        (
            {},
            "reply",
            {"body": "Hello there", "priority": "extreme", "queue": "tier-2"},
            "Priority: Select a valid choice. extreme is not one of the available choices.",
        ),
        (
            {},
            "shout",
            {"body": "Hello there", "priority": "urgent", "queue": "tier-2"},
            "Send: Select a valid choice. shout is not one of the available choices.",
        ),
    ],
)
def test_a_refused_submit_saves_nothing_and_keeps_everything_typed(
    client, agent, published, fields, send, typed, said
):
    client.force_login(agent)
    ticket = make_ticket(**fields)
    before = stored(ticket)
    history = ticket.history.count()

    response = submit(client, ticket, send, **typed)

    assert response.status_code == 200
    assert stored(ticket) == before and ticket.history.count() == history
    assert published == []
    text = html.unescape(response.content.decode())
    errors = text[text.index('data-testid="form-errors"') :]
    assert errors.index("Not saved or sent.") < errors.index(said) < errors.index("</ul>")
    # The header shows the ticket as it is, not as typed.
    assert 'data-testid="ticket-priority">Normal</span>' in text
    shown = ticket_form(response)
    assert textarea(response) == typed["body"]
    assert shown["queue"] == ["tier-2"]
    if typed["priority"] in Ticket.Priority.values:  # a list shows only what it offers
        assert shown["priority"] == [typed["priority"]]
    # What the page first showed is still what a next try compares with.
    assert shown["initial-priority"] == ["normal"]


def test_after_a_service_refusal_the_next_try_applies_what_was_typed(client, agent, published):
    client.force_login(agent)
    ticket = make_ticket(requester_email="")
    refused = submit(client, ticket, "reply", body="Hello there", priority="urgent")

    again = ticket_form(refused)
    again["send"] = ["note"]
    client.post(page(ticket), again)

    ticket.refresh_from_db()
    assert ticket.priority == "urgent"
    assert list(ticket.comments.values_list("kind", "body")) == [("note", "Hello there")]


def test_the_requesters_words_are_not_form_fields(client, agent):
    client.force_login(agent)
    ticket = make_ticket(message="The export hangs.")
    shown = ticket_form(client.get(page(ticket)))
    assert not {"subject", "message", "requester_name", "requester_email"} & set(shown)

    client.post(
        page(ticket),
        {
            **shown,
            "send": "save",
            "subject": "Changed",
            "message": "Changed",
            "requester_email": "x@y.z",
        },
    )

    ticket.refresh_from_db()
    assert (ticket.subject, ticket.message, ticket.requester_email) == (
        "Cannot log in",
        "The export hangs.",
        "pat@acme.com",
    )


def test_who_may_only_view_tickets_sees_the_thread_and_no_form(client, ops_lead, agent):
    client.force_login(ops_lead)
    ticket = make_ticket(message="The export hangs.")
    builders.comment(ticket=ticket, kind="note", author=agent, body="Known bug.")

    response = client.get(page(ticket))

    text = response.content.decode()
    for shown in ("The export hangs.", "Known bug.", "<dt>Priority</dt><dd>Normal</dd>"):
        assert shown in text
    for hidden in ('data-testid="composer"', 'name="priority"', 'name="body"', "<select"):
        assert hidden not in text
    assert client.post(page(ticket), {"send": "note", "body": "x"}).status_code == 403
    assert ticket.comments.count() == 1


# --- The next ticket -----------------------------------------------------------------------


def test_the_next_ticket_is_mine_then_unassigned_in_the_queues_order(agent):
    now = timezone.now()
    current = make_ticket("Current", assignee=agent)
    rita = staff_user("rita", roles.SUPPORT)
    make_ticket("Someone else's", assignee=rita, first_response_due_at=now)
    make_ticket("Mine, waiting on the customer", assignee=agent, status="pending")
    make_ticket("Mine, solved", assignee=agent, status="solved")
    unassigned = make_ticket("Unassigned, due first", first_response_due_at=now)
    later = make_ticket("Mine, due later", assignee=agent)
    sooner = make_ticket("Mine, due sooner", assignee=agent, first_response_due_at=now)

    order = []
    after = current
    while (following := ticket_next_in_queue(user=agent, after=after)) is not None:
        order.append(following.subject)
        with acting_as("test:fixture"):  # worked: the one after it comes next
            after.status = "solved"
            after.save()
        after = following
    assert order == [sooner.subject, later.subject, unassigned.subject]


def test_after_a_submit_the_next_ticket_of_my_queue_opens(client, agent, published):
    client.force_login(agent)
    ticket = make_ticket(assignee=agent)
    following = make_ticket("Export stuck")

    response = submit(client, ticket, "reply_solved", body="Done.")

    assert response["Location"] == page(following)
    assert messages_of(response)[0].startswith(link_to(ticket))


def test_staying_on_the_ticket_is_remembered(client, agent, published):
    client.force_login(agent)
    ticket = make_ticket()
    make_ticket("Export stuck")

    stayed = submit(client, ticket, "note", body="First look.", then_next=False)
    assert stayed["Location"] == page(ticket) + "#conversation"
    assert "then_next" not in ticket_form(client.get(page(ticket)))  # unticked now

    moved = submit(client, ticket, "note", body="Second look.", then_next="on")
    assert moved["Location"] != page(ticket) + "#conversation"
    assert ticket_form(client.get(page(ticket)))["then_next"] == ["on"]


# --- The thread ----------------------------------------------------------------------------


@pytest.fixture
def conversation(agent, customer):
    """A ticket Pat opened by hand, answered by email with a file, a reply, a note, an
    out-of-office auto-reply and a bounce, each a minute apart."""
    start = timezone.now() - dt.timedelta(hours=1)
    ticket = make_ticket(
        customer=customer, message="Export <b>hangs</b>\nsince Monday.", created_at=start
    )
    with acting_as("test:fixture"):
        answer = builders.customer_message(
            ticket=ticket,
            body="<script>alert(1)</script>\nStill broken.",
            created_at=start + dt.timedelta(minutes=1),
        )
        answer.inbound.from_name = "Pat Doe"
        answer.inbound.save()
        EmailAttachment.objects.create(
            inbound=answer.inbound,
            filename="trace <1>.txt",
            content_type="text/plain",
            size=2048,
            content=b"x" * 2048,
        )
        EmailAttachment.objects.create(
            inbound=answer.inbound,
            filename="video.mp4",
            content_type="video/mp4",
            size=50 * 1024 * 1024,
            refused="over the 10 MB limit",
        )
        builders.reply(
            ticket=ticket,
            author=agent,
            body="Try again?",
            created_at=start + dt.timedelta(minutes=2),
        )
        builders.comment(
            ticket=ticket,
            kind="note",
            author=agent,
            body="Engineering knows.",
            created_at=start + dt.timedelta(minutes=3),
        )
        for minutes, kind, subject in [(4, "auto_reply", "Out of office"), (5, "bounce", "")]:
            builders.inbound_email(
                ticket=ticket,
                kind=kind,
                subject=subject or "Undelivered Mail Returned to Sender",
                sender="mailer-daemon@acme.com" if kind == "bounce" else "pat@acme.com",
                status=InboundEmail.Status.PROCESSED,
                received_at=start + dt.timedelta(minutes=minutes),
            )
    return ticket


def entries(text: str) -> list[str]:
    """The testids of the conversation's entries, in page order."""
    thread = text[text.index('data-testid="conversation"') :]
    thread = thread[: thread.index("</section>")]
    return [
        part.split('"', 1)[0]
        for part in thread.split('data-testid="')[1:]
        if part.startswith(("entry-", "comment-"))
    ]


def test_the_thread_shows_every_entry_in_order(client, agent, conversation):
    client.force_login(agent)

    text = client.get(page(conversation)).content.decode()

    assert entries(text) == [
        "entry-request",
        "comment-customer",
        "comment-reply",
        "comment-note",
        "entry-auto_reply",
        "entry-bounce",
    ]
    assert "Internal note — only staff see this" in text
    assert "Automatic reply from pat@acme.com: “Out of office”" in text
    assert "Bounce from mailer-daemon@acme.com" in text
    customer = conversation.comments.get(kind="customer")
    assert f'id="c{customer.pk}"' in text and 'id="request"' in text


def test_what_customers_wrote_is_text_never_markup(client, agent, conversation):
    client.force_login(agent)

    text = client.get(page(conversation)).content.decode()

    assert "Export &lt;b&gt;hangs&lt;/b&gt;<br>since Monday." in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>Still broken." in text
    assert "<script>alert(1)" not in text and "<b>hangs" not in text
    assert 'Pat Doe</strong> <span class="od-meta">&lt;pat@acme.com&gt;</span>' in text


def test_attachments_are_listed_with_their_size_and_never_shown_inline(client, agent, conversation):
    client.force_login(agent)
    inbound = conversation.comments.get(kind="customer").inbound
    kept = inbound.attachments.get(refused="")

    text = client.get(page(conversation)).content.decode()

    files = text[text.index('data-testid="attachments"') :]
    files = files[: files.index("</ul>")]
    assert "trace &lt;1&gt;.txt" in files and "2.0\xa0KB" in files
    assert "video.mp4 (50.0\xa0MB) — not kept: over the 10 MB limit" in files
    assert "<img" not in files and "<iframe" not in files
    try:
        download = reverse("admin:support_inboundemail_attachment", args=[inbound.pk, kept.pk])
        original = reverse("admin:support_inboundemail_original", args=[inbound.pk])
    except NoReverseMatch:  # the inbound admin's downloads are not there yet
        return
    assert f'<a href="{download}" title="text/plain" download>' in files
    assert f'href="{original}" data-testid="original"' in text


def test_a_ticket_opened_by_email_shows_its_first_message_once(client, agent):
    client.force_login(agent)
    ticket = make_ticket(message="Export hangs.")
    with acting_as("test:fixture"):
        first = builders.customer_message(ticket=ticket, body="Export hangs.")
        first.inbound.matched_by = InboundEmail.MatchedBy.NEW_TICKET
        first.inbound.save()

    text = client.get(page(ticket)).content.decode()

    assert entries(text) == ["comment-customer"]
    assert text.count("Export hangs.") == 1


def test_a_thread_of_many_entries_costs_the_same_queries_as_one(client, agent, conversation):
    client.force_login(agent)
    short = make_ticket(customer=conversation.customer)
    with acting_as("test:fixture"):
        builders.customer_message(ticket=short)
        for _ in range(3):
            answer = builders.customer_message(ticket=conversation)
            EmailAttachment.objects.create(
                inbound=answer.inbound, filename="a.txt", content_type="text/plain", size=1
            )
            builders.reply(ticket=conversation, author=agent)
            builders.comment(ticket=conversation, kind="note", author=agent)
            builders.inbound_email(ticket=conversation, kind="auto_reply")

    def count(ticket):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(page(ticket)).status_code == 200
        return len(captured)

    client.get(page(short))  # warm per-process caches
    # The ticket page's 17 (test_ticket_page.py) and the attachments of customer messages.
    assert count(short) == count(conversation) == 18


def test_the_thread_reads_no_raw_message_nor_file_content(conversation, django_assert_num_queries):
    with CaptureQueriesContext(connection) as captured:
        thread = ticket_thread(ticket=conversation)
    assert len(captured) == 3
    assert len(thread) == 6
    sql = " ".join(query["sql"] for query in captured)
    assert '"raw"' not in sql and '"content"' not in sql


# --- The service ---------------------------------------------------------------------------


def test_ticket_update_is_all_or_nothing(agent):
    ticket = make_ticket(requester_email="")
    before = stored(ticket)

    with acting_as_user(agent), pytest.raises(tickets.TicketActionError):
        tickets.ticket_update(
            ticket=ticket,
            by=agent,
            changes={"priority": "urgent", "assignee": agent},
            comment_kind="reply",
            body="Hello",
        )

    assert stored(ticket) == before


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"changes": {"subject": "x"}}, "subject can't be changed here."),
        ({"changes": {"category": "gossip"}}, "“gossip” is not a category."),
        ({"comment_kind": "customer", "body": "x"}, "“customer” is neither a note nor a reply."),
        ({"then_status": "gone"}, "“gone” is not a status."),
    ],
)
def test_ticket_update_refuses_what_it_does_not_do(agent, kwargs, said):
    ticket = make_ticket()
    before = stored(ticket)

    with acting_as_user(agent), pytest.raises(tickets.TicketActionError) as refused:
        tickets.ticket_update(ticket=ticket, by=agent, **kwargs)

    assert str(refused.value) == said
    assert stored(ticket) == before


@pytest.mark.parametrize("persona", ["manager", "ops_lead", "outsider"])
def test_ticket_update_refuses_who_may_not_work_tickets(request, persona):
    user = request.getfixturevalue(persona)
    ticket = make_ticket()
    before = stored(ticket)

    with acting_as_user(user), pytest.raises(tickets.TicketPermissionError):
        tickets.ticket_update(
            ticket=ticket, by=user, changes={"priority": "urgent"}, comment_kind="note", body="x"
        )

    assert stored(ticket) == before
