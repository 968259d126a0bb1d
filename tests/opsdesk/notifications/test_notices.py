"""Telling staff (kit.notify): told after commit, never raised into the caller, stored
once per recipient, and exactly once however many senders tell the same notice."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction
from django.test import TestCase

from kit import notify, roles
from kit.notify import StaffNotice, notice_after_commit
from opsdesk.models import Notification
from opsdesk.notifications import delivery
from opsdesk.notifications.services import notice_record
from tests.concurrency import at_once
from tests.personas import staff_user
from tests.publishing import publish_thread_done

pytestmark = pytest.mark.django_db

SEND = "opsdesk.notification_send"


def notice(recipients, key="test:1", **fields) -> StaffNotice:
    values = {
        "kind": notify.TICKET_ASSIGNED,
        "recipients": recipients,
        "subject": "Ticket #7 assigned to Sam: Export stuck",
        "text": "Assigned by Olga.",
        "url": "/admin/support/ticket/7/change/",
        "dedupe_key": key,
        **fields,
    }
    return StaffNotice(**values)


def rows() -> list[tuple]:
    return list(
        Notification.objects.order_by("recipient__username").values_list(
            "recipient__username", "kind", "subject", "url", "team", "status"
        )
    )


def test_a_notice_is_told_when_the_transaction_commits(
    agent, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        notice_after_commit(notice((agent.pk,)))
        assert not Notification.objects.exists()  # not before the commit
    assert len(callbacks) >= 1
    assert rows() == [
        (
            "sam",
            "ticket_assigned",
            "Ticket #7 assigned to Sam: Export stuck",
            "/admin/support/ticket/7/change/",
            "",
            "pending",
        )
    ]
    row = Notification.objects.get()
    assert published == [(SEND, [row.pk])]
    assert {h.history_actor for h in row.history.all()} == {"notice:ticket_assigned"}


def test_a_rolled_back_transaction_tells_nothing(
    agent, published, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        notice_after_commit(notice((agent.pk,)))
        raise RuntimeError("the work failed")
    assert rows() == []
    assert published == []


def test_a_notice_that_cannot_be_told_is_logged_and_never_raised(
    agent, caplog, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr("opsdesk.notifications.services.notice_record", broken)
    with caplog.at_level(logging.ERROR, logger="kit.notify"):
        notice_after_commit(notice((agent.pk,), kind="no_such_kind"))
        with django_capture_on_commit_callbacks(execute=True):
            notice_after_commit(notice((agent.pk,)))
    told = [r for r in caplog.records if r.name == "kit.notify"]
    assert [r.getMessage()[:26] for r in told] == [
        "staff notice not sent: Sta",
        "staff notice test:1 failed",
    ]
    assert rows() == []


def test_a_team_notice_tells_every_active_staff_member_of_the_group(
    agent, ops_lead, published, django_capture_on_commit_callbacks
):
    staff_user("sue", roles.SUPPORT)
    staff_user("gone", roles.SUPPORT, is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        notice_after_commit(notice(roles.SUPPORT, kind=notify.CUSTOMER_REPLIED))
    assert [(name, team) for name, *_, team, _ in rows()] == [
        ("sam", "Support"),
        ("sue", "Support"),
    ]
    assert len(published) == 2


def test_inactive_and_non_staff_users_and_bad_ids_are_not_told(agent, outsider, published):
    gone = staff_user("gone", roles.SUPPORT, is_active=False)
    made = notice_record(notice=notice((agent.pk, gone.pk, outsider.pk, 99999, "1", True)))
    assert [row.recipient for row in made] == [agent]


def test_a_link_that_is_not_a_path_of_this_site_is_dropped(agent, published):
    for n, url in enumerate(["javascript:alert(1)", "//evil.example/x", "https://evil.example/"]):
        notice_record(notice=notice((agent.pk,), key=f"test:{n}", url=url))
    assert set(Notification.objects.values_list("url", flat=True)) == {""}


def test_the_same_notice_again_tells_nobody_twice(agent, ops_lead, published):
    with TestCase.captureOnCommitCallbacks(execute=True):
        first = notice_record(notice=notice((agent.pk,)))
        again = notice_record(notice=notice((agent.pk, ops_lead.pk)))
    assert [row.recipient for row in first] == [agent]
    assert [row.recipient for row in again] == [ops_lead]  # only the one not told yet
    assert Notification.objects.count() == 2
    assert [args for _, args in published] == [[first[0].pk], [again[0].pk]]


def test_a_very_long_dedupe_key_stays_unique_and_fits(agent, published):
    long_a, long_b = "k" * 300 + "a", "k" * 300 + "b"
    notice_record(notice=notice((agent.pk,), key=long_a))
    notice_record(notice=notice((agent.pk,), key=long_b))
    notice_record(notice=notice((agent.pk,), key=long_a))
    keys = list(Notification.objects.values_list("dedupe_key", flat=True))
    assert len(keys) == 2 and all(len(key) == 200 for key in keys)


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_store_and_email_the_notice_exactly_once(
    agent, ops_lead, published, mailoutbox
):
    """Two schedulers (or a retry and its original) tell the same notice at the same
    moment: one row per person, one email each."""

    def send(i):
        with transaction.atomic():
            made = notice_record(notice=notice(roles.SUPPORT if i else (agent.pk, ops_lead.pk)))
        return [row.recipient.username for row in made]

    results = at_once(2, send)
    publish_thread_done()

    assert sorted(name for made in results for name in made) == ["olga", "sam"]
    assert sorted(Notification.objects.values_list("recipient__username", "status")) == [
        ("olga", "pending"),
        ("sam", "pending"),
    ]
    assert len(published) == 2
    # Two workers given both sends at once (a task and the sweep): one email each.
    sends = at_once(
        2, lambda i: [delivery.notification_send(notification_id=pk) for _, (pk,) in published]
    )
    assert sorted(sent for worker in sends for sent in worker) == [False, False, True, True]
    assert sorted(email.to[0] for email in mailoutbox) == ["olga@opsdesk.test", "sam@opsdesk.test"]
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 1)}
