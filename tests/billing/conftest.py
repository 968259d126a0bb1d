"""Fixtures the billing tests share."""

import pytest
from django.urls import reverse

from tests.publishing import publish_thread_done

START = reverse("admin:billing_reconciliationrun_start")


@pytest.fixture
def publish(monkeypatch, django_capture_on_commit_callbacks):
    """What is handed to the broker once the request's transaction commits."""
    published = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: published.append((name, args)))

    class Capture:
        def __call__(self):
            publish_thread_done()
            return published

        def post(self, client, data):
            """POST ``data`` to the start form of a reconciliation run."""
            with django_capture_on_commit_callbacks(execute=True):
                return client.post(START, data)

    return Capture()
