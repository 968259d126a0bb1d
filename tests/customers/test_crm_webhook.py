"""POST /webhooks/crm/: the product webhooks' answers (docs/contracts/crm.md), under the
CRM's own secrets, and the CRM's schemas refusing what opsdesk cannot take."""

import datetime as dt

import pytest
from django.urls import reverse

from support.models import WebhookEvent
from tests.customers.crm_sender import (
    CRM_SECRET,
    CRM_URL,
    OLD_CRM_SECRET,
    account,
    contract,
    crm_post,
    crm_signed,
)
from tests.support.sender import SECRET, post, signed, support_request

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]
    settings.OPSDESK_CRM_WEBHOOK_SECRETS = [CRM_SECRET]


def test_a_new_valid_account_is_stored_as_a_crm_event_before_the_202(client):
    response = crm_post(client, *crm_signed(account(), webhook_id="msg_a1"))
    assert response.status_code == 202
    assert response.json() == {"id": "msg_a1", "status": "accepted"}
    event = WebhookEvent.objects.get()
    assert (event.webhook_id, event.source, event.type, event.tenant_id, event.status) == (
        "msg_a1",
        "crm",
        "crm.account.upserted",
        "acme-7f3a",
        "pending",
    )
    assert event.payload == account()
    assert event.history.get().history_actor == "webhook:msg_a1"


def test_a_contract_is_stored_without_a_tenant_id(client):
    assert crm_post(client, *crm_signed(contract(), webhook_id="msg_c1")).status_code == 202
    event = WebhookEvent.objects.get()
    assert (event.source, event.type, event.tenant_id) == ("crm", "crm.contract.upserted", "")


def test_a_retry_of_the_same_id_is_a_duplicate_with_no_second_copy(client):
    body, headers = crm_signed(account(), webhook_id="msg_a1")
    crm_post(client, body, headers)
    response = crm_post(client, body, headers)
    assert response.status_code == 200
    assert response.json() == {"id": "msg_a1", "status": "duplicate"}
    assert WebhookEvent.objects.count() == 1


def test_each_source_names_its_own_deliveries(client):
    # The product and the CRM each pick their ids: the same id from both is two events.
    assert post(client, *signed(support_request(), webhook_id="msg_1")).status_code == 202
    assert crm_post(client, *crm_signed(account(), webhook_id="msg_1")).status_code == 202
    assert sorted(WebhookEvent.objects.values_list("source", "webhook_id")) == [
        ("crm", "msg_1"),
        ("product", "msg_1"),
    ]


def test_only_a_post_is_answered(client):
    assert client.get(CRM_URL).status_code == 405
    assert client.put(CRM_URL).status_code == 405
    assert WebhookEvent.objects.count() == 0


def test_a_body_over_256_kib_is_refused_unstored(client):
    response = crm_post(client, *crm_signed(account(note="x" * (256 * 1024))))
    assert response.status_code == 413
    assert response.json() == {"error": "body larger than 262144 bytes"}
    assert WebhookEvent.objects.count() == 0


# --- Signatures: the CRM's own secrets ----------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h: h.pop("webhook-signature"), id="missing signature"),
        pytest.param(lambda h: h.pop("webhook-timestamp"), id="missing timestamp"),
        pytest.param(lambda h: h.update({"webhook-signature": "v1,@@not-base64@@"}), id="bad b64"),
        pytest.param(lambda h: h.update({"webhook-id": "other"}), id="id not signed"),
    ],
)
def test_missing_or_malformed_signature_headers_are_refused_and_not_stored(client, tamper):
    body, headers = crm_signed(account())
    tamper(headers)
    response = crm_post(client, body, headers)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid or missing webhook signature"}
    assert WebhookEvent.objects.count() == 0


def test_the_products_secret_does_not_sign_for_the_crm_nor_the_crms_for_the_product(client):
    assert crm_post(client, *crm_signed(account(), secret=SECRET)).status_code == 401
    assert post(client, *signed(support_request(), secret=CRM_SECRET)).status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_any_configured_crm_secret_verifies_so_secrets_can_rotate(client, settings):
    assert crm_post(client, *crm_signed(account(), secret=OLD_CRM_SECRET)).status_code == 401
    settings.OPSDESK_CRM_WEBHOOK_SECRETS = [CRM_SECRET, OLD_CRM_SECRET]
    assert crm_post(client, *crm_signed(account(), secret=OLD_CRM_SECRET)).status_code == 202
    assert crm_post(client, *crm_signed(account(), secret=CRM_SECRET)).status_code == 202
    assert WebhookEvent.objects.filter(source="crm").count() == 2


def test_without_crm_secrets_every_crm_delivery_is_refused(client, settings):
    settings.OPSDESK_CRM_WEBHOOK_SECRETS = []
    assert crm_post(client, *crm_signed(account())).status_code == 401


@pytest.mark.parametrize(("minutes", "status"), [(-6, 401), (-4, 202), (4, 202), (6, 401)])
def test_the_timestamp_must_be_within_five_minutes(client, minutes, status):
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    assert crm_post(client, *crm_signed(account(), at=at)).status_code == status


# --- Payloads opsdesk cannot take: 422, kept as rejected ----------------------------------


CRM_TYPES = "Input should be 'crm.account.upserted' or 'crm.contract.upserted'"


def _without(payload: dict, name: str) -> dict:
    payload["data"].pop(name)
    return payload


BAD_PAYLOADS = [
    # The envelope: another source's type, an unknown type, a Unix timestamp.
    (support_request(), "type", CRM_TYPES),
    ({"type": "crm.lead.created", "timestamp": "2026-11-21T09:30:00Z", "data": {}}, "type",
     CRM_TYPES),
    (account() | {"timestamp": 1763717400}, "timestamp",
     "Value error, must be an ISO 8601 date and time, e.g. 2026-11-21T09:30:00Z"),
    # Accounts.
    (_without(account(), "crm_id"), "crm_id", "Field required"),
    (account(crm_id=""), "crm_id", "String should have at least 1 character"),
    (account(crm_id="x" * 101), "crm_id", "String should have at most 100 characters"),
    (account(name="   "), "name", "String should have at least 1 character"),
    (account(name="n" * 201), "name", "String should have at most 200 characters"),
    (account(tenant_id="t" * 101), "tenant_id", "String should have at most 100 characters"),
    (account(account_manager_email="alice"), "account_manager_email",
     "Value error, must be an email address"),
    (account(status="paused"), "status", "Input should be 'onboarding', 'active' or 'churned'"),
    (_without(account(), "updated_at"), "updated_at", "Field required"),
    (account(updated_at="2026-11-21T09:29:41"), "updated_at",
     "Input should have timezone info"),
    (account(updated_at="2026-11-21"), "updated_at",
     "Value error, must be an ISO 8601 date and time, e.g. 2026-11-21T09:30:00Z"),
    (account(updated_at="2126-11-21T09:29:41Z"), "updated_at",
     "Value error, must be between 2000-01-01 and 2099-12-31 (UTC)"),
    # Contracts.
    (_without(contract(), "crm_account_id"), "crm_account_id", "Field required"),
    (contract(plan="platinum"), "plan", "Input should be 'starter', 'growth' or 'enterprise'"),
    (contract(seats=-1), "seats", "Input should be greater than or equal to 0"),
    (contract(seats=2**31), "seats", "Input should be less than or equal to 2147483647"),
    (contract(seats="many"), "seats",
     "Input should be a valid integer, unable to parse string as an integer"),
    (contract(monthly_fee="12.345"), "monthly_fee",
     "Decimal input should have no more than 2 decimal places"),
    (contract(monthly_fee="-1.00"), "monthly_fee", "Input should be greater than or equal to 0"),
    (contract(price_per_extra_seat="123456789.00"), "price_per_extra_seat",
     "Decimal input should have no more than 8 digits before the decimal point"),
    (contract(currency="eur"), "currency", "String should match pattern '^[A-Z]{3}$'"),
    (contract(start_date="2026/12/01"), "start_date", "Value error, must be a date as YYYY-MM-DD"),
    (contract(end_date="2026-11-30"), "",
     "Value error, end_date must not be before start_date"),
    (contract(status="signed"), "status",
     "Input should be 'draft', 'active', 'ended' or 'cancelled'"),
    (contract(integrations="sso"), "integrations", "Input should be a valid list"),
    (contract(integrations=["SSO"]), "integrations.0",
     "String should match pattern '^[a-z0-9_]{1,30}$'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "field", "error"),
    BAD_PAYLOADS,
    ids=[f"{field or 'data'}: {error[:40]}" for _, field, error in BAD_PAYLOADS],
)
def test_an_event_opsdesk_cannot_take_is_a_422_kept_as_rejected(client, payload, field, error):
    response = crm_post(client, *crm_signed(payload, webhook_id="msg_bad"))
    assert response.status_code == 422
    assert response.json() == {
        "error": "event does not match the contract",
        "details": [{"field": field, "error": error}],
    }
    event = WebhookEvent.objects.get()
    assert (event.source, event.status, event.webhook_id) == ("crm", "rejected", "msg_bad")
    assert event.details == [{"field": field, "error": error}]


def test_a_signed_body_that_is_not_json_is_kept_as_rejected(client):
    response = crm_post(client, *crm_signed("not json", webhook_id="msg_nj"))
    assert response.status_code == 422
    assert response.json() == {"error": "body is not JSON", "details": []}
    event = WebhookEvent.objects.get()
    assert (event.source, event.status, event.raw_body) == ("crm", "rejected", "not json")


def test_optional_fields_may_be_absent_null_or_empty(client):
    sparse = account()
    for name in ("tenant_id", "account_manager_email", "status"):
        del sparse["data"][name]
    nulls = account(tenant_id=None, account_manager_email=None, status=None)
    blanks = account(tenant_id="", account_manager_email="")
    bare = contract(end_date=None, integrations=None, seats=0)
    del bare["data"]["end_date"]
    for payload in (sparse, nulls, blanks, bare, contract(integrations=["sso", "teams"])):
        assert crm_post(client, *crm_signed(payload)).status_code == 202


def test_staff_tell_the_crms_events_from_the_products_by_their_source(client, ops_lead):
    post(client, *signed(support_request(), webhook_id="msg_product"))
    crm_post(client, *crm_signed(account(), webhook_id="msg_crm"))
    client.force_login(ops_lead)
    url = reverse("admin:support_webhookevent_changelist")

    listed = client.get(url, {"source__exact": "crm"}).context_data["cl"].result_list

    assert [(event.webhook_id, event.source) for event in listed] == [("msg_crm", "crm")]
    everything = client.get(url).context_data["cl"].result_list
    assert sorted(event.source for event in everything) == ["crm", "product"]


def test_the_deploy_check_warns_without_crm_secrets_and_refuses_a_malformed_one(settings):
    from support.checks import webhook_secrets_are_valid, webhook_secrets_configured

    settings.OPSDESK_CRM_WEBHOOK_SECRETS = []
    assert [(w.id, w.msg) for w in webhook_secrets_configured(None)] == [
        (
            "support.W002",
            "OPSDESK_CRM_WEBHOOK_SECRETS is empty: every CRM webhook will be refused (401).",
        )
    ]
    settings.OPSDESK_CRM_WEBHOOK_SECRETS = [CRM_SECRET, "whsec_!!!"]
    assert webhook_secrets_configured(None) == []
    assert [(e.id, e.msg) for e in webhook_secrets_are_valid(None)] == [
        ("support.E002", "OPSDESK_CRM_WEBHOOK_SECRETS entry 2 is not a whsec_<base64> secret.")
    ]
