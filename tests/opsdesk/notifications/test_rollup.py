"""Roll-ups: a person who chose one gets what waited for it in one email, once the oldest
waiting notification has waited their interval; once, however many schedulers run."""

from __future__ import annotations

import datetime as dt
import smtplib

import pytest
import time_machine
from django.test import TestCase

from kit import notify
from kit.notify import StaffNotice
from opsdesk.models import Notification
from opsdesk.notifications import delivery, tasks
from opsdesk.notifications.services import notice_record, notification_preference_set
from tests.concurrency import at_once

pytestmark = pytest.mark.django_db

NINE = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def at(minutes: int):
    return time_machine.travel(NINE + dt.timedelta(minutes=minutes), tick=False)


def tell(user, n: int, kind=notify.CUSTOMER_REPLIED) -> Notification:
    with TestCase.captureOnCommitCallbacks(execute=True):  # as if it committed
        made = notice_record(
            notice=StaffNotice(
                kind=kind,
                recipients=(user.pk,),
                subject=f"Pat replied on ticket #{n}: Export stuck",
                text=f"Message {n}",
                url=f"/admin/support/ticket/{n}/change/",
                dedupe_key=f"test:{n}",
            )
        )
    return made[0]


@pytest.fixture
def rolled_up(agent, ops_lead, settings):
    """Sam rolls up every 30 minutes, Olga at the default (60)."""
    settings.OPSDESK_NOTIFY_ROLLUP_MINUTES = 60
    settings.OPSDESK_BASE_URL = "https://ops.example.com"
    for kind, _ in notify.KINDS:
        notification_preference_set(user=agent, **{kind: "rollup"}, rollup_minutes=30)
        notification_preference_set(user=ops_lead, **{kind: "rollup"})


def test_a_roll_up_groups_what_waited_into_one_email_when_the_oldest_is_due(
    agent, ops_lead, rolled_up, published, mailoutbox
):
    with at(0):
        first = tell(agent, 1)
        tell(ops_lead, 2)
    with at(10):
        tell(agent, 3, kind=notify.SLA_WARNING)
    assert published == []  # nothing is emailed at once
    assert first.due_at == NINE + dt.timedelta(minutes=30)

    with at(29):
        assert tasks.notification_rollups_send.apply().result == 0
    with at(30):
        assert tasks.notification_rollups_send.apply().result == 2  # both of Sam's
        assert tasks.notification_rollups_send.apply().result == 0  # sent once
    with at(45):
        tell(agent, 4)  # waits for Sam's next roll-up, 30 minutes from now

    [email] = mailoutbox
    assert email.to == ["sam@opsdesk.test"]
    assert email.subject == "2 notifications from opsdesk since 23 Nov 2026 09:00 UTC"
    assert email.extra_headers["Message-ID"].startswith("<notification-rollup-")
    assert email.body == (
        "2 notifications since 23 Nov 2026 09:00 UTC, oldest first.\n"
        "\n"
        "* Pat replied on ticket #1: Export stuck\n"
        "  23 Nov 2026 09:00, a customer replies on my ticket\n"
        "  https://ops.example.com/admin/support/ticket/1/change/\n"
        "Message 1\n"
        "\n"
        "* Pat replied on ticket #3: Export stuck\n"
        "  23 Nov 2026 09:10, a ticket of mine is about to miss its target\n"
        "  https://ops.example.com/admin/support/ticket/3/change/\n"
        "Message 3\n"
        "\n"
        "--\n"
        "You chose a roll-up email for these. Choose what you are emailed about, and when:\n"
        "https://ops.example.com/admin/opsdesk/notification/preferences/\n"
    )

    with at(60):
        assert tasks.notification_rollups_send.apply().result == 1  # Olga's, at her 60
    with at(75):
        assert tasks.notification_rollups_send.apply().result == 1  # Sam's fourth
    assert [(m.to[0], m.subject[:15]) for m in mailoutbox[1:]] == [
        ("olga@opsdesk.test", "1 notification "),
        ("sam@opsdesk.test", "1 notification "),
    ]
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert set(Notification.objects.values_list("sent_at", flat=True)) == {
        NINE + dt.timedelta(minutes=m) for m in (30, 60, 75)
    }


def test_a_failed_roll_up_waits_longer_each_time_then_is_parked(
    agent, rolled_up, published, mail_server, mailoutbox
):
    with at(0):
        rows = [tell(agent, 1), tell(agent, 2)]
    mail_server.errors = [smtplib.SMTPServerDisconnected("gone")] * 20
    minute, waits = 30, []
    for _ in range(delivery.MAX_ATTEMPTS):
        with at(minute):
            assert delivery.rollup_send(recipient_id=agent.pk) == 0
        rows[0].refresh_from_db()
        if rows[0].status == "rollup":
            waits.append((rows[0].due_at - NINE).total_seconds() / 60 - minute)
            minute += waits[-1]
    assert waits == [1, 2, 4, 8, 16, 32, 64]
    assert set(Notification.objects.values_list("status", "attempts", "error")) == {
        ("failed", delivery.MAX_ATTEMPTS, "SMTPServerDisconnected: gone")
    }
    assert mailoutbox == []
    with at(minute + 600):
        assert delivery.rollups_due() == []


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_once_send_one_roll_up(agent, rolled_up, published, mailoutbox):
    with at(0):
        for n in range(3):
            tell(agent, n)
    with at(31):
        sent = at_once(2, lambda i: tasks.notification_rollups_send.apply().result)
    assert sorted(sent) == [0, 3]
    assert len(mailoutbox) == 1
    assert Notification.objects.filter(status="sent", attempts=1).count() == 3
