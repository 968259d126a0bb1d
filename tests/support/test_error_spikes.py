"""incident.error_spike: one open ticket per (tenant, fingerprint); later spikes add to it."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from support.models import Ticket
from support.webhooks import event_process, event_receive
from tests.support.sender import SECRET, signed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


def spike(
    webhook_id, *, fingerprint="E-TIMEOUT", rate=0.12, at="2026-11-21T09:30:00Z", tenant="acme-7f3a"
):
    payload = {
        "type": "incident.error_spike",
        "timestamp": at,
        "data": {
            "tenant_id": tenant,
            "fingerprint": fingerprint,
            "error_rate": rate,
            "window_minutes": 5,
            "sample_message": "TimeoutError: upstream took 30s",
        },
    }
    body, headers = signed(payload, webhook_id=webhook_id)
    event = event_receive(body=body, headers=headers).event
    assert event_process(event_id=event.pk) == "processed"


def test_the_first_spike_opens_a_ticket(customer):
    spike("msg_1")
    ticket = Ticket.objects.get()
    assert ticket.customer == customer
    assert (ticket.subject, ticket.category, ticket.priority, ticket.status) == (
        "Error spike: E-TIMEOUT",
        "incident",
        "high",
        "open",
    )
    assert ticket.message == "TimeoutError: upstream took 30s"
    assert (ticket.tenant_id, ticket.fingerprint, ticket.occurrence_count) == (
        "acme-7f3a",
        "E-TIMEOUT",
        1,
    )
    assert ticket.latest_error_rate == 0.12
    assert ticket.last_seen_at == dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)


def test_later_spikes_add_to_the_open_ticket(customer):
    spike("msg_1")
    spike("msg_2", rate=0.31, at="2026-11-21T10:05:00Z")
    spike("msg_3", rate=0.08, at="2026-11-21T09:50:00Z")  # arrives late
    ticket = Ticket.objects.get()
    assert ticket.occurrence_count == 3
    assert ticket.latest_error_rate == 0.08
    assert ticket.last_seen_at == dt.datetime(2026, 11, 21, 10, 5, tzinfo=dt.UTC)
    assert [h.history_actor for h in ticket.history.order_by("history_id")] == [
        "webhook:msg_1",
        "webhook:msg_2",
        "webhook:msg_3",
    ]


def test_another_fingerprint_or_tenant_gets_its_own_ticket(customer):
    spike("msg_1")
    spike("msg_2", fingerprint="E-OOM")
    spike("msg_3", tenant="other-tenant")
    assert sorted(Ticket.objects.values_list("tenant_id", "fingerprint")) == [
        ("acme-7f3a", "E-OOM"),
        ("acme-7f3a", "E-TIMEOUT"),
        ("other-tenant", "E-TIMEOUT"),
    ]
    unknown = Ticket.objects.get(tenant_id="other-tenant")
    assert unknown.customer is None
    assert [tag.name for tag in unknown.tags.all()] == ["unmatched"]


def test_a_spike_after_the_ticket_was_solved_opens_a_new_one(customer):
    spike("msg_1")
    solved = Ticket.objects.get()
    solved.status = Ticket.Status.SOLVED
    solved.save()
    spike("msg_2")
    assert Ticket.objects.count() == 2
    solved.refresh_from_db()
    assert solved.occurrence_count == 1


def test_the_database_refuses_a_second_open_ticket_for_one_fingerprint(customer):
    spike("msg_1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.create(subject="dup", tenant_id="acme-7f3a", fingerprint="E-TIMEOUT")
