"""The events of ``contracts/webhooks.md`` as schemas: what a valid event looks like.

Unknown extra fields are ignored, never an error (the contract says so).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, model_validator

__all__ = ["EVENT_SCHEMAS", "Envelope", "ValidationError", "parse_event"]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


Tenant = Annotated[str, Field(min_length=1, max_length=100)]


class SupportUser(_Schema):
    email: EmailStr
    name: Annotated[str, Field(max_length=200)] = ""


class SupportRequest(_Schema):
    tenant_id: Tenant
    user: SupportUser
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    message: Annotated[str, Field(max_length=20_000)]
    category: Literal["access", "billing", "bug", "how-to", "other"] = "other"
    severity: Literal["low", "normal", "high", "urgent"] = "normal"
    page_url: Annotated[str, Field(max_length=2000)] = ""


class ErrorSpike(_Schema):
    tenant_id: Tenant
    fingerprint: Annotated[str, Field(min_length=1, max_length=200)]
    error_rate: Annotated[float, Field(ge=0, le=1)]
    window_minutes: Annotated[int, Field(ge=1)]
    sample_message: Annotated[str, Field(max_length=5000)] = ""


class UsageDailyReport(_Schema):
    tenant_id: Tenant
    date: dt.date
    active_users_1d: Annotated[int, Field(ge=0)]
    active_users_7d: Annotated[int, Field(ge=0)]
    last_login_at: dt.datetime | None
    requests: Annotated[int, Field(ge=0)]
    errors: Annotated[int, Field(ge=0)]

    @model_validator(mode="after")
    def _consistent(self):
        if self.errors > self.requests:
            raise ValueError("errors must not exceed requests")
        if self.active_users_7d < self.active_users_1d:
            raise ValueError("active_users_7d must be at least active_users_1d")
        return self


class OrderCompleted(_Schema):
    tenant_id: Tenant
    order_id: Annotated[str, Field(min_length=1, max_length=100)]
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(ge=1, le=100_000)]
    amount: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    paid_at: dt.datetime


class EntitlementRedeemed(_Schema):
    tenant_id: Tenant
    code: Annotated[str, Field(min_length=1, max_length=64)]
    user_email: EmailStr
    redeemed_at: dt.datetime


EVENT_SCHEMAS: dict[str, type[_Schema]] = {
    "support.request": SupportRequest,
    "incident.error_spike": ErrorSpike,
    "usage.daily": UsageDailyReport,
    "order.completed": OrderCompleted,
    "entitlement.redeemed": EntitlementRedeemed,
}


class Envelope(_Schema):
    type: Literal[tuple(EVENT_SCHEMAS)]  # type: ignore[valid-type]
    timestamp: dt.datetime
    data: dict


def parse_event(payload: object) -> tuple[Envelope, _Schema]:
    """Validate an envelope and its data; raises ``ValidationError`` with the details."""
    envelope = Envelope.model_validate(payload)
    return envelope, EVENT_SCHEMAS[envelope.type].model_validate(envelope.data)
