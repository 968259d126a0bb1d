"""Chat posts: a notice posted once to the team's Slack-compatible incoming webhook (real
HTTP to a local receiver), retried with backoff when it fails, never holding a worker
longer than the timeout (nor the request that caused it: test_triggers), and never
recording the webhook's secret."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group
from django.test import TestCase

from kit import notify, roles
from kit.notify import StaffNotice
from opsdesk.models import ChatPost
from opsdesk.notifications import delivery, tasks
from opsdesk.notifications.delivery import DeliveryDeferred
from opsdesk.notifications.services import notice_record
from tests.personas import staff_user

pytestmark = pytest.mark.django_db


def notice(recipients, key="test:1", subject="Ticket #7 assigned to Sam: Export <stuck> & co"):
    return StaffNotice(
        kind=notify.TICKET_ASSIGNED,
        recipients=recipients,
        subject=subject,
        text="Assigned by Olga.",
        url="/admin/support/ticket/7/change/",
        dedupe_key=key,
    )


def record(notice: StaffNotice) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True):  # as if it committed
        notice_record(notice=notice)


def state(post: ChatPost) -> tuple:
    post.refresh_from_db()
    return post.status, post.attempts, post.error, post.sent_at is not None


def test_a_notice_is_posted_once_as_json_text_with_its_link(agent, chat, published):
    record(notice((agent.pk,)))
    record(notice((agent.pk,)))  # the same notice again: no second post
    post = ChatPost.objects.get()
    assert published[-1] == ("opsdesk.chat_post_send", [post.pk])

    tasks.chat_post_send.apply(args=[post.pk])
    tasks.chat_post_send.apply(args=[post.pk])

    assert chat.posts == [
        (
            chat.secret_path,
            {
                "text": "Ticket #7 assigned to Sam: Export &lt;stuck&gt; &amp; co\n"
                "https://ops.example.com/admin/support/ticket/7/change/"
            },
        )
    ]
    assert state(post) == ("sent", 1, "", True)
    assert post.target == ""


def test_without_a_webhook_nothing_is_posted(agent, published, settings):
    settings.OPSDESK_SLACK_WEBHOOK_URL = ""
    settings.OPSDESK_SLACK_WEBHOOK_URLS = {}
    record(notice((agent.pk,)))
    assert not ChatPost.objects.exists()


def test_a_teams_notice_goes_to_its_webhook_and_others_to_the_default_one(
    agent, ops_lead, chat, published, settings
):
    settings.OPSDESK_SLACK_WEBHOOK_URLS = {roles.SUPPORT: chat.url("/support-hook")}
    record(notice(roles.SUPPORT, key="team"))  # unassigned: the team's
    record(notice((agent.pk,), key="sam"))  # Sam is in Support
    record(notice((ops_lead.pk,), key="olga"))  # Ops leads have none
    for post in ChatPost.objects.order_by("pk"):
        tasks.chat_post_send.apply(args=[post.pk])
    assert sorted(ChatPost.objects.values_list("dedupe_key", "target")) == [
        ("olga", ""),
        ("sam", "Support"),
        ("team", "Support"),
    ]
    assert [path for path, _ in chat.posts] == ["/support-hook", "/support-hook", chat.secret_path]


def test_a_person_in_two_teams_with_webhooks_is_posted_to_both(chat, published, settings):
    both = staff_user("bea", roles.SUPPORT)
    both.groups.add(Group.objects.get(name=roles.OPS_LEADS))
    settings.OPSDESK_SLACK_WEBHOOK_URLS = {
        roles.SUPPORT: chat.url("/support-hook"),
        roles.OPS_LEADS: chat.url("/ops-hook"),
    }
    record(notice((both.pk,)))
    assert sorted(ChatPost.objects.values_list("target", flat=True)) == ["Ops leads", "Support"]


def test_a_server_error_is_retried_with_backoff_and_the_retry_posts(agent, chat, published):
    assert tasks.chat_post_send.autoretry_for == (DeliveryDeferred,)
    assert (tasks.chat_post_send.retry_backoff, tasks.chat_post_send.max_retries) == (30, 7)
    record(notice((agent.pk,)))
    post = ChatPost.objects.get()
    chat.answers = [(500, "internal_error"), (429, "rate_limited")]

    with pytest.raises(DeliveryDeferred):
        delivery.chat_post_send(post_id=post.pk)
    assert state(post) == ("pending", 1, "DeliveryDeferred: HTTP 500: internal_error", False)

    tasks.chat_post_send.apply(args=[post.pk])  # eager: its retries run at once

    assert len(chat.posts) == 3
    assert state(post) == ("sent", 3, "", True)


def test_a_webhook_that_refuses_the_post_parks_it_at_once(agent, chat, published):
    record(notice((agent.pk,)))
    post = ChatPost.objects.get()
    chat.answers = [(404, "no_service")]

    tasks.chat_post_send.apply(args=[post.pk])

    assert state(post) == ("failed", 1, "DeliveryRefused: HTTP 404: no_service", False)
    assert len(chat.posts) == 1


def test_a_webhook_removed_from_the_settings_parks_its_posts(agent, chat, published, settings):
    record(notice((agent.pk,)))
    post = ChatPost.objects.get()
    settings.OPSDESK_SLACK_WEBHOOK_URL = ""

    assert delivery.chat_post_send(post_id=post.pk) is False

    assert state(post)[:3] == (
        "failed",
        1,
        "DeliveryRefused: No webhook is set for the default any more.",
    )


def test_a_webhook_that_cannot_be_reached_is_retried_and_its_secret_never_recorded(
    agent, chat, published, settings
):
    record(notice((agent.pk,)))
    post = ChatPost.objects.get()
    settings.OPSDESK_SLACK_WEBHOOK_URL = f"http://127.0.0.1:1{chat.secret_path}"  # nobody listens

    with pytest.raises(DeliveryDeferred):
        delivery.chat_post_send(post_id=post.pk)

    status, attempts, error, _ = state(post)
    assert (status, attempts) == ("pending", 1)
    assert error.startswith("ConnectionError: ") and "<webhook>" in error
    assert "xoxSecretToken123" not in error and "T0OPSDESK" not in error


def test_a_hung_webhook_holds_a_worker_no_longer_than_the_timeout(agent, chat, published):
    record(notice((agent.pk,)))
    post = ChatPost.objects.get()
    chat.answers = [("hang", 3)]

    started = time.monotonic()
    with pytest.raises(DeliveryDeferred):
        delivery.chat_post_send(post_id=post.pk)
    took = time.monotonic() - started

    assert took < 1.5  # the timeout is 0.5 s
    status, attempts, error, _ = state(post)
    assert (status, attempts) == ("pending", 1)
    assert error.startswith("ReadTimeout: ") and "xoxSecretToken123" not in error
