"""Emailing a notification as its person chose: at once (a task, retried with backoff),
in their roll-up, or not at all; every attempt recorded on the row."""

from __future__ import annotations

import datetime as dt
import smtplib

import pytest
import time_machine
from django.test import TestCase
from django.utils import timezone

from kit import notify
from kit.notify import StaffNotice
from opsdesk.models import Notification, NotificationPreference
from opsdesk.notifications import delivery, tasks
from opsdesk.notifications.delivery import MAX_ATTEMPTS, DeliveryDeferred
from opsdesk.notifications.services import notice_record, notification_preference_set

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def tell(user, kind=notify.TICKET_ASSIGNED, key="test:1", **fields) -> Notification:
    values = {
        "kind": kind,
        "recipients": (user.pk,),
        "subject": "Ticket #7 assigned to Sam: Export stuck",
        "text": "Assigned by Olga.",
        "url": "/admin/support/ticket/7/change/",
        "dedupe_key": key,
        **fields,
    }
    with TestCase.captureOnCommitCallbacks(execute=True):  # as if it committed
        [row] = notice_record(notice=StaffNotice(**values))
    return row


def state(row: Notification) -> tuple:
    row.refresh_from_db()
    return row.status, row.attempts, row.error, row.sent_at is not None


def test_without_preferences_every_kind_is_emailed_at_once(agent, published):
    assert NotificationPreference._meta.get_field("ticket_assigned").default == "immediately"
    for n, (kind, _) in enumerate(notify.KINDS):
        assert tell(agent, kind=kind, key=f"k{n}").status == "pending"
    assert [name for name, _ in published] == ["opsdesk.notification_send"] * 5


def test_each_kind_has_its_preference():
    fields = {f.name for f in NotificationPreference._meta.get_fields()}
    assert fields >= notify.KIND_NAMES


def test_at_once_the_task_emails_it_with_the_subject_and_text_templates(
    agent, published, mailoutbox, settings
):
    settings.OPSDESK_BASE_URL = "https://ops.example.com"
    row = tell(agent)

    tasks.notification_send.apply(args=[row.pk])

    [email] = mailoutbox
    assert email.subject == "Ticket #7 assigned to Sam: Export stuck"
    assert email.to == ["sam@opsdesk.test"]
    assert email.extra_headers["Message-ID"] == f"<notification-{row.pk}@opsdesk>"
    assert email.extra_headers["Auto-Submitted"] == "auto-generated"
    assert email.body == (
        "Ticket #7 assigned to Sam: Export stuck\n\n"
        "Assigned by Olga.\n\n"
        "https://ops.example.com/admin/support/ticket/7/change/\n\n"
        "--\n"
        "You are emailed at once when: a ticket is assigned to me.\n"
        "Choose what you are emailed about, and when: "
        "https://ops.example.com/admin/opsdesk/notification/preferences/\n"
    )
    assert state(row) == ("sent", 1, "", True)
    tasks.notification_send.apply(args=[row.pk])  # a second task does nothing
    assert len(mailoutbox) == 1


def test_off_keeps_the_notification_and_never_emails_it(agent, published, mailoutbox):
    notification_preference_set(user=agent, ticket_assigned="off")
    row = tell(agent)

    assert published == []
    tasks.notification_send.apply(args=[row.pk])
    with time_machine.travel(timezone.now() + dt.timedelta(days=2)):
        assert tasks.notification_rollups_send.apply().result == 0
        assert tasks.notifications_sweep.apply().result == 0
    assert mailoutbox == []
    assert state(row) == ("off", 0, "", False)


def test_a_preference_is_per_kind(agent, published):
    notification_preference_set(user=agent, customer_replied="rollup", case_assigned="off")
    statuses = [
        tell(agent, kind=kind, key=kind).status
        for kind in (notify.TICKET_ASSIGNED, notify.CUSTOMER_REPLIED, notify.CASE_ASSIGNED)
    ]
    assert statuses == ["pending", "rollup", "off"]


def test_a_failure_that_may_pass_is_retried_and_the_next_attempt_sends(
    agent, published, mail_server, mailoutbox
):
    row = tell(agent)
    mail_server.errors = [smtplib.SMTPServerDisconnected("gone"), TimeoutError("timed out")]

    with pytest.raises(DeliveryDeferred):
        delivery.notification_send(notification_id=row.pk)
    assert state(row) == ("pending", 1, "SMTPServerDisconnected: gone", False)

    tasks.notification_send.apply(args=[row.pk])  # eager: its retries run at once

    assert len(mail_server.tried) == 3 and len(mailoutbox) == 1
    assert state(row) == ("sent", 3, "", True)


def test_the_task_retries_with_backoff_and_parks_the_row_after_the_bound(
    agent, published, mail_server, mailoutbox
):
    assert tasks.notification_send.autoretry_for == (DeliveryDeferred,)
    assert (tasks.notification_send.retry_backoff, tasks.notification_send.retry_backoff_max) == (
        30,
        1800,
    )
    assert tasks.notification_send.max_retries == MAX_ATTEMPTS - 1 == 7
    row = tell(agent)
    mail_server.errors = [smtplib.SMTPServerDisconnected("gone")] * 20

    tasks.notification_send.apply(args=[row.pk])

    assert len(mail_server.tried) == MAX_ATTEMPTS
    assert state(row) == ("failed", MAX_ATTEMPTS, "SMTPServerDisconnected: gone", False)
    assert mailoutbox == []


def test_a_person_without_an_email_address_is_parked_at_once(agent, published, mail_server):
    agent.email = ""
    agent.save()
    row = tell(agent)

    assert delivery.notification_send(notification_id=row.pk) is False

    assert state(row) == ("failed", 1, "DeliveryRefused: Sam has no email address.", False)
    assert mail_server.tried == []


def test_the_sweep_queues_a_notification_whose_queueing_or_retries_were_lost(
    agent, published, mail_server, monkeypatch
):
    queued = []
    monkeypatch.setattr(tasks.notification_send, "delay", queued.append)
    with time_machine.travel(NOW, tick=False):
        lost = tell(agent, key="lost")
        retried = tell(agent, key="retried")
        mail_server.errors = [smtplib.SMTPServerDisconnected("gone")]
        with pytest.raises(DeliveryDeferred):
            delivery.notification_send(notification_id=retried.pk)
    with time_machine.travel(NOW + dt.timedelta(minutes=1), tick=False):
        assert tasks.notifications_sweep.apply().result == 0  # its task may still come
    with time_machine.travel(NOW + dt.timedelta(minutes=3), tick=False):
        assert tasks.notifications_sweep.apply().result == 1  # queued, never tried
    with time_machine.travel(NOW + dt.timedelta(minutes=80), tick=False):
        assert tasks.notifications_sweep.apply().result == 2  # the retry is lost too
    assert queued == [lost.pk, lost.pk, retried.pk]


def test_beat_sends_the_roll_ups_every_minute_and_sweeps_every_five(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["send-notification-rollups"] == {
        "task": "opsdesk.notification_rollups_send",
        "schedule": 60,
        "options": {"expires": 55},
    }
    assert schedule["sweep-notifications"] == {
        "task": "opsdesk.notifications_sweep",
        "schedule": 300,
        "options": {"expires": 240},
    }
