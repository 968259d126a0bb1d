"""``make run`` (devstack): the links in emails follow the port it serves on, and the
demo's manager has today's digest whatever the hour it was started."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail

from devstack import stack
from opsdesk.health.digest import digest_due
from opsdesk.models import DigestDelivery
from tests.opsdesk.health.followed import follow


def test_the_links_follow_the_port_it_serves_on():
    env = {"PORT": "8123"}
    assert stack.web_env(env) == "8123"
    assert env["OPSDESK_BASE_URL"] == "http://127.0.0.1:8123"


def test_without_a_port_it_serves_on_8000_and_links_there():
    env: dict[str, str] = {}
    assert stack.web_env(env) == "8000"
    assert env == {"PORT": "8000", "OPSDESK_BASE_URL": "http://127.0.0.1:8000"}


def test_a_base_url_that_is_set_is_kept():
    env = {"PORT": "8123", "OPSDESK_BASE_URL": "https://ops.example.com"}
    stack.web_env(env)
    assert env["OPSDESK_BASE_URL"] == "https://ops.example.com"


@pytest.mark.parametrize(
    ("clock", "due"),
    [("06:59", False), ("07:00", True), ("07:29", True), ("23:59", True), ("00:00", False)],
)
def test_the_digest_is_due_from_its_scheduled_time_of_day(settings, clock, due):
    settings.OPSDESK_DIGEST_HOUR, settings.OPSDESK_DIGEST_MINUTE = 7, 0
    hour, minute = map(int, clock.split(":"))
    assert digest_due(now=dt.datetime(2026, 11, 21, hour, minute, tzinfo=dt.UTC)) is due


def test_due_reads_the_time_zone_the_schedule_uses(settings):
    settings.TIME_ZONE = "Europe/Berlin"  # UTC+1 in November
    settings.OPSDESK_DIGEST_HOUR, settings.OPSDESK_DIGEST_MINUTE = 7, 0
    assert not digest_due(now=dt.datetime(2026, 11, 21, 5, 59, tzinfo=dt.UTC))
    assert digest_due(now=dt.datetime(2026, 11, 21, 6, 0, tzinfo=dt.UTC))


@pytest.mark.django_db
def test_started_after_the_digest_time_it_sends_todays_digest_once(manager, settings):
    settings.OPSDESK_DIGEST_HOUR, settings.OPSDESK_DIGEST_MINUTE = 7, 0
    settings.OPSDESK_BASE_URL = "http://127.0.0.1:8123"
    customer = follow("Healthy Co", manager)
    with time_machine.travel(dt.datetime(2026, 11, 21, 9, 15, tzinfo=dt.UTC), tick=False):
        stack.send_todays_digests()
        stack.send_todays_digests()  # a restart the same day
    [delivery] = DigestDelivery.objects.all()
    assert (delivery.digest_date, delivery.status) == (dt.date(2026, 11, 21), "sent")
    assert delivery.recipient_id == manager.pk
    [email] = mail.outbox
    assert f"http://127.0.0.1:8123/admin/customers/customer/{customer.pk}/change/" in email.body


@pytest.mark.django_db
def test_started_before_the_digest_time_it_leaves_the_digest_to_beat(manager, settings):
    settings.OPSDESK_DIGEST_HOUR, settings.OPSDESK_DIGEST_MINUTE = 7, 0
    follow("Healthy Co", manager)
    with time_machine.travel(dt.datetime(2026, 11, 21, 6, 45, tzinfo=dt.UTC), tick=False):
        stack.send_todays_digests()
    assert not DigestDelivery.objects.exists()
    assert mail.outbox == []
