"""The ticket page: the customer's context beside the ticket, and the replies sent from it
(the conversation and its form: test_ticket_conversation.py)."""

from __future__ import annotations

import datetime as dt
import smtplib

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.context import acting_as
from customers.models import UsageDaily
from support import tasks
from support.models import Case, Ticket, TicketComment
from support.selectors import ticket_context
from support.tasks import replies_sweep
from support.tickets import ReplySendDeferred, reply_send
from tests import builders
from tests.publishing import publish_thread_done
from tests.records import grow, populate
from tests.support.ticket_pages import make_ticket, page, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_world(customer):
    """Acme with entitlements in every state, two days of usage, older tickets and cases."""
    with acting_as("test:fixture"):
        product = builders.product(sku="SEAT", name="Seat")
        states = ["issued", "assigned", "assigned", "redeemed", "revoked", "expired"]
        for n, state in enumerate(states):
            # Redeemed and revoked now, as the builder does.
            builders.entitlement(
                customer=customer,
                product=product,
                code=f"CODE-{n}",
                state=state,
                assignee_email="" if state == "issued" else f"user{n}@acme.com",
                redeemed_by_email=f"user{n}@acme.com" if state == "redeemed" else "",
                revoke_reason="left the company" if state == "revoked" else "",
            )
        for day, wau, errors in [(20, 31, 0), (21, 34, 12)]:
            UsageDaily.objects.create(
                customer=customer,
                date=dt.date(2026, 11, day),
                active_users_1d=10,
                active_users_7d=wau,
                last_login_at=dt.datetime(2026, 11, day, 9, 30, tzinfo=dt.UTC),
                requests=400,
                errors=errors,
            )
        for n in range(7):
            builders.ticket(
                customer=customer,
                subject=f"older {n}",
                created_at=timezone.now() - dt.timedelta(days=10 - n),
            )
        for n, state in enumerate(["open", "acknowledged", "resolved"]):
            builders.case(
                kind=Case.Kind.MISSING_INVOICE,
                customer=customer,
                summary=f"case {n}",
                state=state,
                closing_note="fixed" if state == "resolved" else "",
            )
    return customer


def test_the_context_reads_the_customers_whole_state(acme_world, manager):
    ticket = make_ticket(customer=acme_world)

    context = ticket_context(ticket=ticket, today=dt.date(2026, 11, 22))

    assert context.customer == acme_world
    assert context.customer.account_manager == manager
    assert (context.contract.plan, context.contract.status) == ("growth", "active")
    assert context.days_to_end == 39
    assert (context.entitlements_in_use, context.entitlements_issued) == (3, 1)
    assert context.seats_over == 0
    assert context.usage.date == dt.date(2026, 11, 21)
    assert context.usage.error_rate == pytest.approx(0.03)
    assert [t.subject for t in context.recent_tickets] == [f"older {n}" for n in (6, 5, 4, 3, 2)]
    assert [c.summary for c in context.open_cases] == ["case 0", "case 1"]
    assert context.open_case_count == 2


def test_the_ticket_page_shows_the_context_beside_the_ticket(client, agent, acme_world):
    client.force_login(agent)
    ticket = make_ticket(customer=acme_world)

    html = client.get(page(ticket)).content.decode()

    aside = html[html.index('data-testid="ticket-context"') :]
    for text in [
        "Acme Corp",
        "acme-7f3a",
        'Alice · <a href="mailto:alice@opsdesk.test">',
        "Growth",
        "31 Dec 2026",
        "50 contracted · 3 assigned to people",
        "1 issued, unassigned",
        '34 <span class="od-meta">of 50 contracted seats</span></dd>',
        "21 Nov 2026 09:30",
        "3.0%",
        "older 6",
        "case 1",
    ]:
        assert text in aside, text
    assert "older 1" not in aside  # only the last five


def test_a_ticket_from_an_unknown_tenant_says_how_to_link_it(client, agent):
    client.force_login(agent)
    ticket = make_ticket(tenant_id="ghost-42")
    html = client.get(page(ticket)).content.decode()
    assert 'No customer has the tenant id <span class="od-mono">ghost-42</span>' in html


def test_the_ticket_page_costs_the_same_for_a_small_and_a_big_customer(client, agent):
    client.force_login(agent)
    [small, big] = populate(2)
    grow(big, times=6)
    quiet = make_ticket(customer=small)
    busy = make_ticket(customer=big)
    with acting_as("test:fixture"):
        for n in range(4):
            TicketComment.objects.create(ticket=busy, kind="note", body=f"n{n}", author=agent)

    def count(ticket):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(page(ticket)).status_code == 200
        return len(captured)

    client.get(page(quiet))  # warm per-process caches
    # 17, with the form's assignee list, its customer choice and the macros it offers; a
    # thread with customer messages adds their attachments (test_ticket_conversation.py).
    assert count(quiet) == count(busy) == 17


def test_the_context_takes_six_queries(django_assert_num_queries, acme_world):
    ticket = Ticket.objects.select_related("customer__account_manager").get(
        pk=make_ticket(customer=acme_world).pk
    )
    with django_assert_num_queries(6):
        ticket_context(ticket=ticket)


def test_a_reply_is_recorded_stops_the_clock_and_is_emailed_after_commit(
    client, agent, customer, django_capture_on_commit_callbacks, monkeypatch
):
    client.force_login(agent)
    ticket = make_ticket(customer=customer)
    published = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: published.append((name, args)))

    with django_capture_on_commit_callbacks(execute=True):
        submit(client, ticket, "reply", body="Try resetting SSO.")
    publish_thread_done()  # the publish thread is done

    [reply] = ticket.comments.all()
    ticket.refresh_from_db()
    assert ticket.first_responded_at == reply.created_at
    assert reply.sent_to == "pat@acme.com"
    assert published == [("support.reply_send", [reply.pk])]

    tasks.reply_send.apply(args=[reply.pk])
    [email] = mail.outbox
    assert (email.to, email.subject, email.body) == (
        ["pat@acme.com"],
        f"Re: Cannot log in [#{ticket.pk}]",
        "Try resetting SSO.",
    )
    reply.refresh_from_db()
    assert reply.sent_at is not None


def test_a_second_reply_keeps_the_first_response_time(client, agent, customer):
    client.force_login(agent)
    ticket = make_ticket(customer=customer)
    submit(client, ticket, "reply", body="one")
    ticket.refresh_from_db()
    first = ticket.first_responded_at
    submit(client, ticket, "reply", body="two")
    ticket.refresh_from_db()
    assert ticket.first_responded_at == first
    assert ticket.comments.count() == 2


def test_a_reply_is_sent_once_however_often_the_task_runs(agent, customer):
    ticket = make_ticket(customer=customer)
    with acting_as("test:fixture"):
        reply = TicketComment.objects.create(
            ticket=ticket, kind="reply", body="hi", author=agent, sent_to="pat@acme.com"
        )
    assert reply_send(comment_id=reply.pk) is True
    assert reply_send(comment_id=reply.pk) is False
    assert len(mail.outbox) == 1


def test_a_mail_server_error_leaves_the_reply_for_the_sweep(agent, customer, monkeypatch):
    ticket = make_ticket(customer=customer)
    with acting_as("test:fixture"):
        reply = TicketComment.objects.create(
            ticket=ticket,
            kind="reply",
            body="hi",
            author=agent,
            sent_to="pat@acme.com",
            created_at=timezone.now() - dt.timedelta(minutes=5),
        )

    def refuse(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("gone")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refuse)
    with pytest.raises(ReplySendDeferred):  # the task retries it with backoff
        reply_send(comment_id=reply.pk)
    reply.refresh_from_db()
    assert reply.sent_at is None

    monkeypatch.undo()
    queued = []
    monkeypatch.setattr(tasks.reply_send, "delay", queued.append)
    with time_machine.travel(timezone.now() + dt.timedelta(hours=2)):  # its retries were lost
        assert replies_sweep.apply().result == 1
    assert queued == [reply.pk]
    tasks.reply_send.apply(args=[reply.pk])
    reply.refresh_from_db()
    assert reply.sent_at is not None
    assert [m.to for m in mail.outbox] == [["pat@acme.com"]]
