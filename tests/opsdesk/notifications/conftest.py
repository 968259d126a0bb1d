"""Fixtures of the staff notification tests: what is handed to the broker, a mail server
that fails as scripted, and a Slack-compatible incoming webhook on a local port
(tests.chat_receiver)."""

from __future__ import annotations

import pytest
from django.core.mail.backends import locmem
from django.db import transaction

from tests.chat_receiver import ChatReceiver


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, list]]:
    """What the notifications hand to the broker after a commit (name, args), recorded in
    order instead (and at once outside a transaction, as in production's on-commit)."""
    sent: list[tuple[str, list]] = []

    def publish_after_commit(name, *args):
        transaction.on_commit(lambda: sent.append((name, list(args))))

    monkeypatch.setattr("opsdesk.notifications.services.publish_after_commit", publish_after_commit)
    monkeypatch.setattr("kit.publish._publish", lambda name, args: sent.append((name, args)))
    return sent


class MailServer:
    """Django's locmem backend, failing with the scripted errors for the next sends."""

    def __init__(self, monkeypatch):
        self.tried: list[list[str]] = []
        self.errors: list[Exception] = []
        deliver = locmem.EmailBackend.send_messages

        def send_messages(backend, messages):
            for message in messages:
                self.tried.append(message.to)
                if self.errors:
                    raise self.errors.pop(0)
            return deliver(backend, messages)

        monkeypatch.setattr(locmem.EmailBackend, "send_messages", send_messages)


@pytest.fixture
def mail_server(monkeypatch) -> MailServer:
    return MailServer(monkeypatch)


@pytest.fixture
def chat(settings) -> ChatReceiver:
    """The receiver, set as OPSDESK_SLACK_WEBHOOK_URL, with a short timeout."""
    receiver = ChatReceiver()
    settings.OPSDESK_SLACK_WEBHOOK_URL = receiver.url()
    settings.OPSDESK_SLACK_WEBHOOK_URLS = {}
    settings.OPSDESK_SLACK_TIMEOUT_SECONDS = 0.5
    settings.OPSDESK_BASE_URL = "https://ops.example.com"
    yield receiver
    receiver.close()
