"""The chat webhooks' settings: read strictly, their secrets never in a message."""

from __future__ import annotations

import runpy

import pytest
from django.core.exceptions import ImproperlyConfigured

from opsdesk import settings as settings_module
from opsdesk.settings import envurlmap

NAME = "OPSDESK_SLACK_WEBHOOK_URLS"


def test_per_team_webhooks_are_read_as_group_names_and_urls(monkeypatch):
    monkeypatch.setenv(
        NAME,
        " Support = https://hooks.slack.com/services/T1/B1/aaa ,"
        "Ops leads=https://chat.example.com/hooks/x?token=a=b",
    )
    assert envurlmap(NAME, schemes=("https", "http"), secret=True) == {
        "Support": "https://hooks.slack.com/services/T1/B1/aaa",
        "Ops leads": "https://chat.example.com/hooks/x?token=a=b",
    }
    monkeypatch.setenv(NAME, "")
    assert envurlmap(NAME, schemes=("https",), secret=True) == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "https://hooks.slack.com/services/T1/B1/secret",
            f"{NAME} must be a list of Name=URL, an item has no name",
        ),
        (
            "=https://hooks.slack.com/services/T1/B1/secret",
            f"{NAME} must be a list of Name=URL, an item has no name",
        ),
        (
            "Support=hooks.slack.com/services/T1/B1/secret",
            f"{NAME} (Support) must be a URL starting https:// or http:// and a host name, "
            "got one without a scheme",
        ),
        (
            "Support=ftp://hooks.slack.com/services/T1/B1/secret",
            f"{NAME} (Support) must be a URL starting https:// or http:// and a host name, "
            "got one starting ftp://",
        ),
        (
            "Support=https://a.example/secret,Support=https://b.example/secret",
            f"{NAME} names 'Support' twice",
        ),
    ],
)
def test_a_malformed_team_webhook_stops_the_start_without_showing_its_secret(
    monkeypatch, raw, message
):
    monkeypatch.setenv(NAME, raw)
    with pytest.raises(ImproperlyConfigured) as error:
        envurlmap(NAME, schemes=("https", "http"), secret=True)
    assert str(error.value) == message
    assert "secret" not in str(error.value)


def read_settings(monkeypatch, **variables: str) -> dict:
    base = {
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
    }
    for name, value in {**base, **variables}.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(settings_module.__file__)


def test_the_notification_settings_come_from_the_environment(monkeypatch):
    values = read_settings(
        monkeypatch,
        OPSDESK_SLACK_WEBHOOK_URL="https://hooks.slack.com/services/T1/B1/default",
        OPSDESK_SLACK_WEBHOOK_URLS="Support=https://hooks.slack.com/services/T1/B2/support",
        OPSDESK_SLACK_TIMEOUT_SECONDS="2.5",
        OPSDESK_NOTIFY_ROLLUP_MINUTES="15",
    )
    assert values["OPSDESK_SLACK_WEBHOOK_URL"] == "https://hooks.slack.com/services/T1/B1/default"
    assert values["OPSDESK_SLACK_WEBHOOK_URLS"] == {
        "Support": "https://hooks.slack.com/services/T1/B2/support"
    }
    assert values["OPSDESK_SLACK_TIMEOUT_SECONDS"] == 2.5
    assert values["OPSDESK_NOTIFY_ROLLUP_MINUTES"] == 15


def test_the_defaults_post_nowhere_and_roll_up_hourly(monkeypatch):
    for name in (
        "OPSDESK_SLACK_WEBHOOK_URL",
        NAME,
        "OPSDESK_SLACK_TIMEOUT_SECONDS",
        "OPSDESK_NOTIFY_ROLLUP_MINUTES",
    ):
        monkeypatch.delenv(name, raising=False)
    values = read_settings(monkeypatch)
    assert (
        values["OPSDESK_SLACK_WEBHOOK_URL"],
        values["OPSDESK_SLACK_WEBHOOK_URLS"],
        values["OPSDESK_SLACK_TIMEOUT_SECONDS"],
        values["OPSDESK_NOTIFY_ROLLUP_MINUTES"],
    ) == ("", {}, 10.0, 60)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "OPSDESK_SLACK_WEBHOOK_URL",
            "hooks.slack.com/services/T1/B1/secret",
            "OPSDESK_SLACK_WEBHOOK_URL must be a URL starting https:// or http:// and a host "
            "name, got one without a scheme",
        ),
        (
            "OPSDESK_NOTIFY_ROLLUP_MINUTES",
            "1",
            "OPSDESK_NOTIFY_ROLLUP_MINUTES must be at least 5, got '1'",
        ),
        (
            "OPSDESK_SLACK_TIMEOUT_SECONDS",
            "0",
            "OPSDESK_SLACK_TIMEOUT_SECONDS must be at least 0.1, got '0'",
        ),
    ],
)
def test_a_malformed_notification_setting_stops_the_start(monkeypatch, variable, value, message):
    with pytest.raises(ImproperlyConfigured) as error:
        read_settings(monkeypatch, **{variable: value})
    assert str(error.value) == message
