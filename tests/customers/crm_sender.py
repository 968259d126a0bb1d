"""A CRM-side sender: the accounts and contracts the CRM pushes (docs/contracts/crm.md),
signed with the CRM's own secret exactly as the product's events are
(tests.support.sender.signed)."""

from __future__ import annotations

from tests.support.sender import signed

CRM_SECRET = "whsec_b3BzZGVzay10ZXN0LWNybS13ZWJob29rLXNlY3JldA=="
OLD_CRM_SECRET = "whsec_b2xkLXJvdGF0ZWQtb3V0LWNybS1zZWNyZXQtZm9yLXRlc3Rz"
CRM_URL = "/webhooks/crm/"
ACCOUNT = "001Dn00000Acme"
CONTRACT = "800Dn00000C42"


def account(**data) -> dict:
    """Acme as the CRM has it, managed by Alice (alice@opsdesk.test)."""
    return {
        "type": "crm.account.upserted",
        "timestamp": "2026-11-21T09:30:00Z",
        "data": {
            "crm_id": ACCOUNT,
            "name": "Acme Corp",
            "tenant_id": "acme-7f3a",
            "account_manager_email": "alice@opsdesk.test",
            "status": "active",
            "updated_at": "2026-11-21T09:29:41+00:00",
            **data,
        },
    }


def contract(**data) -> dict:
    """Acme's growth contract as the CRM signed it: 50 seats, SSO and Slack, active."""
    return {
        "type": "crm.contract.upserted",
        "timestamp": "2026-11-21T09:31:00Z",
        "data": {
            "crm_contract_id": CONTRACT,
            "crm_account_id": ACCOUNT,
            "plan": "growth",
            "seats": 50,
            "monthly_fee": "1200.00",
            "price_per_extra_seat": "25.00",
            "currency": "EUR",
            "start_date": "2026-12-01",
            "end_date": "2027-11-30",
            "status": "active",
            "integrations": ["sso", "slack"],
            "updated_at": "2026-11-21T09:30:58+00:00",
            **data,
        },
    }


def crm_signed(payload, **options) -> tuple[bytes, dict[str, str]]:
    return signed(payload, secret=options.pop("secret", CRM_SECRET), **options)


def crm_post(client, body: bytes, headers: dict[str, str]):
    return client.post(CRM_URL, data=body, content_type="application/json", headers=headers)


def crm_receive(payload: dict, webhook_id: str):
    """Receive a signed CRM event as the endpoint does (it must be accepted); the stored
    event, still pending."""
    from support.webhooks import event_receive

    body, headers = crm_signed(payload, webhook_id=webhook_id)
    intake = event_receive(body=body, headers=headers, source="crm")
    assert intake.status == 202, intake.body
    return intake.event


def crm_deliver(payload: dict, webhook_id: str):
    """Receive a signed CRM event, then process it as the worker does; the stored event."""
    from support.webhooks import event_process

    event = crm_receive(payload, webhook_id)
    event_process(event_id=event.pk)
    event.refresh_from_db()
    return event
