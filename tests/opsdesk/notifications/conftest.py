"""Fixtures of the staff notification tests: what is handed to the broker, a mail server
that fails as scripted, and a Slack-compatible incoming webhook on a local port."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.mail.backends import locmem
from django.db import transaction

SECRET_PATH = "/services/T0OPSDESK/B0NOTIFY/xoxSecretToken123"


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


class ChatReceiver:
    """A Slack-compatible incoming webhook served over real HTTP on 127.0.0.1 from a
    thread: it records every POST (path, JSON body) and answers with the scripted
    ``answers`` in turn ((status, text), or ("hang", seconds) to answer only that late),
    then 200 "ok"."""

    secret_path = SECRET_PATH

    def __init__(self):
        self.posts: list[tuple[str, dict]] = []
        self.answers: list[tuple] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                receiver.posts.append((self.path, body))
                status, text = receiver.answers.pop(0) if receiver.answers else (200, "ok")
                if status == "hang":
                    time.sleep(text)
                    status, text = 200, "ok"
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = SECRET_PATH) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


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
