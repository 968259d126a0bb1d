"""The events of ``docs/contracts/webhooks.md`` as schemas: what a valid event looks like.

Unknown extra fields are ignored, never an error (the contract says so).

A schema accepts exactly what processing can handle: a moment is an ISO 8601 text with
a time zone (``Z``, ``z`` or an offset; not a Unix number, not a naive time) between
2000 and 2099 in UTC, so a deadline or a ``D-28`` stays a date Python and PostgreSQL
can hold; an integer fits its column; a string fits its column. Handlers read moments
from the parsed event (``happened_at``), never from the raw payload again.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    model_validator,
)

__all__ = ["EVENT_SCHEMAS", "Envelope", "ValidationError", "happened_at", "parse_event"]

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)  # exclusive
INTEGER_MAX = 2**31 - 1  # PostgreSQL integer (PositiveIntegerField)
BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint (PositiveBigIntegerField)

# A calendar date first: pydantic alone would also read "1763717400" as Unix seconds.
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_datetime_text(value: object) -> object:
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise ValueError("must be an ISO 8601 date and time, e.g. 2026-11-21T09:30:00Z")
    return value


def _iso_date_text(value: object) -> object:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


def _moment_in_range(value: dt.datetime) -> dt.datetime:
    if not EARLIEST <= value < END:
        raise ValueError("must be between 2000-01-01 and 2099-12-31 (UTC)")
    return value


def _date_in_range(value: dt.date) -> dt.date:
    if not EARLIEST.date() <= value < END.date():
        raise ValueError("must be between 2000-01-01 and 2099-12-31")
    return value


Moment = Annotated[
    AwareDatetime, BeforeValidator(_iso_datetime_text), AfterValidator(_moment_in_range)
]


def _optional_iso_datetime_text(value: object) -> object:
    return value if value is None else _iso_datetime_text(value)


def _optional_moment_in_range(value: dt.datetime | None) -> dt.datetime | None:
    return value if value is None else _moment_in_range(value)


# Null or a moment, with the errors of a moment (not of each member of a union).
OptionalMoment = Annotated[
    AwareDatetime | None,
    BeforeValidator(_optional_iso_datetime_text),
    AfterValidator(_optional_moment_in_range),
]
Day = Annotated[dt.date, BeforeValidator(_iso_date_text), AfterValidator(_date_in_range)]


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


class Envelope(_Schema):
    type: Literal[tuple(EVENT_SCHEMAS)]  # type: ignore[valid-type]
    timestamp: Moment
    data: dict


def parse_event(payload: object) -> tuple[Envelope, _Schema]:
    """Validate an envelope and its data; raises ``ValidationError`` with the details."""
    envelope = Envelope.model_validate(payload)
    return envelope, EVENT_SCHEMAS[envelope.type].model_validate(envelope.data)


def happened_at(payload: object) -> dt.datetime:
    """When an (accepted) event happened in the product: its envelope's timestamp, read
    as validation read it."""
    return Envelope.model_validate(payload).timestamp
