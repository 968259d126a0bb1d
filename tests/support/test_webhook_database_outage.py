"""POST /webhooks/product/ while PostgreSQL cannot be reached (a restart, a failover):
the event cannot be stored, and the sender is told to retry it (503 with Retry-After),
not answered with a 500 (``make drills``' postgres-restart drill does this for real)."""

import pytest
from django.db import InterfaceError, OperationalError

from support.models import WebhookEvent
from tests.support.sender import SECRET, post, signed, support_request

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(
            OperationalError(
                'connection failed: connection to server on socket "/tmp/.s.PGSQL.5432" '
                "failed: FATAL:  the database system is shutting down"
            ),
            id="server shutting down",
        ),
        pytest.param(InterfaceError("connection already closed"), id="connection closed"),
    ],
)
def test_a_delivery_while_the_database_is_unreachable_is_a_503_with_retry_after(
    client, monkeypatch, error
):
    def unreachable(*args, **kwargs):
        raise error

    monkeypatch.setattr("support.webhooks.insert_with_history", unreachable)
    response = post(client, *signed(support_request(), webhook_id="msg_1"))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": "the event could not be stored now (database unavailable); retry it"
    }


def test_the_retry_once_the_database_is_back_is_accepted(client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    body, headers = signed(support_request(), webhook_id="msg_1")
    with monkeypatch.context() as patched:
        patched.setattr("support.webhooks.insert_with_history", unreachable)
        assert post(client, body, headers).status_code == 503
    response = post(client, body, headers)
    assert response.status_code == 202
    assert WebhookEvent.objects.get().webhook_id == "msg_1"
