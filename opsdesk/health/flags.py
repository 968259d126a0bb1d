"""Customer health: the figures and flags of the daily digest
(docs/product.md#customer-health-and-the-daily-digest).

A digest dated D covers usage up to D-1. ``customer_health`` reads every customer's
figures in a fixed number of queries; the baselines (median and MAD of the previous
days' error rates) are aggregated in PostgreSQL. Each flag is one pure rule function
over those figures, so the customer page's chart marks its days with the same rules.
Thresholds are settings (``OPSDESK_HEALTH_*``).

Besides usage, the rules read what opsdesk itself knows of the customer (its invoices,
billing findings, tickets' service levels, onboarding): each of those figures is one more
subquery of the customers' query, so the count of queries stays the same.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.aggregates import JSONBAgg
from django.db import connection
from django.db.models import CharField, Count, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Cast, Coalesce, JSONObject
from django.utils import timezone

from billing.models import Invoice
from billing.reconciliation import BILLING_KINDS
from customers.models import Contract, Customer, UsageDaily
from customers.selectors import renewal_is_soon
from kit.text import count_of
from onboarding.models import ChecklistTask
from support.case_age import began_at as case_began_at
from support.models import Case, Ticket
from support.reporting import duration_text
from support.ticket_sla import tickets_breached

# Scales the MAD to a standard deviation for normally distributed rates.
MAD_TO_SIGMA = 1.4826


# Every kind of flag, code and label, in the order a customer's flags are listed.
KINDS: dict[str, str] = {
    "error_rate": "Error-rate anomaly",
    "usage_drop": "Usage drop",
    "dormant": "Dormant",
    "no_data": "No usage data",
    "renewal_soon": "Renewal soon",
    "urgent_tickets": "Urgent tickets",
    "sla_breach": "SLA breach",
    "seats_over": "Seats over contract",
    "overdue_invoice": "Overdue invoice",
    "billing_finding": "Billing finding",
    "onboarding_stalled": "Stalled onboarding",
    "renewal_at_risk": "Renewal at risk",
}


@dataclass(frozen=True)
class Flag:
    code: str  # a key of KINDS: "error_rate", "usage_drop", ...
    label: str  # short, e.g. "Error-rate anomaly"
    reason: str  # the one line the email shows, with the baseline and the numbers
    # The one number that measures how bad it is, bigger is worse (docs/product.md#health-
    # flags): a rate, a fraction, days or a count per kind. Renewals carry the days left,
    # where fewer is worse.
    value: float = 0.0


def _flag(code: str, reason: str, value: float) -> Flag:
    return Flag(code, KINDS[code], reason, float(value))


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
class OpenInvoice:
    """An open invoice of the customer past its due date, with what is left to pay."""

    due_at: dt.date
    currency: str
    outstanding: Decimal


@dataclass(frozen=True)
class OpenFinding:
    """An open billing finding (a ``support.Case`` of a billing kind)."""

    kind: str
    began_at: dt.datetime  # when its problem began (support.case_age), not when found


@dataclass(frozen=True)
class BreachedTicket:
    """An open ticket with a service-level clock past its deadline."""

    pk: int
    due_at: dt.datetime


@dataclass(frozen=True)
class OverdueTask:
    """The customer's most overdue open onboarding task."""

    title: str
    due_date: dt.date


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
    # What opsdesk knows besides usage, as the rules count it on ``date``.
    contracted_seats: int | None = None  # of the active contracts that ran on D-1
    overdue_invoices: int = 0
    billing_findings: int = 0  # open, of the kinds of BILLING_FINDING_KINDS
    sla_breached_tickets: int = 0
    onboarding_days_overdue: int = 0  # of its most overdue open task; 0: none overdue
    flags: tuple[Flag, ...] = ()

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
    return _flag("error_rate", reason, rate)


def usage_drop(day: UsageDay | None) -> Flag | None:
    """WAU fell by USAGE_DROP or more against seven days earlier, from at least MIN_WAU."""
    change = day.wau_change if day else None
    if (
        change is None
        or day.wau_week_ago < settings.OPSDESK_HEALTH_USAGE_DROP_MIN_WAU
        or -change < settings.OPSDESK_HEALTH_USAGE_DROP
    ):
        return None
    return _flag(
        "usage_drop", f"WAU {day.wau} vs {day.wau_week_ago} a week earlier ({change:+.0%})", -change
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
        return _flag("dormant", f"no login for {_count(idle, 'day')} (last {_day(last)})", idle)
    if active_since is None or (date - active_since).days < days:
        return None
    return _flag(
        "dormant",
        f"no login ever; active contract since {_day(active_since)}",
        (date - active_since).days,
    )


def no_usage_data(*, date: dt.date, day: UsageDay | None) -> Flag | None:
    """No usage report for D-1."""
    if day is not None:
        return None
    return _flag("no_data", f"no usage report for {_day(date - dt.timedelta(days=1))}", 1)


def renewal_soon(*, date: dt.date, contract_end: dt.date | None) -> Flag | None:
    """An active contract ends within RENEWAL_DAYS of ``date`` (that day included)."""
    if contract_end is None:
        return None
    left = (contract_end - date).days
    if not renewal_is_soon(left):
        return None
    when = "today" if left == 0 else f"in {_count(left, 'day')}"
    # The value is the days left: here fewer is worse.
    return _flag("renewal_soon", f"contract ends {_day(contract_end)}, {when}", left)


def urgent_tickets(count: int) -> Flag | None:
    """At least URGENT_TICKETS open (open or waiting) tickets of priority urgent."""
    if count < settings.OPSDESK_HEALTH_URGENT_TICKETS:
        return None
    return _flag("urgent_tickets", _count(count, "open urgent ticket"), count)


# --- What opsdesk knows besides usage ------------------------------------------------------

# The billing findings health counts: those reconciliation opens, but for an overdue
# invoice's, which "Overdue invoice" reads from the invoice itself (one fact, one flag).
BILLING_FINDING_KINDS = tuple(kind for kind in BILLING_KINDS if kind != Case.Kind.OVERDUE_INVOICE)


def _money(amount: Decimal, currency: str) -> str:
    """1200 EUR -> '1,200.00 EUR', as the billing pages and findings write amounts."""
    return f"{amount:,.2f} {currency}"


def _ago(days: int) -> str:
    return "today" if days == 0 else f"{count_of(days, 'day')} ago"


def invoices_overdue(*, date: dt.date, invoices: Sequence[OpenInvoice]) -> list[OpenInvoice]:
    """Those of the open ``invoices`` overdue at ``date``: more than
    ``OPSDESK_OVERDUE_AFTER_DAYS`` past their due date, reconciliation's "overdue"
    (``billing.reconciliation``: open and due before ``date`` minus that many days)."""
    after = settings.OPSDESK_OVERDUE_AFTER_DAYS
    return [invoice for invoice in invoices if (date - invoice.due_at).days > after]


def overdue_invoice(*, date: dt.date, invoices: Sequence[OpenInvoice]) -> Flag | None:
    """At least one open invoice overdue at ``date`` (``invoices_overdue``); the value is
    the days since the oldest one was due."""
    overdue = invoices_overdue(date=date, invoices=invoices)
    if not overdue:
        return None
    oldest = min(overdue, key=lambda invoice: invoice.due_at)
    days = (date - oldest.due_at).days
    owed: dict[str, Decimal] = defaultdict(Decimal)
    for invoice in overdue:
        owed[invoice.currency] += invoice.outstanding
    outstanding = " + ".join(_money(amount, currency) for currency, amount in sorted(owed.items()))
    return _flag(
        "overdue_invoice",
        f"{count_of(len(overdue), 'overdue invoice')}, {outstanding} outstanding, "
        f"oldest due {_day(oldest.due_at)} ({_ago(days)})",
        days,
    )


def billing_finding(*, date: dt.date, findings: Sequence[OpenFinding]) -> Flag | None:
    """At least one open billing finding (``BILLING_FINDING_KINDS``); the reason names the
    oldest one's kind and age at ``date``, aged from when its problem began as every page
    ages a case (``support.case_age``: a missing invoice from its month), the value is
    their number."""
    if not findings:
        return None
    oldest = min(findings, key=lambda finding: finding.began_at)
    began = oldest.began_at.astimezone(dt.UTC).date()
    age = max(0, (date - began).days)  # a digest of an earlier date reads today's cases
    return _flag(
        "billing_finding",
        f"{count_of(len(findings), 'open billing finding')}, oldest "
        f"{Case.Kind(oldest.kind).label} since {_day(began)} ({_ago(age)})",
        len(findings),
    )


def seats_over(*, day: UsageDay | None, seats: int | None) -> Flag | None:
    """WAU of D-1 above the seats of the active contracts by more than
    ``OPSDESK_HEALTH_SEATS_OVER`` of them (0.0: any seat above); the value is the seats
    above as a fraction of those contracted."""
    if day is None or not seats:
        return None
    above = day.wau - seats
    if above <= 0 or above / seats <= settings.OPSDESK_HEALTH_SEATS_OVER:
        return None
    return _flag(
        "seats_over",
        f"WAU {day.wau:,} vs {count_of(seats, 'contracted seat')} ({above:,} above)",
        above / seats,
    )


def sla_breach(*, now: dt.datetime, tickets: Sequence[BreachedTicket]) -> Flag | None:
    """At least one open ticket of the customer with a service-level clock past its
    deadline at ``now`` (``support.ticket_sla.tickets_breached``); the value is their
    number."""
    if not tickets:
        return None
    oldest = min(tickets, key=lambda ticket: (ticket.due_at, ticket.pk))
    over = duration_text(max(0.0, (now - oldest.due_at).total_seconds()))
    if len(tickets) == 1:
        reason = f"1 open ticket past its SLA target (#{oldest.pk}, {over} over)"
    else:
        reason = (
            f"{count_of(len(tickets), 'open ticket')} past their SLA target "
            f"(oldest #{oldest.pk}, {over} over)"
        )
    return _flag("sla_breach", reason, len(tickets))


def onboarding_stalled(*, date: dt.date, task: OverdueTask | None) -> Flag | None:
    """The most overdue open task of the customer's onboarding is overdue by more than
    ``OPSDESK_HEALTH_ONBOARDING_STALLED_DAYS`` at ``date`` (a task due the day before is
    one day overdue); the value is its days overdue."""
    if task is None:
        return None
    late = (date - task.due_date).days
    if late <= settings.OPSDESK_HEALTH_ONBOARDING_STALLED_DAYS:
        return None
    return _flag(
        "onboarding_stalled",
        f'onboarding task "{task.title}" overdue by {count_of(late, "day")} '
        f"(due {_day(task.due_date)})",
        late,
    )


def renewal_at_risk(
    *, date: dt.date, contract_end: dt.date | None, others: Sequence[Flag]
) -> Flag | None:
    """An active contract ends within ``OPSDESK_HEALTH_RENEWAL_RISK_DAYS`` of ``date``
    (that day included) while the customer has any other flag that day (``others``;
    renewal soon is the same fact, it does not count). The value is the days left: here
    fewer is worse."""
    if contract_end is None:
        return None
    left = (contract_end - date).days
    if not 0 <= left <= settings.OPSDESK_HEALTH_RENEWAL_RISK_DAYS:
        return None
    signals = [flag for flag in others if flag.code not in ("renewal_soon", "renewal_at_risk")]
    if not signals:
        return None
    when = "today" if left == 0 else f"in {count_of(left, 'day')}"
    return _flag(
        "renewal_at_risk",
        f"contract ends {_day(contract_end)} ({when}) with "
        f"{count_of(len(signals), 'other signal')}: {', '.join(f.label for f in signals)}",
        left,
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


def _json_rows(rows, order: tuple[str, ...], **fields) -> Subquery:
    """``fields`` of each of ``rows`` (a queryset with a ``customer`` that points to the
    outer customer) as one JSON array in ``order``; NULL when there are none."""
    return Subquery(
        rows.order_by()
        .values("customer")
        .annotate(rows=JSONBAgg(JSONObject(**fields), order_by=order))
        .values("rows")
    )


def _customers(*, date: dt.date, now: dt.datetime, customer_ids: Iterable[int] | None):
    """Non-churned customers with the figures that are not usage, one query."""
    yesterday = date - dt.timedelta(days=1)
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
        # The seats of the active contracts that ran on D-1, the day WAU was counted.
        contracted_seats=Subquery(
            active.filter(Q(end_date__isnull=True) | Q(end_date__gte=yesterday))
            .filter(start_date__lte=yesterday)
            .order_by()
            .values("customer")
            .annotate(n=Sum("seats"))
            .values("n")
        ),
        # Open invoices past their due date; the rule decides which are overdue.
        open_invoices=_json_rows(
            Invoice.objects.filter(
                customer=OuterRef("pk"), status=Invoice.Status.OPEN, due_at__lt=date
            ),
            ("due_at", "pk"),
            due_at="due_at",
            currency="currency",
            # As text: a JSON number would come back a float.
            outstanding=Cast(F("amount_due") - F("amount_paid"), CharField()),
        ),
        open_findings=_json_rows(
            Case.objects.filter(
                customer=OuterRef("pk"),
                state__in=Case.OPEN_STATES,
                kind__in=BILLING_FINDING_KINDS,
            ).annotate(_began_at=case_began_at()),
            ("_began_at", "pk"),
            kind="kind",
            began_at="_began_at",
        ),
        breached_tickets=_json_rows(
            tickets_breached(now=now).filter(customer=OuterRef("pk")),
            ("sla_due_at", "pk"),
            pk="pk",
            due_at="sla_due_at",
        ),
        # The most overdue open task of an active contract's checklist (as the digest's
        # reminder, onboarding.selectors.overdue_tasks_for_manager, picks them).
        overdue_task=Subquery(
            ChecklistTask.objects.filter(
                checklist__customer=OuterRef("pk"),
                checklist__contract__status=Contract.Status.ACTIVE,
                state=ChecklistTask.State.OPEN,
                due_date__lt=date,
            )
            .order_by("due_date", "position", "pk")
            .values(task=JSONObject(title="title", due_date="due_date"))[:1]
        ),
    )


def customer_health(
    *,
    date: dt.date,
    customer_ids: Iterable[int] | None = None,
    now: dt.datetime | None = None,
) -> list[CustomerHealth]:
    """The health of every non-churned customer (or of those of ``customer_ids``) for the
    digest dated ``date``, ordered by name, in two queries whatever their number.

    WAU and the error rate are those of ``date`` - 1, the WAU change is against
    ``date`` - 8; the last login is the latest any report before ``date`` gave;
    ``contract_end`` is the nearest end, on or after ``date``, of an active contract.
    Tickets, findings and invoices are read as they stand; a ticket's service level is
    judged at ``now`` (default: now).
    """
    now = now or timezone.now()
    rows = list(_customers(date=date, now=now, customer_ids=customer_ids))
    yesterday = date - dt.timedelta(days=1)
    usage = {
        day.customer_id: day
        for day in usage_days(
            customer_ids=[row["pk"] for row in rows], first=yesterday, last=yesterday
        )
    }
    return [_health(row, usage.get(row["pk"]), date, now) for row in rows]


def _figures(row: dict) -> tuple[list[OpenInvoice], list[OpenFinding], list[BreachedTicket]]:
    """The JSON rows of ``_customers`` as the rules take them."""
    invoices = [
        OpenInvoice(
            due_at=dt.date.fromisoformat(item["due_at"]),
            currency=item["currency"],
            outstanding=Decimal(item["outstanding"]),
        )
        for item in row["open_invoices"] or ()
    ]
    findings = [
        OpenFinding(kind=item["kind"], began_at=dt.datetime.fromisoformat(item["began_at"]))
        for item in row["open_findings"] or ()
    ]
    tickets = [
        BreachedTicket(pk=item["pk"], due_at=dt.datetime.fromisoformat(item["due_at"]))
        for item in row["breached_tickets"] or ()
    ]
    return invoices, findings, tickets


def _health(row: dict, day: UsageDay | None, date: dt.date, now: dt.datetime) -> CustomerHealth:
    invoices, findings, tickets = _figures(row)
    task = row["overdue_task"]
    task = OverdueTask(task["title"], dt.date.fromisoformat(task["due_date"])) if task else None
    found = (
        error_rate_anomaly(day),
        usage_drop(day),
        dormant(date=date, last_login_at=row["last_login_at"], active_since=row["active_since"]),
        no_usage_data(date=date, day=day),
        renewal_soon(date=date, contract_end=row["contract_end"]),
        urgent_tickets(row["urgent_open_tickets"]),
        sla_breach(now=now, tickets=tickets),
        seats_over(day=day, seats=row["contracted_seats"]),
        overdue_invoice(date=date, invoices=invoices),
        billing_finding(date=date, findings=findings),
        onboarding_stalled(date=date, task=task),
    )
    flags = [flag for flag in found if flag is not None]
    # Last: it is about the others.
    at_risk = renewal_at_risk(date=date, contract_end=row["contract_end"], others=flags)
    if at_risk is not None:
        flags.append(at_risk)
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
        contracted_seats=row["contracted_seats"],
        overdue_invoices=len(invoices_overdue(date=date, invoices=invoices)),
        billing_findings=len(findings),
        sla_breached_tickets=len(tickets),
        onboarding_days_overdue=(date - task.due_date).days if task else 0,
        flags=tuple(flags),
    )
