"""A product-side sender: the events the product sends (support requests, completed orders,
redemptions) signed exactly as the contract says, with `standardwebhooks`."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from standardwebhooks.webhooks import Webhook

SECRET = "whsec_b3BzZGVzay10ZXN0LXdlYmhvb2stc2VjcmV0"
OLD_SECRET = "whsec_b2xkLXJvdGF0ZWQtb3V0LXNlY3JldC1mb3ItdGVzdHM="
URL = "/webhooks/product/"
# When the redemption in ``entitlement_redeemed`` happened.
REDEEMED_AT = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)


def support_request(tenant_id="acme-7f3a", **data) -> dict:
    return {
        "type": "support.request",
        "timestamp": "2026-11-21T09:30:00Z",
        "data": {
            "tenant_id": tenant_id,
            "user": {"email": "jo@acme.com", "name": "Jo Doe"},
            "subject": "Cannot export CSV",
            "message": "The export button spins forever.",
            "category": "bug",
            "severity": "high",
            **data,
        },
    }


def order_completed(**data) -> dict:
    return {
        "type": "order.completed",
        "timestamp": "2026-11-21T09:30:05Z",
        "data": {
            "tenant_id": "acme-7f3a",
            "order_id": "ord_1001",
            "sku": "SEAT-PRO-1Y",
            "quantity": 3,
            "amount": "1200.00",
            "currency": "EUR",
            "paid_at": "2026-11-21T09:30:00Z",
            **data,
        },
    }


def entitlement_redeemed(code: str, **data) -> dict:
    return {
        "type": "entitlement.redeemed",
        "timestamp": "2026-11-21T09:30:01Z",
        "data": {
            "tenant_id": "acme-7f3a",
            "code": code,
            "user_email": "ann@acme.com",
            "redeemed_at": "2026-11-21T09:30:00Z",
            **data,
        },
    }


def signed(
    body: bytes | str | dict,
    *,
    secret: str = SECRET,
    webhook_id: str | None = None,
    at: dt.datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    if isinstance(body, dict):
        body = json.dumps(body)
    text = body if isinstance(body, str) else body.decode()
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    at = at or dt.datetime.now(dt.UTC)
    signature = Webhook(secret).sign(webhook_id, at, text)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
    return text.encode(), headers


def post(client, body: bytes, headers: dict[str, str]):
    return client.post(
        URL,
        data=body,
        content_type="application/json",
        headers=headers,
    )


def deliver(payload: dict, webhook_id: str = "msg_1"):
    """Receive a signed event as the endpoint does (it must be accepted), then process it
    as the worker does; returns the stored event."""
    from support.webhooks import event_process, event_receive

    body, headers = signed(payload, webhook_id=webhook_id)
    intake = event_receive(body=body, headers=headers)
    assert intake.status == 202, intake.body
    event_process(event_id=intake.event.pk)
    intake.event.refresh_from_db()
    return intake.event
