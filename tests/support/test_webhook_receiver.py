"""POST /webhooks/product/: every row of the contract's response table."""

import datetime as dt
import json

import pytest

from support.models import WebhookEvent
from tests.support.sender import OLD_SECRET, SECRET, URL, post, signed, support_request

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


def test_a_new_valid_event_is_stored_before_the_202(client):
    body, headers = signed(support_request(), webhook_id="msg_1")
    response = post(client, body, headers)
    assert response.status_code == 202
    assert response.json() == {"id": "msg_1", "status": "accepted"}
    event = WebhookEvent.objects.get()
    assert (event.webhook_id, event.type, event.tenant_id, event.status) == (
        "msg_1",
        "support.request",
        "acme-7f3a",
        "pending",
    )
    assert event.payload == support_request()
    assert event.history.get().history_actor == "webhook:msg_1"


def test_a_retry_of_the_same_id_is_a_duplicate_with_no_second_copy(client):
    body, headers = signed(support_request(), webhook_id="msg_1")
    post(client, body, headers)
    response = post(client, body, headers)
    assert response.status_code == 200
    assert response.json() == {"id": "msg_1", "status": "duplicate"}
    assert WebhookEvent.objects.count() == 1


def test_unknown_extra_fields_are_ignored(client):
    event = support_request(color="blue")
    event["extra_envelope_field"] = True
    response = post(client, *signed(event))
    assert response.status_code == 202


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h: h.pop("webhook-signature"), id="missing signature"),
        pytest.param(lambda h: h.pop("webhook-id"), id="missing id"),
        pytest.param(lambda h: h.pop("webhook-timestamp"), id="missing timestamp"),
        pytest.param(lambda h: h.update({"webhook-signature": "v1"}), id="no comma"),
        pytest.param(lambda h: h.update({"webhook-signature": "v1,@@not-base64@@"}), id="bad b64"),
        pytest.param(lambda h: h.update({"webhook-signature": "v1,a,b"}), id="too many parts"),
        pytest.param(lambda h: h.update({"webhook-signature": "v2,AAAA"}), id="unknown version"),
        pytest.param(lambda h: h.update({"webhook-timestamp": "yesterday"}), id="bad timestamp"),
        pytest.param(lambda h: h.update({"webhook-id": "other"}), id="id not signed"),
    ],
)
def test_missing_or_malformed_signature_headers_are_refused_and_not_stored(client, tamper):
    body, headers = signed(support_request())
    tamper(headers)
    response = post(client, body, headers)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid or missing webhook signature"}
    assert WebhookEvent.objects.count() == 0


def test_a_wrong_secret_is_refused(client):
    response = post(client, *signed(support_request(), secret=OLD_SECRET))
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_any_configured_secret_verifies_so_secrets_can_rotate(client, settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET, OLD_SECRET]
    assert post(client, *signed(support_request(), secret=OLD_SECRET)).status_code == 202
    assert post(client, *signed(support_request(), secret=SECRET)).status_code == 202
    assert WebhookEvent.objects.count() == 2


@pytest.mark.parametrize(("minutes", "status"), [(-6, 401), (-4, 202), (4, 202), (6, 401)])
def test_the_timestamp_must_be_within_five_minutes(client, minutes, status):
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    assert post(client, *signed(support_request(), at=at)).status_code == status


def test_a_body_over_256_kib_is_refused_unstored(client):
    event = support_request(message="x" * (256 * 1024))
    response = post(client, *signed(event))
    assert response.status_code == 413
    assert "error" in response.json()
    assert WebhookEvent.objects.count() == 0


def test_a_signed_body_that_is_not_json_is_kept_as_rejected(client):
    response = post(client, *signed("this is not json", webhook_id="msg_nj"))
    assert response.status_code == 422
    assert response.json() == {"error": "body is not JSON", "details": []}
    event = WebhookEvent.objects.get()
    assert (event.status, event.raw_body) == ("rejected", "this is not json")


def test_a_signed_event_off_the_schema_is_kept_with_the_details(client):
    event = support_request(severity="catastrophic")
    del event["data"]["subject"]
    response = post(client, *signed(event, webhook_id="msg_bad"))
    assert response.status_code == 422
    assert response.json() == {
        "error": "event does not match the contract",
        "details": [
            {"field": "subject", "error": "Field required"},
            {"field": "severity", "error": "Input should be 'low', 'normal', 'high' or 'urgent'"},
        ],
    }
    stored = WebhookEvent.objects.get()
    assert (stored.status, stored.type, stored.payload) == ("rejected", "support.request", event)


def test_an_unknown_type_is_kept_as_rejected(client):
    event = {"type": "tenant.deleted", "timestamp": "2026-11-21T09:30:00Z", "data": {}}
    response = post(client, *signed(event))
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "type"
    assert WebhookEvent.objects.get().status == "rejected"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "a string",
        None,
        {"type": "support.request"},
        {"type": "support.request", "timestamp": "2026-11-21T09:30:00Z", "data": []},
        support_request(subject="x" * 201),
        support_request(user={"email": "not-an-email"}),
        support_request(message=12),
    ],
)
def test_wrong_types_are_a_422_never_a_500(client, payload):
    response = post(client, *signed(json.dumps(payload)))
    assert response.status_code == 422


def test_only_post_is_allowed(client):
    assert client.get(URL).status_code == 405
    assert client.put(URL).status_code == 405
    assert WebhookEvent.objects.count() == 0


def test_no_secret_configured_refuses_everything(client, settings):
    settings.OPSDESK_WEBHOOK_SECRETS = []
    assert post(client, *signed(support_request())).status_code == 401
