"""Hostile input that used to answer 500 (found by ``make drills``' hostile drill): each is
now a clear 4xx or a form error, and nothing is stored that should not be."""

import pytest
from axes.models import AccessAttempt
from django.urls import reverse

from support.models import Ticket, TicketComment, WebhookEvent
from tests.personas import PASSWORD
from tests.support.sender import SECRET, post, signed, support_request

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('{"type": "support.request", "n": NaN}', "body is not JSON"),
        ('{"type": "support.request", "n": -Infinity}', "body is not JSON"),
        ("[" * 100_000 + "]" * 100_000, "body is nested deeper than 32 levels"),
        (
            '{"type": "support.request", "data": {"subject": "a\\u0000b"}}',
            "body has a NUL character (\\u0000), which cannot be stored",
        ),
        (
            '{"type": "support.request", "data": {"\\u0000": 1}}',
            "body has a NUL character (\\u0000), which cannot be stored",
        ),
        (
            '{"type": "support.request", "data": {"subject": "\\ud800"}}',
            "body has an unpaired surrogate (\\ud800-\\udfff) escape",
        ),
    ],
    ids=["NaN", "-Infinity", "deep nesting", "NUL in a value", "NUL in a key", "lone surrogate"],
)
def test_json_postgresql_cannot_store_is_a_422_kept_for_inspection(client, body, error):
    response = post(client, *signed(body, webhook_id="msg_hostile"))
    assert response.status_code == 422
    assert response.json() == {"error": error, "details": []}
    event = WebhookEvent.objects.get()
    assert (event.webhook_id, event.status, event.error) == ("msg_hostile", "rejected", error)
    assert (event.payload, event.raw_body) == (None, body)


def test_a_valid_event_with_hostile_looking_text_is_accepted_verbatim(client):
    subject = "'; DROP TABLE support_ticket; -- <script>alert(1)</script> \u202e 👩\u200d💻"
    response = post(client, *signed(support_request(subject=subject), webhook_id="msg_ok"))
    assert response.status_code == 202
    assert WebhookEvent.objects.get().payload["data"]["subject"] == subject


def test_a_ticket_action_on_an_id_that_is_not_one_is_a_404(client, agent):
    client.force_login(agent)
    for name in ("support_ticket_change", "support_ticket_act"):
        url = reverse(f"admin:{name}", args=["abc'--"])
        response = client.post(url, {"send": "note", "body": "x"})
        # The admin's page of a ticket that is not there sends to the list, saying so.
        assert response.status_code == (302 if name == "support_ticket_change" else 404)
    url = reverse("admin:support_webhookevent_retry", args=["1 OR 1=1"])
    assert client.post(url).status_code in (403, 404)  # agents may not retry events
    assert not TicketComment.objects.exists() and not Ticket.objects.exists()


def test_an_autocomplete_field_posted_with_a_non_id_shows_the_form_error(
    client, superuser, customer
):
    client.force_login(superuser)
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    data = {
        "external_id": customer.external_id,
        "name": "Renamed",
        "crm_id": customer.crm_id,
        "status": customer.status,
        "account_manager": "1 OR 1=1",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    customer.refresh_from_db()
    assert customer.name == "Acme Corp"


def test_a_sign_in_with_a_huge_username_is_a_form_error_not_a_500(client, agent):
    url = reverse("admin:login")
    response = client.post(url, {"username": "u" * 10_000, "password": "x"})
    assert response.status_code == 200
    assert "Ensure this value has at most 150 characters" in response.content.decode()
    assert not AccessAttempt.objects.exists()
    response = client.post(url, {"username": agent.username, "password": PASSWORD})
    assert response.status_code == 302
