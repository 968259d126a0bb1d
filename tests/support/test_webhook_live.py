"""The receiver against a live server, the real broker and a real Celery worker."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from celery.contrib.testing.worker import start_worker

from opsdesk.celery import app
from support.models import Ticket, WebhookEvent
from support.tasks import events_sweep
from tests.live import post, wait_for
from tests.support.sender import SECRET, URL, signed, support_request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


def deliver(live_server, body, headers) -> int:
    return post(live_server.url + URL, body, {**headers, "Content-Type": "application/json"})


def test_fifty_concurrent_deliveries_of_one_id_make_one_event_and_one_ticket(live_server, customer):
    body, headers = signed(support_request(), webhook_id="msg_same")
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda _: deliver(live_server, body, headers), range(50)))
    assert sorted(statuses) == [200] * 49 + [202]
    assert WebhookEvent.objects.filter(webhook_id="msg_same").count() == 1
    events_sweep.apply()
    assert Ticket.objects.count() == 1


def test_a_real_worker_turns_an_accepted_event_into_a_ticket(live_server, customer):
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        assert deliver(live_server, *signed(support_request(), webhook_id="msg_w")) == 202
        assert wait_for(lambda: Ticket.objects.filter(webhook_event__webhook_id="msg_w").exists())
    event = WebhookEvent.objects.get(webhook_id="msg_w")
    assert event.status == "processed"
    assert event.history.latest().history_actor == "webhook:msg_w"


def test_with_the_broker_down_events_are_accepted_and_processed_once_it_is_back(
    live_server, customer, monkeypatch
):
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    monkeypatch.setattr(app.conf, "broker_url", dead)
    monkeypatch.setattr(app.conf, "broker_write_url", dead)
    for n in range(3):
        assert deliver(live_server, *signed(support_request(), webhook_id=f"msg_d{n}")) == 202
    assert WebhookEvent.objects.filter(status="pending").count() == 3
    assert Ticket.objects.count() == 0
    monkeypatch.undo()
    events_sweep.apply()  # what beat runs every 30 s
    assert WebhookEvent.objects.filter(status="processed").count() == 3
    assert Ticket.objects.count() == 3


def test_a_burst_of_spikes_for_one_fingerprint_makes_one_ticket_with_every_occurrence(customer):
    from support.webhooks import event_process, event_receive

    events = []
    for n in range(8):
        payload = {
            "type": "incident.error_spike",
            "timestamp": "2026-11-21T09:30:00Z",
            "data": {
                "tenant_id": "acme-7f3a",
                "fingerprint": "E-BURST",
                "error_rate": 0.1,
                "window_minutes": 5,
            },
        }
        body, headers = signed(payload, webhook_id=f"msg_burst_{n}")
        events.append(event_receive(body=body, headers=headers).event.pk)

    def process(event_id):
        from django.db import connection

        try:
            return event_process(event_id=event_id)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(process, events))
    assert outcomes == ["processed"] * 8
    assert Ticket.objects.get(fingerprint="E-BURST").occurrence_count == 8
