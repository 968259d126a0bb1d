"""A case's age, the one way every page counts it (docs/product.md#exceptions): from when
its problem began (``Case.began_at``: a billing finding from its month or its invoice's
due date, any other case from its opening) to its closing, or now while it is open.

- ``age_text``: "3 days", as the inbox, the case list and the home page show it;
- ``began_at``: ``Case.began_at`` as a query expression, to filter and order by age;
- ``age_q``: cases older and/or younger than a number of days (the inbox's age filters,
  the home page's age buckets);
- ``began_at_sql``: the same in hand-written SQL over the cases or their history (the
  scorecard's times to resolve).
"""

from __future__ import annotations

import datetime as dt

from django.db.models import DateField, DateTimeField, F, Q, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Least, NullIf
from django.db.models.lookups import GreaterThan, LessThanOrEqual
from django.utils import timezone
from django.utils.timesince import timesince

from support.models import Case


def age_text(case: Case, now: dt.datetime | None = None) -> str:
    """How long the case has waited, or waited until it closed: "3 days", "2 weeks"."""
    end = case.closed_at or now or timezone.now()
    return timesince(case.began_at, end, depth=1)


def began_at():
    """``Case.began_at`` in the database: the day in ``details["since"]``, else the first
    day of ``period``, at midnight UTC, when earlier than ``opened_at``; else
    ``opened_at``. (PostgreSQL's LEAST passes over a NULL.)"""
    since = Cast(NullIf(KT("details__since"), Value("")), DateField())
    day = Coalesce(since, F("period"))
    # The connection's time zone is UTC (Django's, with USE_TZ): midnight UTC.
    return Least(Cast(day, DateTimeField()), F("opened_at"), output_field=DateTimeField())


def age_q(*, now: dt.datetime, older_than: int | None = None, younger_than: int | None = None) -> Q:
    """Cases at least ``older_than`` days old and less than ``younger_than`` days old
    (either may be None): a case is older than N days or younger, never both."""
    q = Q()
    if older_than is not None:
        q &= Q(LessThanOrEqual(began_at(), now - dt.timedelta(days=older_than)))
    if younger_than is not None:
        q &= Q(GreaterThan(began_at(), now - dt.timedelta(days=younger_than)))
    return q


def began_at_sql(alias: str) -> str:
    """``began_at`` in SQL over a table of cases (``support_case`` or its history) named
    ``alias`` in the query."""
    day = f"coalesce(nullif({alias}.details ->> 'since', '')::date, {alias}.period)"
    return f"least(({day})::timestamp AT TIME ZONE 'UTC', {alias}.opened_at)"
