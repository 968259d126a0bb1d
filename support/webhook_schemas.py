"""The events of ``docs/contracts/webhooks.md`` as schemas: what a valid event looks like;
and each source's envelope (``SOURCE_SCHEMAS``: the product's events, and the CRM's,
whose data schemas are ``customers.crm``'s).

Unknown extra fields are ignored, never an error (the contract says so).

A schema accepts exactly what processing can handle (``kit.schemas``): a moment is an ISO
8601 text with a time zone (``Z``, ``z`` or an offset; not a Unix number, not a naive
time) between 2000 and 2099 in UTC, so a deadline or a ``D-28`` stays a date Python and
PostgreSQL can hold; an integer fits its column; a string fits its column. Handlers read
moments from the parsed event (``happened_at``), never from the raw payload again.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import EmailStr, Field, ValidationError, create_model, model_validator

from customers.crm import CRM_EVENT_SCHEMAS
from kit.schemas import (
    BIGINT_MAX,
    INTEGER_MAX,
    Day,
    Moment,
    OptionalMoment,
    date_in_range,
    moment_in_range,
    optional_moment_in_range,
)
from kit.schemas import Schema as _Schema

__all__ = [
    "EVENT_SCHEMAS",
    "SOURCE_SCHEMAS",
    "Envelope",
    "ValidationError",
    "happened_at",
    "parse_event",
]

# The bounds every moment and date is checked against (tests/support/test_webhook_bounds.py
# finds them on each field).
_moment_in_range = moment_in_range
_optional_moment_in_range = optional_moment_in_range
_date_in_range = date_in_range


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
    error_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
    window_minutes: Annotated[int, Field(ge=1, le=INTEGER_MAX)]
    sample_message: Annotated[str, Field(max_length=5000)] = ""


class UsageDailyReport(_Schema):
    tenant_id: Tenant
    date: Day
    active_users_1d: Annotated[int, Field(ge=0, le=INTEGER_MAX)]
    active_users_7d: Annotated[int, Field(ge=0, le=INTEGER_MAX)]
    last_login_at: OptionalMoment
    requests: Annotated[int, Field(ge=0, le=BIGINT_MAX)]
    errors: Annotated[int, Field(ge=0, le=BIGINT_MAX)]

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
    paid_at: Moment


class EntitlementRedeemed(_Schema):
    tenant_id: Tenant
    code: Annotated[str, Field(min_length=1, max_length=64)]
    user_email: EmailStr
    redeemed_at: Moment


EVENT_SCHEMAS: dict[str, type[_Schema]] = {
    "support.request": SupportRequest,
    "incident.error_spike": ErrorSpike,
    "usage.daily": UsageDailyReport,
    "order.completed": OrderCompleted,
    "entitlement.redeemed": EntitlementRedeemed,
}


def _envelope(name: str, schemas: dict[str, type[_Schema]]) -> type[_Schema]:
    """The envelope of one source's events: ``type`` one of its event types."""
    return create_model(
        name,
        __base__=_Schema,
        type=(Literal[tuple(schemas)], ...),
        timestamp=(Moment, ...),
        data=(dict, ...),
    )


# Each source posts to its own endpoint, signed with its own secrets, and sends only its
# own event types (support.webhooks.SOURCES): the product's type at the CRM's endpoint is
# a 422, as an unknown type is.
Envelope = _envelope("Envelope", EVENT_SCHEMAS)
SOURCE_SCHEMAS: dict[str, tuple[type[_Schema], dict[str, type[_Schema]]]] = {
    "product": (Envelope, EVENT_SCHEMAS),
    "crm": (_envelope("CrmEnvelope", CRM_EVENT_SCHEMAS), CRM_EVENT_SCHEMAS),
}


def parse_event(payload: object, source: str = "product") -> tuple[_Schema, _Schema]:
    """Validate an envelope of ``source`` and its data; raises ``ValidationError`` with
    the details."""
    envelope_schema, schemas = SOURCE_SCHEMAS[source]
    envelope = envelope_schema.model_validate(payload)
    return envelope, schemas[envelope.type].model_validate(envelope.data)


def happened_at(payload: object) -> dt.datetime:
    """When an (accepted) event happened in the product: its envelope's timestamp, read
    as validation read it."""
    return Envelope.model_validate(payload).timestamp
