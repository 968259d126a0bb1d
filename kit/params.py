"""One way of reading what a person can type into a URL: ids in the path and
query-string parameters of the custom views.

A value is either understood or refused, never a 500:

- an id in the path that is not even an id of the model (``abc``, ``1e400``, a NUL, an
  integer beyond the column) is a 404, as a row that does not exist is;
- a query-string parameter that is malformed or out of range raises ``ParamError``, a
  ``django.core.exceptions.BadRequest``: uncaught it is Django's 400 page; a view that can
  show its page again catches it and shows ``str(error)`` as a message (it names the
  parameter and what it takes).

Dates are bounded to ``DATE_MIN``..``DATE_MAX`` (2000-01-01..2100-12-31): far inside
``datetime.date``'s range, so date arithmetic on a parameter (a day, a month or a year
either side, ±400 days) never overflows, and far outside any date this data has.
Page numbers are bounded by ``PAGE_MAX``: a query that skips more rows than that many
pages is refused by PostgreSQL (OFFSET is a bigint) or reads the whole table.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import BadRequest, ValidationError
from django.db import models
from django.http import Http404
from django.shortcuts import get_object_or_404

from kit.months import month_start

DATE_MIN = dt.date(2000, 1, 1)
MONTH_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}")
DATE_MAX = dt.date(2100, 12, 31)
PAGE_MAX = 1000
# Longer than any value a page offers (an id, a date, a choice); a longer one is refused
# before it is parsed or shown back.
VALUE_MAX_LENGTH = 200


class ParamError(BadRequest):
    """A query-string parameter that is not understood; ``str()`` says which and why."""


def pk_or_none(model: type[models.Model], raw_id: Any) -> Any:
    """``raw_id`` as a value of ``model``'s primary key, or None when it cannot be one
    (not a number for an integer key, beyond the column, a NUL, absurdly long)."""
    field = model._meta.pk
    try:
        pk = field.to_python(raw_id)
    except (ValidationError, TypeError, ValueError, OverflowError):
        return None
    if pk is None or pk == "":
        return None
    if isinstance(pk, str) and ("\x00" in pk or len(pk) > VALUE_MAX_LENGTH):
        return None
    if isinstance(field, models.IntegerField):
        low, high = _integer_range(field)
        if not low <= pk <= high:
            return None
    return pk


def pk_or_404(model: type[models.Model], raw_id: Any) -> Any:
    """``raw_id`` as a value of ``model``'s primary key, or a 404 when it cannot be one."""
    pk = pk_or_none(model, raw_id)
    if pk is None:
        raise Http404(f"No {model._meta.verbose_name} with that id.")
    return pk


def object_or_404(
    model: type[models.Model], raw_id: Any, queryset: models.QuerySet | None = None
) -> models.Model:
    """The row of ``model`` (from ``queryset`` if given) whose id is ``raw_id``; a 404
    when there is none or ``raw_id`` is not an id at all (the admin's
    ``<path:object_id>`` routes take any text)."""
    pk = pk_or_404(model, raw_id)
    return get_object_or_404(queryset if queryset is not None else model._default_manager, pk=pk)


def _integer_range(field: models.Field) -> tuple[int, int]:
    from django.db import connection

    low, high = connection.ops.integer_field_range(field.get_internal_type())
    return (low if low is not None else -(2**63)), (high if high is not None else 2**63 - 1)


def _raw(request, name: str) -> str | None:
    """The parameter's text, None when absent or empty; refused when absurdly long or
    holding a NUL (nothing a page offers, and PostgreSQL refuses NUL in text)."""
    value = request.GET.get(name)
    if value is None or value.strip() == "":
        return None
    if len(value) > VALUE_MAX_LENGTH or "\x00" in value:
        raise ParamError(f"“{name}” is not understood.")
    return value.strip()


def int_param(request, name: str, default: int | None, *, min: int, max: int) -> int | None:
    """``?name=`` as a whole number in ``min``..``max``; ``default`` when absent."""
    value = _raw(request, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ParamError(f"“{name}” must be a whole number.") from None
    if not min <= number <= max:
        raise ParamError(f"“{name}” must be between {min} and {max}.")
    return number


def page_param(request, name: str = "page") -> int:
    """A page number: what is not a positive whole number is page 1 (a stale or edited
    link still shows a page), and past ``PAGE_MAX`` is ``PAGE_MAX`` (an empty page)."""
    try:
        number = int(request.GET.get(name) or 1)
    except ValueError:
        return 1
    return min(max(number, 1), PAGE_MAX)


def parse_date(
    value: str, *, name: str = "date", min: dt.date = DATE_MIN, max: dt.date = DATE_MAX
) -> dt.date:
    """``value`` (YYYY-MM-DD) as a date in ``min``..``max``, else ``ParamError``."""
    try:
        date = dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ParamError(f"“{name}” must be a date (YYYY-MM-DD).") from None
    if not min <= date <= max:
        raise ParamError(f"“{name}” must be a date from {min:%Y-%m-%d} to {max:%Y-%m-%d}.")
    return date


def date_param(
    request,
    name: str,
    default: dt.date | None,
    *,
    min: dt.date = DATE_MIN,
    max: dt.date = DATE_MAX,
) -> dt.date | None:
    """``?name=`` as a date (YYYY-MM-DD) in ``min``..``max``; ``default`` when absent."""
    value = _raw(request, name)
    if value is None:
        return default
    return parse_date(value, name=name, min=min, max=max)


def parse_month(
    value: str,
    *,
    name: str = "month",
    min: dt.date = DATE_MIN,
    max: dt.date = DATE_MAX,
) -> dt.date:
    """``value`` (YYYY-MM, ASCII digits) as the first day of that month, within
    ``min``..``max``. strptime alone would also take ``2026-1`` and other scripts' digits."""
    try:
        if not MONTH_PATTERN.fullmatch(value):
            raise ValueError
        first = dt.datetime.strptime(value, "%Y-%m").date()
    except (TypeError, ValueError):
        raise ParamError(f"“{name}” must be a month (YYYY-MM).") from None
    if not month_start(min) <= first <= max:
        raise ParamError(f"“{name}” must be a month from {min:%Y-%m} to {max:%Y-%m}.")
    return first


def month_param(
    request,
    name: str,
    default: dt.date | None,
    *,
    min: dt.date = DATE_MIN,
    max: dt.date = DATE_MAX,
) -> dt.date | None:
    """``?name=`` (YYYY-MM) as the first day of that month; ``default`` when absent."""
    value = _raw(request, name)
    if value is None:
        return default
    return parse_month(value, name=name, min=min, max=max)


def choice_param(request, name: str, choices: Iterable[str], default: str | None) -> str | None:
    """``?name=`` when it is one of ``choices``; ``default`` when absent."""
    value = _raw(request, name)
    if value is None:
        return default
    if value not in set(choices):
        raise ParamError(f"“{name}” is not one of the choices this page offers.")
    return value


def date_in_range(value: dt.date | None) -> None:
    """A form field validator: a date within ``DATE_MIN``..``DATE_MAX`` (for the
    FilterSets' and forms' date fields, whose values are then computed with)."""
    if value is not None and not DATE_MIN <= value <= DATE_MAX:
        raise ValidationError(
            f"Give a date from {DATE_MIN:%Y-%m-%d} to {DATE_MAX:%Y-%m-%d}.", code="date_range"
        )
