"""Webhook bodies that were answered 500, or answered 202 and then failed in the worker for
ever: each is now refused (422 kept for inspection, or 401 for a malformed header), and
every body at the edges of what the schemas accept is processed by the real handlers."""

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from decimal import Decimal
from types import UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

import pytest
from django.urls import reverse
from pydantic import BaseModel, EmailStr
from pydantic.fields import FieldInfo

from audit.context import acting_as
from customers.entitlements import entitlements_issue
from customers.models import Product, UsageDaily
from kit.schemas import optional_date_in_range
from support import sla, webhook_schemas
from support.models import Ticket, WebhookEvent
from tests import builders
from tests.sla_policies import business_hours, first_response
from tests.support.sender import SECRET, deliver, post, signed, support_request

pytestmark = pytest.mark.django_db

BIGINT = 2**63 - 1  # PostgreSQL's bigint (requests, errors)
INTEGER = 2**31 - 1  # PostgreSQL's integer (active users)
MAX_DEPTH = 32  # containers inside containers
MAX_WEBHOOK_ID_LENGTH = 192  # "webhook:<id>" is the history actor, 200 at most


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


def envelope(type_: str, timestamp="2026-11-21T09:30:00Z", **data) -> dict:
    return {"type": type_, "timestamp": timestamp, "data": {"tenant_id": "acme-7f3a", **data}}


def error_spike(**data) -> dict:
    fields = {"fingerprint": "db-timeout", "error_rate": 0.25, "window_minutes": 5, **data}
    return envelope("incident.error_spike", **fields)


def usage_daily(**data) -> dict:
    fields = {
        "date": "2026-11-20",
        "active_users_1d": 12,
        "active_users_7d": 40,
        "last_login_at": "2026-11-20T18:51:00Z",
        "requests": 13_801,
        "errors": 83,
        **data,
    }
    return envelope("usage.daily", **fields)


def order_completed(**data) -> dict:
    fields = {
        "order_id": "ord_1001",
        "sku": "SEAT-PRO-1Y",
        "quantity": 1,
        "amount": "1200.00",
        "currency": "EUR",
        "paid_at": "2026-11-21T09:30:00Z",
        **data,
    }
    return envelope("order.completed", **fields)


def entitlement_redeemed(**data) -> dict:
    fields = {
        "code": "NOPE-NOPE-NOPE",
        "user_email": "ann@acme.com",
        "redeemed_at": "2026-11-21T09:30:00Z",
        **data,
    }
    return envelope("entitlement.redeemed", **fields)


def nested(depth: int) -> object:
    """``depth`` containers, one inside the other: ``[[...[]...]]``."""
    value: object = []
    for _ in range(depth - 1):
        value = [value]
    return value


def refused(client, body, webhook_id="msg_bad"):
    """Post a signed body; it must be a 422 kept as a rejected event. Returns the answer."""
    response = post(client, *signed(body, webhook_id=webhook_id))
    assert response.status_code == 422, response.content
    event = WebhookEvent.objects.get(webhook_id=webhook_id)
    assert event.status == "rejected"
    return response.json()


# --- Numbers that are not finite ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(error_spike()).replace("0.25", "1e400"),
        json.dumps(error_spike()).replace("0.25", "-1e400"),
        json.dumps(support_request(extra="X")).replace('"X"', "[1, 2, 1e400]"),
        json.dumps(support_request(extra="X")).replace('"X"', '{"a": {"b": 1E+999}}'),
    ],
    ids=["a field's value", "negative", "in an unknown list", "in an unknown object"],
)
def test_a_number_too_large_for_a_float_anywhere_is_a_422_kept_as_raw_text(client, body):
    answer = refused(client, body)
    error = "body has a number too large to store (beyond ±1.8e308)"
    assert answer == {"error": error, "details": []}
    event = WebhookEvent.objects.get()
    assert (event.error, event.payload, event.raw_body) == (error, None, body)


# --- The webhook-id header ---------------------------------------------------------------


def test_a_webhook_id_of_192_characters_is_accepted():
    webhook_id = "m" * MAX_WEBHOOK_ID_LENGTH
    event = deliver(support_request(), webhook_id=webhook_id)
    assert (event.webhook_id, event.status) == (webhook_id, "processed")
    assert Ticket.objects.get().history.earliest().history_actor == f"webhook:{webhook_id}"


@pytest.mark.parametrize(
    "webhook_id",
    ["m" * 193, "m" * 5000, "msg_\x00", "msg_\n1", "msg_\x7f"],
    ids=["193 characters", "5000 characters", "NUL", "newline", "DEL"],
)
def test_a_malformed_webhook_id_is_a_401_and_nothing_is_stored(client, webhook_id):
    response = post(client, *signed(support_request(), webhook_id=webhook_id))
    assert response.status_code == 401
    assert response.json() == {
        "error": "malformed webhook-id header: 1 to 192 printable characters"
    }
    assert WebhookEvent.objects.count() == 0


# --- Bodies that are not UTF-8 -----------------------------------------------------------


def signed_bytes(body: bytes, webhook_id: str, secret: str = SECRET) -> tuple[bytes, dict]:
    """Sign raw bytes as a Standard Webhooks sender does (HMAC over the bytes as they are;
    ``standardwebhooks``' Python ``sign`` only takes text)."""
    timestamp = str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
    }
    return body, headers


LATIN_1 = json.dumps(support_request(subject="Café"), ensure_ascii=False).encode("latin-1")


def test_a_correctly_signed_body_that_is_not_utf8_is_a_422_kept_for_inspection(client):
    response = post(client, *signed_bytes(LATIN_1, "msg_latin1"))
    assert response.status_code == 422
    assert response.json() == {"error": "body is not UTF-8", "details": []}
    event = WebhookEvent.objects.get()
    assert (event.webhook_id, event.status, event.error, event.payload) == (
        "msg_latin1",
        "rejected",
        "body is not UTF-8",
        None,
    )
    assert event.raw_body == LATIN_1.decode("utf-8", "replace")
    assert "Caf\ufffd" in event.raw_body


def test_a_body_that_is_not_utf8_with_a_wrong_signature_is_still_a_401(client):
    body, headers = signed_bytes(LATIN_1, "msg_latin1")
    response = post(client, body + b" ", headers)
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_utf8_bodies_signed_as_bytes_verify_as_before(client):
    body = json.dumps(support_request(subject="Café ☕"), ensure_ascii=False).encode()
    assert post(client, *signed_bytes(body, "msg_utf8")).status_code == 202


def test_a_raw_nul_byte_in_a_signed_body_is_a_422_kept_without_it(client):
    body = '{"type": "support.request", "data": {"subject": "a\x00b"}}'
    answer = refused(client, body)
    assert answer == {"error": "body is not JSON", "details": []}
    assert WebhookEvent.objects.get().raw_body == body.replace("\x00", "\ufffd")


# --- Timestamps and dates ----------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        1763717400,
        1763717400.0,
        "1763717400",
        "2026-11-21T09:30:00",
        "2026-11-21",
        "9999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "2099-12-31T23:00:00-12:00",
        "1999-12-31T23:59:59Z",
        "2000-01-01T10:00:00+14:00",
        "0001-01-01T00:00:00Z",
    ],
)
def test_an_envelope_timestamp_processing_cannot_use_is_a_422(client, timestamp):
    answer = refused(client, support_request() | {"timestamp": timestamp})
    assert answer["error"] == "event does not match the contract"
    assert [item["field"] for item in answer["details"]] == ["timestamp"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (usage_daily(date="9999-12-31"), "date"),
        (usage_daily(date="1999-12-31"), "date"),
        (usage_daily(date=1763596800), "date"),
        (usage_daily(date="2026-11-20T00:00:00Z"), "date"),
        (usage_daily(last_login_at="9999-12-31T23:59:59Z"), "last_login_at"),
        (usage_daily(last_login_at=1763664660), "last_login_at"),
        (order_completed(paid_at="9999-12-31T23:59:59Z"), "paid_at"),
        (order_completed(paid_at="2026-11-21T09:30:00"), "paid_at"),
        (entitlement_redeemed(redeemed_at="9999-12-31T23:59:59z"), "redeemed_at"),
        (entitlement_redeemed(redeemed_at=1763717400), "redeemed_at"),
    ],
)
def test_a_date_in_the_data_processing_cannot_use_is_a_422(client, body, field):
    answer = refused(client, body)
    assert [item["field"] for item in answer["details"]] == [field]


# --- Integers beyond their column ------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"requests": BIGINT + 1, "errors": 0}, "requests"),
        ({"requests": BIGINT + 1, "errors": BIGINT + 1}, "requests"),
        ({"requests": 10**30, "errors": 1}, "requests"),
        ({"active_users_1d": INTEGER + 1, "active_users_7d": INTEGER + 1}, "active_users_1d"),
        ({"active_users_7d": INTEGER + 1}, "active_users_7d"),
    ],
)
def test_usage_counts_beyond_their_column_are_a_422(client, data, field):
    answer = refused(client, usage_daily(**data))
    assert field in [item["field"] for item in answer["details"]]
    assert not UsageDaily.objects.exists()


@pytest.mark.parametrize("minutes", [INTEGER + 1, BIGINT, 10**30, 0])
def test_an_error_spike_window_out_of_range_is_a_422(client, minutes):
    answer = refused(client, error_spike(window_minutes=minutes))
    assert [item["field"] for item in answer["details"]] == ["window_minutes"]


# --- Nesting -----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900])
def test_nesting_deeper_than_the_bound_is_a_422_kept_as_raw_text(client, depth):
    body = json.dumps(support_request(extra=nested(depth - 2)))  # in data, in the envelope
    answer = refused(client, body)
    error = "body is nested deeper than 32 levels"
    assert answer == {"error": error, "details": []}
    event = WebhookEvent.objects.get()
    assert (event.error, event.payload, event.raw_body) == (error, None, body)


def test_nesting_at_the_bound_is_accepted_and_processed(customer):
    event = deliver(support_request(extra=nested(MAX_DEPTH - 2)))
    assert event.status == "processed"
    assert event.payload["data"]["extra"] == nested(MAX_DEPTH - 2)


def test_the_page_of_an_event_stored_with_a_deep_payload_renders_in_bounded_time(client, ops_lead):
    """Events stored before the bound (or by anything else) still have a usable page."""
    with acting_as("test:fixture"):
        event = WebhookEvent.objects.create(
            webhook_id="msg_deep",
            status=WebhookEvent.Status.REJECTED,
            payload={"deep": nested(600), "wide": ["x" * 100] * 2000},
        )
    client.force_login(ops_lead)
    started = time.perf_counter()
    response = client.get(reverse("admin:support_webhookevent_change", args=[event.pk]))
    spent = time.perf_counter() - started
    assert response.status_code == 200
    # Indented, a payload grows with the square of its depth (this one to 3.7 MB, twice,
    # highlighted); the page's size is what its rendering costs.
    assert len(response.content) < 200_000
    assert spent < 10, f"{spent:.1f} s"
    page = response.content.decode()
    assert "msg_deep" in page
    assert "Payload shown up to its first 20,000 characters (of 209,220)" in page


def test_the_page_of_an_ordinary_event_shows_its_payload_in_full(client, ops_lead):
    with acting_as("test:fixture"):
        event = WebhookEvent.objects.create(
            webhook_id="msg_small", payload=support_request(subject="<b>Export</b>")
        )
    client.force_login(ops_lead)
    page = client.get(reverse("admin:support_webhookevent_change", args=[event.pk]))
    text = page.content.decode()
    assert "&lt;b&gt;Export&lt;/b&gt;" in text
    assert "<b>Export</b>" not in text
    assert "payload shown up to" not in text


# --- Every field is bounded, and every body at the edges is processed ---------------------


def _fields(schema):
    for name, field in schema.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _fields(field.annotation)
        else:
            yield f"{schema.__name__}.{name}", field


def _bounded(field) -> bool:
    """Whether validation bounds the field to what a column, Python and PostgreSQL hold."""
    kinds = {type(item).__name__ for item in field.metadata}
    validators = {getattr(item, "func", None) for item in field.metadata}
    annotation = field.annotation
    if get_origin(annotation) in (Union, UnionType) and type(None) in get_args(annotation):
        # Null or a value: bounded as the value is (a null is nothing to hold).
        (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        if get_origin(annotation) is Annotated:
            annotation, *extra = get_args(annotation)
            validators |= {getattr(item, "func", None) for item in extra}
    if get_origin(annotation) is list:
        # A list: of a bounded length, each item bounded (the CRM's integrations).
        (item,) = get_args(annotation)
        inner = FieldInfo.from_annotation(item)
        return "MaxLen" in kinds and _bounded(inner)
    if get_origin(annotation) is Literal or annotation is EmailStr:  # email: 254 at most
        return True
    if annotation is str:
        return "MaxLen" in kinds or any(getattr(m, "pattern", None) for m in field.metadata)
    if annotation in (int, float):
        finite = annotation is int or any(
            getattr(m, "allow_inf_nan", True) is False for m in field.metadata
        )
        return "Le" in kinds and finite
    if annotation is Decimal:
        return any(getattr(m, "max_digits", None) for m in field.metadata)
    if annotation is dt.date:
        return bool(validators & {webhook_schemas._date_in_range, optional_date_in_range})
    # A moment (or null): zoned ISO 8601 text within the years processing handles.
    return bool(
        validators & {webhook_schemas._moment_in_range, webhook_schemas._optional_moment_in_range}
    )


@pytest.mark.parametrize(
    ("name", "field"),
    [
        item
        for envelope, schemas in webhook_schemas.SOURCE_SCHEMAS.values()
        for schema in (envelope, *schemas.values())
        for item in _fields(schema)
        if not item[0].endswith("Envelope.data")  # validated as the event type's schema
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_field_of_every_event_is_bounded(name, field):
    assert _bounded(field), f"{name} accepts values processing may not handle"


LONG_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
assert len(LONG_EMAIL) == 254

EARLIEST = ["2000-01-01T00:00:00Z", "2000-01-01T14:00:00+14:00", "2000-01-01T00:00:00.000z"]
LATEST = [
    "2099-12-31T23:59:59.999999Z",
    "2099-12-31T11:59:59-12:00",
    "2099-12-31t23:59:59z",
    "2099-12-31 23:59:59+00:00",
]
MOMENTS = [*EARLIEST, *LATEST, "2026-11-21T09:30:00z", "2026-11-21T10:30:00+0100"]


def _edges():
    for at in MOMENTS:
        yield f"support.request at {at}", support_request(severity="urgent") | {"timestamp": at}
        yield f"error spike at {at}", error_spike() | {"timestamp": at}
        yield f"usage at {at}", usage_daily(last_login_at=at) | {"timestamp": at}
        yield f"order paid at {at}", order_completed(paid_at=at) | {"timestamp": at}
        yield f"redemption at {at}", entitlement_redeemed(redeemed_at=at) | {"timestamp": at}
    yield (
        "longest support request",
        support_request(
            tenant_id="t" * 100,
            user={"email": LONG_EMAIL, "name": "n" * 200},
            subject="s" * 200,
            message="m" * 20_000,
            page_url="u" * 2000,
            extra=nested(MAX_DEPTH - 2),
        ),
    )
    yield (
        "shortest support request",
        support_request(tenant_id="t", user={"email": "a@b.co"}, subject="s", message=""),
    )
    yield (
        "error spike, longest",
        error_spike(tenant_id="t" * 100, fingerprint="f" * 200, sample_message="x" * 5000),
    )
    for rate in (0, 1, 0.0, 1.0, 5e-324):
        yield f"error rate {rate}", error_spike(error_rate=rate)
    for minutes in (1, INTEGER):
        yield f"window of {minutes} minutes", error_spike(window_minutes=minutes)
    yield (
        "usage, largest counts",
        usage_daily(
            active_users_1d=INTEGER, active_users_7d=INTEGER, requests=BIGINT, errors=BIGINT
        ),
    )
    yield (
        "usage, zero counts",
        usage_daily(active_users_1d=0, active_users_7d=0, requests=0, errors=0, last_login_at=None),
    )
    for day in ("2000-01-01", "2099-12-31", "2028-02-29"):
        yield f"usage of {day}", usage_daily(date=day)
    yield (
        "order, longest",
        order_completed(
            tenant_id="t" * 100,
            order_id="o" * 100,
            sku="S" * 64,
            quantity=100_000,
            amount="9999999999.99",
        ),
    )
    yield "order, smallest amount", order_completed(amount="0", order_id="ord_0")
    yield "order, amount as a number", order_completed(amount=12.5, order_id="ord_n")
    yield (
        "redemption, longest",
        entitlement_redeemed(tenant_id="t" * 100, code="C" * 64, user_email=LONG_EMAIL),
    )


EDGES = dict(_edges())


@pytest.fixture
def product(db) -> Product:
    with acting_as("test:fixture"):
        return builders.product(sku="SEAT-PRO-1Y", name="Pro seat, 1 year", term_days=365)


@pytest.mark.parametrize("name", list(EDGES))
def test_every_body_at_the_edges_of_the_schemas_is_processed(customer, product, name):
    event = deliver(EDGES[name], webhook_id="msg_edge")
    assert (event.status, event.error) == ("processed", "")


@pytest.mark.parametrize("at", MOMENTS)
def test_an_accepted_timestamp_means_the_same_moment_in_processing(customer, at):
    deliver(support_request() | {"timestamp": at}, webhook_id="msg_at")
    expected = dt.datetime.fromisoformat(at.upper().replace("Z", "+00:00"))
    ticket = Ticket.objects.get()
    assert ticket.created_at == expected
    # High, Growth: four business hours from that moment (support.sla).
    assert ticket.first_response_due_at == sla.business_deadline(
        expected, first_response("high"), business_hours()
    )


@pytest.mark.parametrize("at", [LATEST[0], EARLIEST[0]])
def test_a_seat_redeemed_at_the_edges_is_redeemed(customer, product, at):
    with acting_as("test:fixture"):
        order = builders.order(
            external_id="ord_seat",
            customer=customer,
            product=product,
            amount="400.00",
            paid_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        )
        [seat] = entitlements_issue(
            order=order, product=product, customer=customer, quantity=1, reason="test order"
        )
    event = deliver(entitlement_redeemed(code=seat.code, redeemed_at=at))
    assert (event.status, event.error) == ("processed", "")
