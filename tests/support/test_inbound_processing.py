"""Stored inbound email is processed by the worker exactly once, retried with backoff when
its effect fails and parked as failed after the last attempt (docs/contracts/email.md:
"processed by the worker, with retries")."""

import datetime as dt
import threading

import pytest
import time_machine

from support import inbound, tasks
from support.inbound import (
    InboundPermissionError,
    inbound_due,
    inbound_process,
    inbound_retry,
    inbound_store,
)
from support.models import InboundEmail, Tag, Ticket, TicketComment
from tests import builders
from tests.concurrency import at_once
from tests.support.mail_sender import message, push
from tests.support.sender import SECRET

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _attempts(settings):
    settings.OPSDESK_WEBHOOK_MAX_ATTEMPTS = 3


class Effect:
    """Stands in for support.inbound_effects.inbound_apply: records its calls and does
    what a test tells it (``self.then``), by default what the real one does to a
    message for an existing ticket: a conversation entry's worth of writes, the match."""

    def __init__(self):
        self.calls: list[int] = []
        self.then = self.match
        self.ticket = None

    def __call__(self, *, inbound):
        self.calls.append(inbound.pk)
        self.then(inbound)

    def match(self, inbound):
        inbound.kind = InboundEmail.Kind.MESSAGE
        inbound.ticket = self.ticket
        inbound.matched_by = InboundEmail.MatchedBy.ADDRESS
        inbound.warning = "attachment too large"


@pytest.fixture
def effect(monkeypatch):
    effect = Effect()
    effect.ticket = builders.ticket()
    monkeypatch.setattr(inbound, "inbound_apply", effect)
    return effect


def stored(**fields) -> InboundEmail:
    raw = message(**fields)
    return inbound_store(source="webhook", delivery_id=f"msg_{len(raw)}", raw=raw).inbound


def test_a_stored_message_is_processed_once_and_keeps_what_its_effect_found(effect):
    email = stored()

    assert inbound_process(inbound_id=email.pk) == "processed"
    assert inbound_process(inbound_id=email.pk) is None

    assert effect.calls == [email.pk]
    email.refresh_from_db()
    assert (
        email.status,
        email.attempts,
        email.error,
        email.next_attempt_at,
        email.kind,
        email.ticket,
        email.matched_by,
        email.warning,
    ) == ("processed", 1, "", None, "message", effect.ticket, "address", "attachment too large")
    assert email.processed_at is not None
    assert bytes(email.raw) == message()
    latest = email.history.latest()
    assert (latest.history_actor, latest.status, latest.ticket_id) == (
        f"email:{email.delivery_id}",
        "processed",
        effect.ticket.pk,
    )


def test_a_rejected_message_is_never_processed(effect):
    email = inbound_store(source="webhook", delivery_id="msg_1", raw=b"not an email").inbound

    assert inbound_due() == []
    assert inbound_process(inbound_id=email.pk) is None
    assert effect.calls == []


def test_a_failing_effect_leaves_nothing_behind_and_is_retried_with_backoff_then_parked(effect):
    def explode(email):
        Tag.objects.create(name="half-done")  # a write its failure must undo
        email.kind = InboundEmail.Kind.MESSAGE
        email.ticket = Ticket.objects.create(subject="Made, then undone", requester_email="x@y.z")
        email.matched_by = InboundEmail.MatchedBy.NEW_TICKET
        raise RuntimeError("database of tickets unavailable")

    effect.then = explode
    with time_machine.travel(NOW, tick=False):
        email = stored()
        assert inbound_process(inbound_id=email.pk) == "pending"
        email.refresh_from_db()
        assert (email.attempts, email.error, email.next_attempt_at) == (
            1,
            "RuntimeError: database of tickets unavailable",
            NOW + dt.timedelta(seconds=30),
        )
        # Neither its writes nor what it set on the message survive.
        assert (email.kind, email.ticket, email.matched_by) == ("", None, "")
        assert not Tag.objects.filter(name="half-done").exists()
        assert Ticket.objects.filter(subject="Made, then undone").count() == 0
        assert inbound_process(inbound_id=email.pk) is None  # not due yet
        assert inbound_due() == []
    with time_machine.travel(NOW + dt.timedelta(minutes=1), tick=False):
        assert inbound_due() == [email.pk]
        assert inbound_process(inbound_id=email.pk) == "pending"
        email.refresh_from_db()
        assert email.next_attempt_at == NOW + dt.timedelta(minutes=3)  # 2 min later
    with time_machine.travel(NOW + dt.timedelta(minutes=5), tick=False):
        assert inbound_process(inbound_id=email.pk) == "failed"
    email.refresh_from_db()
    assert (email.status, email.attempts, email.next_attempt_at) == ("failed", 3, None)
    assert len(effect.calls) == 3
    assert inbound_due() == []


def test_a_failed_message_is_retried_by_a_person_who_may_change_inbound_email(
    effect, agent, monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr(inbound.INBOUND_PUBLISHER, "add", published.append)
    email = builders.inbound_email(status="failed", attempts=3, error="RuntimeError: down")

    with django_capture_on_commit_callbacks(execute=True):
        assert inbound_retry(inbound=email, by=agent, actor_reason="retry requested") is True

    email.refresh_from_db()
    assert (email.status, email.next_attempt_at is not None) == ("pending", True)
    assert email.history.latest().history_change_reason == "retry requested"
    assert published == [email.pk]
    assert inbound_process(inbound_id=email.pk) == "processed"
    assert inbound_retry(inbound=email, by=agent) is False  # only failed messages retry


def test_someone_who_may_not_change_inbound_email_cannot_retry_it(effect, manager):
    email = builders.inbound_email(status="failed", attempts=3, error="RuntimeError: down")

    with pytest.raises(InboundPermissionError):
        inbound_retry(inbound=email, by=manager)

    email.refresh_from_db()
    assert (email.status, email.next_attempt_at) == ("failed", None)


def test_the_process_task_takes_a_batch_and_the_sweep_what_is_due(effect):
    first, second = stored(message_id="<a@x>"), stored(message_id="<b@x>", subject="Other")

    tasks.inbound_process.apply(args=[[first.pk]])
    assert effect.calls == [first.pk]

    assert tasks.inbound_sweep.apply().get() == 1
    assert effect.calls == [first.pk, second.pk]
    assert tasks.inbound_sweep.apply().get() == 0


def test_beat_sweeps_inbound_email(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-inbound-email"]
    assert entry["task"] == tasks.inbound_sweep.name == "support.inbound_sweep"
    assert tasks.inbound_process.name == inbound.INBOUND_PUBLISHER.task_name


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_process_a_message_once(effect):
    def slow(email):
        threading.Event().wait(0.3)  # hold the claim while the other worker looks
        effect.match(email)

    effect.then = slow
    email = stored()

    results = at_once(2, lambda i: inbound_process(inbound_id=email.pk))

    assert sorted(results, key=str) == [None, "processed"]
    assert effect.calls == [email.pk]


def test_a_pushed_message_becomes_one_conversation_entry_however_often_it_is_processed(
    client, settings
):
    """End to end with the real effect (support.inbound_effects): intake, the worker's
    task twice, the sweep; one ticket, one entry."""
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]
    assert push(client, message(), webhook_id="msg_1").status_code == 202
    email = InboundEmail.objects.get()

    tasks.inbound_process.apply(args=[[email.pk, email.pk]])
    assert tasks.inbound_sweep.apply().get() == 0

    email.refresh_from_db()
    assert (email.status, email.attempts, email.kind, email.matched_by) == (
        "processed",
        1,
        "message",
        "new_ticket",
    )
    entry = TicketComment.objects.get()
    assert (entry.kind, entry.inbound, entry.ticket, entry.sender) == (
        "customer",
        email,
        email.ticket,
        "pat@acme.com",
    )
