"""A reply from the ticket page reaches the requester through the broker and a real worker."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from opsdesk.celery import app
from support.models import TicketComment
from tests import builders
from tests.support.ticket_pages import submit

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_reply_is_emailed_by_the_worker(client, agent, customer):
    ticket = builders.ticket(
        customer=customer, subject="Cannot log in", requester_email="pat@acme.com"
    )
    client.force_login(agent)
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        submit(client, ticket, "reply", body="Reset your SSO session, then sign in again.")
        deadline = time.monotonic() + 30
        while not mail.outbox and time.monotonic() < deadline:
            time.sleep(0.1)
    [email] = mail.outbox
    assert email.to == ["pat@acme.com"]
    assert email.body == "Reset your SSO session, then sign in again."
    reply = TicketComment.objects.get()
    assert reply.sent_at is not None
    assert reply.history.latest().history_actor == "task:reply_send"
