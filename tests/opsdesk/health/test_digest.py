"""The daily digest: who gets which email, what it says, and that it goes out once."""

from __future__ import annotations

import datetime as dt
import smtplib
import threading

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit.context import acting_as
from opsdesk.health import tasks
from opsdesk.health.digest import (
    FALLBACK,
    DigestError,
    digest_build,
    digest_recipients,
    digest_send,
    recipient_for,
)
from opsdesk.models import DigestDelivery
from tests.opsdesk.health.followed import DAY, follow
from tests.publishing import publish_thread_done

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(manager, other_manager):
    """Alice follows a healthy customer and a silent one; Bob one healthy customer;
    one customer has no manager; a churned one is nobody's concern."""
    return {
        "healthy": follow("Healthy Co", manager),
        "silent": follow("Silent Co", manager, usage_days=0),
        "bobs": follow("Bobs Co", other_manager),
        "orphan": follow("Orphan Co"),
        "gone": follow("Gone Co", manager, usage_days=0, status="churned"),
    }


def alice(manager):
    return recipient_for(f"user:{manager.pk}")


def test_one_recipient_per_manager_plus_the_fallback(book, manager, other_manager, settings):
    settings.OPSDESK_DIGEST_FALLBACK_EMAIL = "am-team@opsdesk.test"
    assert [(r.key, r.email) for r in digest_recipients()] == [
        (f"user:{manager.pk}", "alice@opsdesk.test"),
        (f"user:{other_manager.pk}", "bob@opsdesk.test"),
        (FALLBACK, "am-team@opsdesk.test"),
    ]


def test_a_digest_lists_only_the_managers_customers_flagged_first(book, manager, settings):
    settings.OPSDESK_BASE_URL = "https://ops.example.com"
    digest = digest_build(date=DAY, recipient=alice(manager))

    assert [h.name for h in digest.attention] == ["Silent Co"]
    assert [h.name for h in digest.others] == ["Healthy Co"]
    assert (
        digest.subject == "Usage digest Sun 22 Nov 2026: 2 new signals, 0 still open (2 customers)"
    )
    silent_url = f"https://ops.example.com/admin/customers/customer/{book['silent'].pk}/change/"
    assert f'<a href="{silent_url}"' in digest.html
    assert digest.html.index("Silent Co") < digest.html.index("Healthy Co")
    assert "<script" not in digest.html and "<style" not in digest.html
    assert "Bobs Co" not in digest.html and "Gone Co" not in digest.html
    assert [line for line in digest.text.splitlines() if line.startswith("  - ")] == [
        "  - Dormant: no login ever; active contract since 1 Jan 2026",
        "  - No usage data: no usage report for 21 Nov 2026",
    ]
    assert silent_url in digest.text


def test_all_healthy_says_so(book, other_manager):
    digest = digest_build(date=DAY, recipient=recipient_for(f"user:{other_manager.pk}"))
    assert digest.subject == "Usage digest Sun 22 Nov 2026: nobody needs attention (1 customer)"
    assert "Nobody needs attention today." in digest.text


def test_sending_is_multipart_and_recorded(book, manager):
    assert digest_send(date=DAY, recipient=alice(manager)) is True

    [email] = mail.outbox
    assert email.to == ["alice@opsdesk.test"]
    assert (
        email.subject == "Usage digest Sun 22 Nov 2026: 2 new signals, 0 still open (2 customers)"
    )
    assert "Silent Co" in email.body
    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html" and "Silent Co" in html
    assert email.extra_headers["Message-ID"] == f"<digest-2026-11-22-user-{manager.pk}@opsdesk>"
    delivery = DigestDelivery.objects.get()
    assert (delivery.status, delivery.attention_count, delivery.customer_count) == ("sent", 1, 2)
    assert delivery.sent_at is not None and delivery.attempts == 1


def test_the_command_sends_each_once_however_often_it_runs(book, capsys):
    call_command("send_digests", "--date", "2026-11-22")
    call_command("send_digests", "--date", "2026-11-22")

    out = capsys.readouterr().out.splitlines()
    assert out == [
        "send_digests 2026-11-22: 3 sent, 0 already sent, 0 failed",
        "send_digests 2026-11-22: 0 sent, 3 already sent, 0 failed",
    ]
    assert sorted(m.to[0] for m in mail.outbox) == [
        "account-management@localhost",
        "alice@opsdesk.test",
        "bob@opsdesk.test",
    ]
    assert DigestDelivery.objects.filter(status="sent").count() == 3


def test_a_dry_run_sends_and_records_nothing(book, capsys):
    call_command("send_digests", "--date", "2026-11-22", "--dry-run")
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "send_digests 2026-11-22 (dry run): 3 would be sent"
    subject = "Usage digest Sun 22 Nov 2026: 2 new signals, 0 still open (2 customers)"
    assert f"alice@opsdesk.test: {subject}" in out
    assert mail.outbox == []
    assert not DigestDelivery.objects.exists()


def test_a_bad_date_is_a_clear_error(db):
    with pytest.raises(CommandError, match="--date '22/11/2026' is not a date like 2026-11-22"):
        call_command("send_digests", "--date", "22/11/2026")


def test_a_run_that_crashed_mid_way_is_finished_by_the_next_one(book, manager, settings):
    # Alice's was sent; Bob's was claimed by a worker that died before sending.
    digest_send(date=DAY, recipient=alice(manager))
    with acting_as("test:fixture"):
        stuck = DigestDelivery.objects.create(
            digest_date=DAY,
            recipient_key=f"user:{book['bobs'].account_manager_id}",
            email="bob@opsdesk.test",
            status="sending",
            claimed_at=timezone.now() - dt.timedelta(hours=1),
            attempts=1,
        )
    mail.outbox.clear()

    call_command("send_digests", "--date", "2026-11-22")

    assert sorted(m.to[0] for m in mail.outbox) == [
        "account-management@localhost",
        "bob@opsdesk.test",
    ]
    stuck.refresh_from_db()
    assert (stuck.status, stuck.attempts) == ("sent", 2)


def test_a_fresh_claim_is_left_to_its_owner(book, manager):
    with acting_as("test:fixture"):
        DigestDelivery.objects.create(
            digest_date=DAY,
            recipient_key=f"user:{manager.pk}",
            email="alice@opsdesk.test",
            status="sending",
            claimed_at=dt.datetime.now(dt.UTC),
        )
    assert digest_send(date=DAY, recipient=alice(manager)) is False
    assert mail.outbox == []


def test_a_failed_send_is_recorded_retried_and_then_sent(book, manager, monkeypatch):
    def refuse(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("mail server went away")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refuse)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        digest_send(date=DAY, recipient=alice(manager))
    delivery = DigestDelivery.objects.get()
    assert delivery.status == "failed"
    assert delivery.error == "SMTPServerDisconnected: mail server went away"

    monkeypatch.undo()
    tasks.digest_send.apply(args=["2026-11-22", f"user:{manager.pk}"])
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error, delivery.attempts) == ("sent", "", 2)
    assert len(mail.outbox) == 1


def test_a_manager_without_an_email_address_fails_visibly(book, manager):
    manager.email = ""
    manager.save()
    with pytest.raises(DigestError, match=r"^Alice has no email address; add one to their user\.$"):
        digest_send(date=DAY, recipient=alice(manager))
    assert DigestDelivery.objects.get().status == "failed"
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_once_send_one_email(manager):
    follow("Healthy Co", manager)
    results = []
    start = threading.Barrier(2)

    def run():
        start.wait()
        try:
            results.append(digest_send(date=DAY, recipient=alice(manager)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    assert len(mail.outbox) == 1
    assert DigestDelivery.objects.get().attempts == 1


PREVIEW = "/admin/opsdesk/digestdelivery/preview/"


def test_the_preview_shows_any_managers_digest_as_emailed(client, book, manager, other_manager):
    client.force_login(manager)

    own = client.get(PREVIEW, {"date": "2026-11-22"})
    bobs = client.get(PREVIEW, {"date": "2026-11-22", "recipient": f"user:{other_manager.pk}"})

    assert own.context["digest"].recipient.email == "alice@opsdesk.test"  # yours by default
    expected = digest_build(date=DAY, recipient=alice(manager))
    assert own.context["digest"].html == expected.html
    assert 'srcdoc="&lt;!DOCTYPE html&gt;' in own.content.decode()
    assert (
        bobs.context["digest"].subject
        == "Usage digest Sun 22 Nov 2026: nobody needs attention (1 customer)"
    )
    assert mail.outbox == [] and not DigestDelivery.objects.exists()


def test_the_preview_explains_what_it_cannot_show(client, book, manager):
    client.force_login(manager)
    response = client.get(PREVIEW, {"date": "someday", "recipient": "user:999999"})
    assert response.status_code == 200
    assert response.context["problems"] == [
        "That date was not understood; showing today's digest.",
        "No account manager 'user:999999'.",
    ]


def test_the_delivery_log_is_for_staff_only(client, book, outsider, agent):
    client.force_login(outsider)
    assert client.get(PREVIEW)["Location"].startswith("/admin/login/")
    client.force_login(agent)
    assert client.get("/admin/opsdesk/digestdelivery/").status_code == 200


def test_beat_starts_the_run_which_queues_one_send_per_recipient(book, monkeypatch, settings):
    entry = settings.CELERY_BEAT_SCHEDULE["send-digests"]
    assert entry["task"] == "opsdesk.digests_send"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({7}, {0})
    queued = []
    monkeypatch.setattr(tasks.digest_send, "delay", lambda *args: queued.append(args))

    assert tasks.digests_send.apply(args=["2026-11-22"]).result == 3
    assert sorted(queued) == sorted(
        ("2026-11-22", key)
        for key in [
            f"user:{book['healthy'].account_manager_id}",
            f"user:{book['bobs'].account_manager_id}",
            FALLBACK,
        ]
    )


def test_ops_send_a_failed_digest_again_from_the_delivery_log(
    client, book, manager, ops_lead, monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: published.append((name, args)))
    with acting_as("test:fixture"):
        failed = DigestDelivery.objects.create(
            digest_date=DAY,
            recipient_key=f"user:{manager.pk}",
            email="alice@opsdesk.test",
            status="failed",
            error="SMTPServerDisconnected: gone",
        )
        sent = DigestDelivery.objects.create(
            digest_date=DAY,
            recipient_key=FALLBACK,
            email="am@opsdesk.test",
            status="sent",
            sent_at=timezone.now(),
        )
    form = {"action": "send_again", "_selected_action": [failed.pk, sent.pk]}

    client.force_login(manager)  # account managers may read the log, not resend
    client.post("/admin/opsdesk/digestdelivery/", form)
    assert published == []

    client.force_login(ops_lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/opsdesk/digestdelivery/", form, follow=True)
    publish_thread_done()
    assert "1 email queued again; 1 skipped" in response.content.decode()
    assert published == [("opsdesk.digest_send", ["2026-11-22", f"user:{manager.pk}"])]
