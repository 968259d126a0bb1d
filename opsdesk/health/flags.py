"""Customer health: the figures and flags of the daily digest
(docs/product.md#customer-health-and-the-daily-digest).

A digest dated D covers usage up to D-1. ``customer_health`` reads every customer's
figures in a fixed number of queries; the baselines (median and MAD of the previous
days' error rates) are aggregated in PostgreSQL. Each flag is one pure rule function
over those figures, so the customer page's chart marks its days with the same rules.
Thresholds are settings (``OPSDESK_HEALTH_*``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from customers.models import Contract, Customer, UsageDaily
from customers.selectors import renewal_is_soon
from support.models import Ticket

# Scales the MAD to a standard deviation for normally distributed rates.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Flag:
    code: str  # "error_rate" | "usage_drop" | "dormant" | "no_data" | "renewal_soon" | ...
    label: str  # short, e.g. "Error-rate anomaly"
    reason: str  # the one line the email shows, with the baseline and the numbers


@dataclass(frozen=True)
class UsageDay:
    """One customer's reported usage of one day, with what the rules compare it with:
    WAU seven days earlier, and the median, MAD and number of the error rates of the
    previous ``OPSDESK_HEALTH_BASELINE_DAYS`` days (days without requests have none)."""

    customer_id: int
    date: dt.date
    wau: int
    wau_week_ago: int | None
    requests: int
    errors: int
    baseline_median: float | None
    baseline_mad: float | None
    baseline_days: int

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def wau_change(self) -> float | None:
        """The change of WAU on the week as a fraction (-0.35 is -35%); None from 0."""
        if not self.wau_week_ago:
            return None
        return (self.wau - self.wau_week_ago) / self.wau_week_ago


@dataclass(frozen=True)
class CustomerHealth:
    customer_id: int
    name: str
    external_id: str
    account_manager_id: int | None
    wau: int | None
    wau_week_ago: int | None
    wau_change: float | None  # fraction, -0.35 = -35%
    last_login_at: dt.datetime | None
    requests: int | None
    errors: int | None
    error_rate: float | None
    contract_end: dt.date | None
    urgent_open_tickets: int
    flags: tuple[Flag, ...]

    @property
    def needs_attention(self) -> bool:
        return bool(self.flags)


# --- The rules: one pure function per flag ------------------------------------------------


def _percent(fraction: float) -> str:
    """0.02 -> '2%', 0.015 -> '1.5%' (thresholds, shown as configured)."""
    return f"{fraction * 100:g}%"


def _day(date: dt.date) -> str:
    return f"{date.day} {date:%b %Y}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def error_rate_anomaly(day: UsageDay | None) -> Flag | None:
    """Requests >= MIN_REQUESTS, rate >= FLOOR and rate > median + SIGMAS x 1.4826 x MAD
    of the previous days' rates; with fewer than MIN_HISTORY_DAYS of them, the floor only."""
    if day is None or not day.requests:
        return None
    rate = day.errors / day.requests
    floor = settings.OPSDESK_HEALTH_ERROR_RATE_FLOOR
    if day.requests < settings.OPSDESK_HEALTH_ERROR_RATE_MIN_REQUESTS or rate < floor:
        return None
    figures = f"error rate {rate:.1%} ({day.errors:,} of {day.requests:,} requests)"
    if day.baseline_median is None or day.baseline_days < settings.OPSDESK_HEALTH_MIN_HISTORY_DAYS:
        history = _count(day.baseline_days, "day")
        reason = f"{figures} vs the {_percent(floor)} floor; {history} of history"
    else:
        limit = (
            day.baseline_median
            + settings.OPSDESK_HEALTH_ERROR_RATE_SIGMAS * MAD_TO_SIGMA * day.baseline_mad
        )
        if rate <= limit:
            return None
        median = f"{day.baseline_median:.1%} median of {_count(day.baseline_days, 'day')}"
        reason = f"{figures} vs {median}"
    return Flag("error_rate", "Error-rate anomaly", reason)


def usage_drop(day: UsageDay | None) -> Flag | None:
    """WAU fell by USAGE_DROP or more against seven days earlier, from at least MIN_WAU."""
    change = day.wau_change if day else None
    if (
        change is None
        or day.wau_week_ago < settings.OPSDESK_HEALTH_USAGE_DROP_MIN_WAU
        or -change < settings.OPSDESK_HEALTH_USAGE_DROP
    ):
        return None
    return Flag(
        "usage_drop",
        "Usage drop",
        f"WAU {day.wau} vs {day.wau_week_ago} a week earlier ({change:+.0%})",
    )


def dormant(
    *, date: dt.date, last_login_at: dt.datetime | None, active_since: dt.date | None
) -> Flag | None:
    """No login for DORMANT_DAYS or more before ``date`` (UTC days); or never, while an
    active contract has run that long."""
    days = settings.OPSDESK_HEALTH_DORMANT_DAYS
    if last_login_at is not None:
        last = last_login_at.astimezone(dt.UTC).date()
        idle = (date - last).days
        if idle < days:
            return None
        return Flag("dormant", "Dormant", f"no login for {_count(idle, 'day')} (last {_day(last)})")
    if active_since is None or (date - active_since).days < days:
        return None
    return Flag("dormant", "Dormant", f"no login ever; active contract since {_day(active_since)}")


def no_usage_data(*, date: dt.date, day: UsageDay | None) -> Flag | None:
    """No usage report for D-1."""
    if day is not None:
        return None
    return Flag(
        "no_data", "No usage data", f"no usage report for {_day(date - dt.timedelta(days=1))}"
    )


def renewal_soon(*, date: dt.date, contract_end: dt.date | None) -> Flag | None:
    """An active contract ends within RENEWAL_DAYS of ``date`` (that day included)."""
    if contract_end is None:
        return None
    left = (contract_end - date).days
    if not renewal_is_soon(left):
        return None
    when = "today" if left == 0 else f"in {_count(left, 'day')}"
    return Flag("renewal_soon", "Renewal soon", f"contract ends {_day(contract_end)}, {when}")


def urgent_tickets(count: int) -> Flag | None:
    """At least URGENT_TICKETS open (open or waiting) tickets of priority urgent."""
    if count < settings.OPSDESK_HEALTH_URGENT_TICKETS:
        return None
    return Flag(
        "urgent_tickets",
        "Urgent tickets",
        _count(count, "open urgent ticket"),
    )


# --- Reads ------------------------------------------------------------------------------

_USAGE_DAYS_SQL = """
SELECT day.customer_id, day.date, day.active_users_7d, week_ago.active_users_7d,
       day.requests, day.errors, base.median, base.mad, base.days
FROM {usage} day
LEFT JOIN {usage} week_ago
  ON week_ago.customer_id = day.customer_id AND week_ago.date = day.date - 7
CROSS JOIN LATERAL (
  WITH rates AS (
    SELECT past.errors::float8 / past.requests AS rate
    FROM {usage} past
    WHERE past.customer_id = day.customer_id AND past.requests > 0
      AND past.date >= day.date - %(baseline_days)s AND past.date < day.date
  ), mid AS (
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY rate) AS median, count(*) AS days
    FROM rates
  )
  SELECT mid.median, mid.days,
         (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(rates.rate - mid.median))
          FROM rates) AS mad
  FROM mid
) base
WHERE day.customer_id = ANY(%(customer_ids)s::bigint[]) AND day.date BETWEEN %(first)s AND %(last)s
ORDER BY day.customer_id, day.date
"""


def usage_days(*, customer_ids: list[int], first: dt.date, last: dt.date) -> list[UsageDay]:
    """The reported days ``first``..``last`` of these customers with their baselines, in
    one query (each day's baseline is a lateral aggregate over the days before it)."""
    if not customer_ids:
        return []
    sql = _USAGE_DAYS_SQL.format(usage=connection.ops.quote_name(UsageDaily._meta.db_table))
    params = {
        "customer_ids": customer_ids,
        "first": first,
        "last": last,
        "baseline_days": settings.OPSDESK_HEALTH_BASELINE_DAYS,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [UsageDay(*row) for row in cursor.fetchall()]


def _customers(*, date: dt.date, customer_ids: Iterable[int] | None):
    """Non-churned customers with the figures that are not usage, one query."""
    active = Contract.objects.filter(customer=OuterRef("pk"), status=Contract.Status.ACTIVE)
    customers = Customer.objects.exclude(status=Customer.Status.CHURNED)
    if customer_ids is not None:
        # A queryset of ids stays a subquery: no query of its own.
        customers = customers.filter(pk__in=customer_ids)
    return customers.order_by("name", "pk").values(
        "pk",
        "name",
        "external_id",
        "account_manager_id",
        last_login_at=Subquery(
            UsageDaily.objects.filter(
                customer=OuterRef("pk"), date__lt=date, last_login_at__isnull=False
            )
            .order_by("-last_login_at")
            .values("last_login_at")[:1]
        ),
        active_since=Subquery(active.order_by("start_date").values("start_date")[:1]),
        contract_end=Subquery(
            active.filter(end_date__gte=date).order_by("end_date").values("end_date")[:1]
        ),
        urgent_open_tickets=Coalesce(
            Subquery(
                Ticket.objects.filter(
                    customer=OuterRef("pk"),
                    priority=Ticket.Priority.URGENT,
                    status__in=Ticket.OPEN_STATES,
                )
                .order_by()
                .values("customer")
                .annotate(n=Count("pk"))
                .values("n"),
                output_field=IntegerField(),
            ),
            Value(0),
        ),
    )


def customer_health(
    *, date: dt.date, customer_ids: Iterable[int] | None = None
) -> list[CustomerHealth]:
    """The health of every non-churned customer (or of those of ``customer_ids``) for the
    digest dated ``date``, ordered by name, in two queries whatever their number.

    WAU and the error rate are those of ``date`` - 1, the WAU change is against
    ``date`` - 8; the last login is the latest any report before ``date`` gave;
    ``contract_end`` is the nearest end, on or after ``date``, of an active contract.
    """
    rows = list(_customers(date=date, customer_ids=customer_ids))
    yesterday = date - dt.timedelta(days=1)
    usage = {
        day.customer_id: day
        for day in usage_days(
            customer_ids=[row["pk"] for row in rows], first=yesterday, last=yesterday
        )
    }
    return [_health(row, usage.get(row["pk"]), date) for row in rows]


def _health(row: dict, day: UsageDay | None, date: dt.date) -> CustomerHealth:
    flags = (
        error_rate_anomaly(day),
        usage_drop(day),
        dormant(date=date, last_login_at=row["last_login_at"], active_since=row["active_since"]),
        no_usage_data(date=date, day=day),
        renewal_soon(date=date, contract_end=row["contract_end"]),
        urgent_tickets(row["urgent_open_tickets"]),
    )
    return CustomerHealth(
        customer_id=row["pk"],
        name=row["name"],
        external_id=row["external_id"],
        account_manager_id=row["account_manager_id"],
        wau=day.wau if day else None,
        wau_week_ago=day.wau_week_ago if day else None,
        wau_change=day.wau_change if day else None,
        last_login_at=row["last_login_at"],
        requests=day.requests if day else None,
        errors=day.errors if day else None,
        error_rate=day.error_rate if day else None,
        contract_end=row["contract_end"],
        urgent_open_tickets=row["urgent_open_tickets"],
        flags=tuple(flag for flag in flags if flag is not None),
    )
