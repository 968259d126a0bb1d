"""What the schemas of the contracts' payloads are made of (pydantic): moments, dates and
bounds that every layer's schema shares, so a field of one contract accepts exactly what
the same kind of field of another does.

A moment is an ISO 8601 text with a time zone (``Z``, ``z`` or an offset; not a Unix
number, not a naive time) between 2000 and 2099 in UTC, so a deadline or a ``D-28`` stays
a date Python and PostgreSQL can hold; a day is ``YYYY-MM-DD`` in the same years. The
product's webhooks (``support.webhook_schemas``) and the CRM's accounts and contracts
(``customers.crm``) are built from these.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)  # exclusive
INTEGER_MAX = 2**31 - 1  # PostgreSQL integer (PositiveIntegerField)
BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint (PositiveBigIntegerField)

# A calendar date first: pydantic alone would also read "1763717400" as Unix seconds.
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_datetime_text(value: object) -> object:
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise ValueError("must be an ISO 8601 date and time, e.g. 2026-11-21T09:30:00Z")
    return value


def iso_date_text(value: object) -> object:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


def moment_in_range(value: dt.datetime) -> dt.datetime:
    if not EARLIEST <= value < END:
        raise ValueError("must be between 2000-01-01 and 2099-12-31 (UTC)")
    return value


def date_in_range(value: dt.date) -> dt.date:
    if not EARLIEST.date() <= value < END.date():
        raise ValueError("must be between 2000-01-01 and 2099-12-31")
    return value


Moment = Annotated[
    AwareDatetime, BeforeValidator(iso_datetime_text), AfterValidator(moment_in_range)
]


def optional_iso_datetime_text(value: object) -> object:
    return value if value is None else iso_datetime_text(value)


def optional_moment_in_range(value: dt.datetime | None) -> dt.datetime | None:
    return value if value is None else moment_in_range(value)


# Null or a moment, with the errors of a moment (not of each member of a union).
OptionalMoment = Annotated[
    AwareDatetime | None,
    BeforeValidator(optional_iso_datetime_text),
    AfterValidator(optional_moment_in_range),
]
Day = Annotated[dt.date, BeforeValidator(iso_date_text), AfterValidator(date_in_range)]


def optional_iso_date_text(value: object) -> object:
    return value if value is None else iso_date_text(value)


def optional_date_in_range(value: dt.date | None) -> dt.date | None:
    return value if value is None else date_in_range(value)


# Null or a day, with the errors of a day.
OptionalDay = Annotated[
    dt.date | None, BeforeValidator(optional_iso_date_text), AfterValidator(optional_date_in_range)
]


class Schema(BaseModel):
    """A payload's schema: unknown extra fields are ignored, never an error, and text has
    its surrounding whitespace removed before its length is checked."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
