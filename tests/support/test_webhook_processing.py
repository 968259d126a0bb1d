"""Stored events become tickets off the request path, once, whatever happens in between."""

import datetime as dt
import threading

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from support import webhooks
from support.models import Ticket, WebhookEvent
from support.webhooks import event_process, event_receive, event_retry, events_due
from tests.publishing import publish_thread_done
from tests.support.sender import SECRET, signed, support_request

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]
    settings.OPSDESK_WEBHOOK_MAX_ATTEMPTS = 3


def receive(payload, webhook_id="msg_1"):
    body, headers = signed(payload, webhook_id=webhook_id)
    return event_receive(body=body, headers=headers).event


def test_a_support_request_becomes_one_ticket_with_the_customers_context(customer, sla_policies):
    event = receive(support_request())
    assert event_process(event_id=event.pk) == "processed"
    ticket = Ticket.objects.get()
    assert ticket.customer == customer
    assert (ticket.subject, ticket.message, ticket.category, ticket.priority) == (
        "Cannot export CSV",
        "The export button spins forever.",
        "bug",
        "high",
    )
    assert (ticket.requester_email, ticket.requester_name) == ("jo@acme.com", "Jo Doe")
    asked = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
    assert ticket.created_at == asked
    # Growth, high: 4 business hours; asked on a Saturday, due Monday 13:00.
    assert ticket.sla_policy == sla_policies["Growth"]
    assert ticket.first_response_due_at == dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)
    assert list(ticket.tags.all()) == []
    assert ticket.history.earliest().history_actor == "webhook:msg_1"
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == ("processed", 1, "")
    assert event.processed_at is not None


@pytest.mark.parametrize(
    ("severity", "due"),
    [
        # Asked Saturday 21 November 09:30: business hours start Monday 09:00.
        ("urgent", dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)),
        ("high", dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)),
        ("normal", dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC)),
        ("low", dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC)),  # three business days
    ],
)
def test_the_first_response_deadline_follows_the_priority(customer, sla_policies, severity, due):
    event_process(event_id=receive(support_request(severity=severity)).pk)
    ticket = Ticket.objects.get()
    assert ticket.priority == severity
    assert ticket.first_response_due_at == due


def test_an_unknown_tenant_still_gets_a_ticket_tagged_unmatched(db):
    event_process(event_id=receive(support_request(tenant_id="nobody-0000")).pk)
    ticket = Ticket.objects.get()
    assert ticket.customer is None
    assert [tag.name for tag in ticket.tags.all()] == ["unmatched"]


def test_processing_an_event_twice_has_the_effect_of_once(customer):
    event = receive(support_request())
    assert event_process(event_id=event.pk) == "processed"
    assert event_process(event_id=event.pk) is None
    assert Ticket.objects.count() == 1


def test_a_failing_handler_is_retried_with_backoff_then_parked_as_failed(customer, monkeypatch):
    calls = []

    def explode(event, data):
        calls.append(event.pk)
        raise RuntimeError("downstream unavailable")

    monkeypatch.setitem(webhooks._handlers, "incident.error_spike", explode)

    spike = {
        "type": "incident.error_spike",
        "timestamp": "2026-11-21T09:30:00Z",
        "data": {"tenant_id": "acme-7f3a", "fingerprint": "E1", "error_rate": 0.2,
                 "window_minutes": 5},
    }  # fmt: skip
    with time_machine.travel(dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC), tick=False):
        event = receive(spike)
        assert event_process(event_id=event.pk) == "pending"
        event.refresh_from_db()
        assert event.attempts == 1
        assert event.error == "RuntimeError: downstream unavailable"
        assert event.next_attempt_at == dt.datetime(2026, 11, 21, 10, 0, 30, tzinfo=dt.UTC)
        assert event_process(event_id=event.pk) is None  # not due yet
        assert events_due() == []
    with time_machine.travel(dt.datetime(2026, 11, 21, 10, 1, tzinfo=dt.UTC), tick=False):
        assert events_due() == [event.pk]
        assert event_process(event_id=event.pk) == "pending"
        event.refresh_from_db()
        assert event.next_attempt_at == dt.datetime(2026, 11, 21, 10, 3, tzinfo=dt.UTC)  # 2 min
    with time_machine.travel(dt.datetime(2026, 11, 21, 10, 5, tzinfo=dt.UTC), tick=False):
        assert event_process(event_id=event.pk) == "failed"
    event.refresh_from_db()
    assert (event.status, event.attempts, event.next_attempt_at) == ("failed", 3, None)
    assert len(calls) == 3

    assert event_retry(event=event) is True
    event.refresh_from_db()
    assert event.status == "pending"
    assert event.history.latest().history_change_reason == "retry requested"
    assert event_retry(event=event) is False  # only failed events are retried


def test_the_sweep_command_processes_what_is_due_and_says_so(customer, capsys):
    receive(support_request(), webhook_id="msg_a")
    receive(support_request(subject="Second"), webhook_id="msg_b")
    call_command("process_webhooks")
    assert capsys.readouterr().out.strip() == (
        "process_webhooks: 2 processed, 0 to retry later, 0 failed"
    )
    assert Ticket.objects.count() == 2
    call_command("process_webhooks")
    assert Ticket.objects.count() == 2


def test_the_sweep_command_fails_when_an_event_cannot_be_processed(customer, settings, monkeypatch):
    settings.OPSDESK_WEBHOOK_MAX_ATTEMPTS = 1
    monkeypatch.delitem(webhooks._handlers, "entitlement.redeemed")  # as if it had none
    receive(
        {
            "type": "entitlement.redeemed",
            "timestamp": "2026-11-21T09:30:00Z",
            "data": {
                "tenant_id": "acme-7f3a",
                "code": "ABCD-EFGH-JKMN",
                "user_email": "jo@acme.com",
                "redeemed_at": "2026-11-21T09:29:00Z",
            },
        }
    )
    with pytest.raises(CommandError, match="0 processed, 0 to retry later, 1 failed"):
        call_command("process_webhooks")
    event = WebhookEvent.objects.get()
    assert event.status == "failed"
    assert event.error == "LookupError: no handler for entitlement.redeemed events yet"


def test_ops_retry_failed_events_from_the_admin(client, ops_lead, agent):
    failed = receive(support_request(), webhook_id="msg_f")
    failed.status, failed.attempts = "failed", 3
    failed.save()
    done = receive(support_request(), webhook_id="msg_ok")
    url = "/admin/support/webhookevent/"
    form = {"action": "retry_failed", "_selected_action": [failed.pk, done.pk]}

    client.force_login(agent)  # support may look, not retry
    client.post(url, form)
    failed.refresh_from_db()
    assert failed.status == "failed"

    client.force_login(ops_lead)
    response = client.post(url, form, follow=True)
    assert "1 event(s) queued again; 1 skipped" in response.content.decode()
    failed.refresh_from_db()
    assert failed.status == "pending"
    record = failed.history.latest()
    assert (record.history_actor, record.history_change_reason) == (
        "olga",
        "retry requested in the admin",
    )


def test_a_failed_events_page_has_a_one_click_retry(
    client, ops_lead, agent, monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: published.append((name, args)))
    failed = receive(support_request(), webhook_id="msg_f")
    failed.status, failed.attempts, failed.error = "failed", 3, "LookupError: boom"
    failed.save()
    page = f"/admin/support/webhookevent/{failed.pk}/change/"
    retry = f"/admin/support/webhookevent/{failed.pk}/retry/"

    client.force_login(agent)  # support may look, not retry
    assert b'data-testid="event-retry"' not in client.get(page).content
    assert client.post(retry).status_code == 403

    client.force_login(ops_lead)
    html = client.get(page).content.decode()
    assert f'action="{retry}"' in html and "Failed after 3 attempts." in html
    assert client.get(retry).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry, follow=True)
    publish_thread_done()
    assert response.redirect_chain == [(page, 302)]
    assert "Queued again: a worker processes it within seconds." in response.content.decode()
    failed.refresh_from_db()
    assert failed.status == "pending"
    assert published == [("support.events_process", [[failed.pk]])]
    assert b'data-testid="event-retry"' not in response.content  # pending now: no button

    again = client.post(retry, follow=True)
    assert "Not retried: only failed events retry, and this one is pending." in (
        again.content.decode()
    )


def test_events_stored_while_a_publish_is_going_out_travel_in_one_task(monkeypatch):
    from kit import publish
    from support.webhooks import EVENT_PUBLISHER

    published, sending, first_sent = [], threading.Event(), threading.Event()

    def slow_broker(name, args):
        published.append((name, args))
        sending.set()
        first_sent.wait(timeout=5)  # the broker round trip of the first event

    monkeypatch.setattr(publish, "_publish", slow_broker)
    EVENT_PUBLISHER.add(1)
    assert sending.wait(timeout=5)
    for event_id in (2, 3, 4):
        EVENT_PUBLISHER.add(event_id)
    first_sent.set()
    publish_thread_done()

    assert published == [
        ("support.events_process", [[1]]),
        ("support.events_process", [[2, 3, 4]]),
    ]


def test_a_subject_with_line_breaks_becomes_one_line_on_its_ticket(customer):
    """A subject is one line on every page and in every reply's header."""
    event = receive(support_request(subject="Export stuck\r\nsince\u2028this\tmorning"))
    event_process(event_id=event.pk)
    assert Ticket.objects.get().subject == "Export stuck since this morning"
