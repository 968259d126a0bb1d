"""Reads that span several apps: what support sees about a customer on one screen."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.utils import timezone

from billing.models import Invoice
from billing.reconciliation import (
    BILLING_KINDS,
    amount_mismatch,
    billing_comparison,
    invoice_due_by,
    mismatch_kinds,
    tolerance,
)
from customers.answers import seat_changes_latest
from customers.models import Contract, Customer, Entitlement, UsageDaily
from kit.charts import two_axis_options
from kit.months import add_months, month_end, month_start
from opsdesk.health import flags as health
from support.models import Case, Ticket

OPEN_TICKET = Q(status__in=Ticket.OPEN_STATES)
OPEN_CASE = Q(state__in=Case.OPEN_STATES)


def _is(condition: Q) -> ExpressionWrapper:
    return ExpressionWrapper(condition, output_field=BooleanField())


@dataclass(frozen=True)
class UsagePoint:
    date: dt.date
    day: health.UsageDay | None  # None: nothing reported for that day
    flags: tuple[health.Flag, ...]


# Chart.js (shipped by django-unfold) draws the chart from these.
_WAU_COLOR = "var(--color-primary-600)"
_ERROR_RATE_COLOR = "#0ea5e9"


def _chart_options() -> str:
    return two_axis_options(
        left={"title": {"display": True, "text": "WAU"}, "ticks": {"precision": 0}},
        right={
            "beginAtZero": True,
            # Up to the anomaly floor at least, so everyday noise stays flat.
            "suggestedMax": settings.OPSDESK_HEALTH_ERROR_RATE_FLOOR * 100,
            "title": {"display": True, "text": "Error rate (%)"},
        },
        x_ticks={"maxTicksLimit": 13},
    )


def _line(label: str, data: list, axis: str, color: str, width: float) -> dict:
    return {
        "label": label,
        "data": data,
        "yAxisID": axis,
        "borderColor": color,
        "backgroundColor": color,
        "borderWidth": width,
        "pointRadius": 0,
    }


def _marks(label: str, data: list, axis: str, color: str, shape: str) -> dict:
    return {
        "label": label,
        "data": data,
        "yAxisID": axis,
        "showLine": False,
        "pointStyle": shape,
        "pointRadius": 7,
        "pointHoverRadius": 8,
        "clip": False,
        "borderColor": color,
        "backgroundColor": color,
    }


@dataclass(frozen=True)
class UsageChart:
    """A customer's WAU and error rate per day, each day marked with the flags the
    digest of the next day raises on it (error-rate anomaly, usage drop)."""

    points: list[UsagePoint]

    @property
    def reported(self) -> bool:
        return any(point.day for point in self.points)

    @property
    def flagged(self) -> list[UsagePoint]:
        """Flagged days, newest first."""
        return [point for point in reversed(self.points) if point.flags]

    def _where(self, code: str, series: list) -> list:
        return [
            value if any(flag.code == code for flag in point.flags) else None
            for point, value in zip(self.points, series, strict=True)
        ]

    @property
    def options(self) -> str:
        return _chart_options()

    @property
    def data(self) -> str:
        """The chart's data as Chart.js reads it; days without a report are gaps."""
        wau = [point.day.wau if point.day else None for point in self.points]
        rate = [
            round(point.day.error_rate * 100, 2) if point.day and point.day.requests else None
            for point in self.points
        ]
        datasets = [
            _line("WAU", wau, "y", _WAU_COLOR, 2),
            _line("Error rate (%)", rate, "y1", _ERROR_RATE_COLOR, 1.5),
            _marks(
                "Error-rate anomaly", self._where("error_rate", rate), "y1", "#dc2626", "triangle"
            ),
            _marks("Usage drop", self._where("usage_drop", wau), "y", "#ea580c", "rectRot"),
        ]
        labels = [f"{point.date.day} {point.date:%b}" for point in self.points]
        return json.dumps({"labels": labels, "datasets": datasets})


def usage_chart(*, customer: Customer, last: dt.date, days: int = 90) -> UsageChart:
    """The ``days`` days up to ``last``, in one query; each reported day is judged by the
    rules of ``opsdesk.health.flags`` in one pass, so the marks match what the digest flagged."""
    first = last - dt.timedelta(days=days - 1)
    reported = {
        day.date: day
        for day in health.usage_days(customer_ids=[customer.pk], first=first, last=last)
    }
    points = []
    for offset in range(days):
        date = first + dt.timedelta(days=offset)
        day = reported.get(date)
        flags = (health.error_rate_anomaly(day), health.usage_drop(day))
        points.append(UsagePoint(date, day, tuple(flag for flag in flags if flag)))
    return UsageChart(points)


@dataclass(frozen=True)
class CustomerOverview:
    contracts: list[Contract]
    entitlements: list[Entitlement]
    entitlement_total: int
    entitlements_by_state: dict[str, int]
    usage: list[UsageDaily]
    usage_chart: UsageChart
    tickets: list[Ticket]
    open_ticket_count: int
    cases: list[Case]
    open_case_count: int
    invoices: list[Invoice]


def customer_overview(
    *,
    customer: Customer,
    recent: int = 10,
    usage_days: int = 14,
    chart_days: int = 90,
    today: dt.date | None = None,
) -> CustomerOverview:
    """Everything about ``customer`` that support needs at a glance, in a fixed number
    of queries whatever the customer's size: lists are capped at ``recent`` rows, open
    work first, and totals come from aggregates. The chart covers the ``chart_days``
    complete days before ``today``."""
    today = today or timezone.now().date()
    by_state = dict(
        customer.entitlements.order_by()
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    ticket_counts = customer.tickets.aggregate(open=Count("id", filter=OPEN_TICKET))
    case_counts = customer.cases.aggregate(open=Count("id", filter=OPEN_CASE))
    contracts = list(customer.contracts.order_by("-start_date")[:recent])
    # Each row says who changed its seats last (the contract page lists every change).
    latest = seat_changes_latest(contract_ids=[contract.pk for contract in contracts])
    for contract in contracts:
        contract.last_seat_change = latest.get(contract.pk)
    return CustomerOverview(
        contracts=contracts,
        entitlements=list(
            customer.entitlements.select_related("product", "order").order_by("-issued_at")[:recent]
        ),
        entitlement_total=sum(by_state.values()),
        entitlements_by_state=by_state,
        usage=list(
            customer.usage.filter(date__gte=today - dt.timedelta(days=usage_days)).order_by("-date")
        ),
        usage_chart=usage_chart(
            customer=customer, last=today - dt.timedelta(days=1), days=chart_days
        ),
        # Open tickets first (soonest deadline first), then the most recent closed ones.
        tickets=list(
            customer.tickets.select_related("assignee")
            .prefetch_related("tags")
            .alias(is_open=_is(OPEN_TICKET))
            .order_by("-is_open", "first_response_due_at", "-created_at")[:recent]
        ),
        open_ticket_count=ticket_counts["open"],
        cases=list(
            customer.cases.select_related("owner")
            .alias(is_open=_is(OPEN_CASE))
            .order_by("-is_open", "opened_at")[:recent]
        ),
        open_case_count=case_counts["open"],
        invoices=list(customer.invoices.order_by("-period_start")[:6]),
    )


@dataclass(frozen=True)
class BillingMonth:
    """One month of a customer's billing tab: what it should have cost, what was
    invoiced, and the open findings of the month. ``expected`` is None when no contract
    was active; ``invoiced`` when nothing was issued (drafts and void invoices are listed
    in ``invoices`` but never counted, as in reconciliation). ``mismatches``: what
    reconciliation finds wrong with the month as it stands today
    (``billing.reconciliation.mismatch_kinds``)."""

    month: dt.date
    contract: Contract | None  # the latest contract active in the month
    expected: Decimal | None
    fees: Decimal | None
    peak: int | None
    seats: int | None
    extra_seats: int
    extra_seat_price: Decimal | None
    invoiced: Decimal | None
    currency: str | None  # the contract's, else the invoices'
    other_currencies: list[str]  # invoiced in a currency that is not the contract's
    invoices: list[Invoice]
    counted_ids: frozenset[int]
    overdue_ids: frozenset[int]
    cases: list[Case]
    mismatches: tuple[str, ...]
    invoice_due_by: dt.date

    @property
    def empty(self) -> bool:
        """Neither a contract nor an invoice: a gap between billed months."""
        return self.contract is None and not self.invoices

    @property
    def difference(self) -> Decimal | None:
        """Invoiced minus expected; None when they cannot be compared (another currency,
        or two) or there is nothing to compare."""
        if self.other_currencies or len(self.invoiced_amounts) > 1:
            return None
        if self.expected is None and self.invoiced is None:
            return None
        return (self.invoiced or Decimal("0.00")) - (self.expected or Decimal("0.00"))

    @property
    def invoiced_amounts(self) -> list[tuple[str, Decimal]]:
        """What was invoiced per currency (one entry unless invoiced in two)."""
        amounts = defaultdict(lambda: Decimal("0.00"))
        for invoice in self.invoices:
            if invoice.pk in self.counted_ids:
                amounts[invoice.currency] += invoice.amount_due
        return sorted(amounts.items())

    @property
    def tolerance(self) -> Decimal:
        return tolerance(self.expected or Decimal("0.00"))

    @property
    def outside_tolerance(self) -> bool:
        """Whether reconciliation calls the month's invoicing off: a missing invoice, an
        invoice without a contract, another currency, duplicates, or an amount outside
        the tolerance."""
        return bool(self.mismatches)

    @property
    def awaiting_invoice(self) -> bool:
        """Something is expected and nothing issued, but the month's invoice is not due
        yet (billing invoices in arrears): not missing until ``invoice_due_by``."""
        return bool(self.expected) and not self.counted_ids and not self.mismatches


@dataclass(frozen=True)
class BillingTotal:
    """The months' sums in one currency: expected in the contract's currency, invoiced
    in each invoice's own (a month invoiced in another currency counts in that one)."""

    currency: str
    expected: Decimal
    invoiced: Decimal

    @property
    def difference(self) -> Decimal:
        return self.invoiced - self.expected

    @property
    def outside_tolerance(self) -> bool:
        return amount_mismatch(self.expected, self.invoiced)


@dataclass(frozen=True)
class CustomerBilling:
    months: list[BillingMonth]  # newest first
    totals: list[BillingTotal]
    first: dt.date
    last: dt.date

    @property
    def invoice_count(self) -> int:
        return sum(len(month.invoices) for month in self.months)

    @property
    def case_count(self) -> int:
        return sum(len(month.cases) for month in self.months)


def customer_billing(
    *, customer: Customer, months: int = 12, today: dt.date | None = None
) -> CustomerBilling:
    """The customer's billing tab: the last ``months`` months (this one included), newest
    first, expected against invoiced as reconciliation computes it
    (``billing.reconciliation.billing_comparison``) and judged by its rules
    (``mismatch_kinds``, ``amount_mismatch``), with the month's invoices and open billing
    findings. Four queries whatever the number of months, invoices or findings:
    the comparison, the contracts (for the price of an extra seat), invoices, cases.

    Months older than the first one with a contract or an invoice are left out (a customer
    of three months has three rows); a month after that with neither is kept as an empty
    row, so a gap in the contracts shows."""
    today = today or timezone.now().date()
    last = month_start(today)
    first = add_months(last, -(months - 1))
    last_end = month_end(last)
    rows = {
        row.month: row
        for row in billing_comparison(first=first, last=last, customer=customer, today=today)
    }
    contracts = {
        contract.pk: contract
        for contract in customer.contracts.filter(
            Q(end_date__isnull=True) | Q(end_date__gte=first),
            status__in=[Contract.Status.ACTIVE, Contract.Status.ENDED],
            start_date__lte=last_end,
        )
    }
    invoices = defaultdict(list)
    for invoice in customer.invoices.filter(period_start__range=(first, last_end)).order_by(
        "period_start", "issued_at", "pk"
    ):
        invoices[month_start(invoice.period_start)].append(invoice)
    cases = defaultdict(list)
    for case in customer.cases.filter(
        OPEN_CASE, kind__in=BILLING_KINDS, period__range=(first, last_end)
    ).order_by("kind", "opened_at", "pk"):
        cases[case.period].append(case)

    result, seen = [], False
    for month in (add_months(first, offset) for offset in range(months)):
        row = rows.get(month)
        contract = contracts.get(row.contract_id) if row and row.contract_id else None
        seen = seen or bool(row or invoices[month] or cases[month])
        if not seen:
            continue
        extra = max(0, (row.peak or 0) - row.seats) if contract else 0
        price = contract.price_per_extra_seat if contract else None
        currency = (
            row.contract_currency
            if row and row.contract_currency
            else (row.currencies[0] if row and len(row.currencies) == 1 else None)
        )
        result.append(
            BillingMonth(
                month=month,
                contract=contract,
                expected=row.expected if contract else None,
                fees=row.expected - extra * price if contract else None,
                peak=row.peak if row else None,
                seats=row.seats if row else None,
                extra_seats=extra,
                extra_seat_price=price,
                invoiced=row.invoiced if row else None,
                currency=currency,
                other_currencies=sorted(set(row.currencies) - {row.contract_currency})
                if row and row.contract_currency
                else [],
                invoices=invoices[month],
                counted_ids=frozenset(row.invoice_ids if row else ()),
                overdue_ids=frozenset(row.overdue_ids if row else ()),
                cases=cases[month],
                mismatches=tuple(mismatch_kinds(row, today=today)) if row else (),
                invoice_due_by=invoice_due_by(month),
            )
        )
    result.reverse()

    expected = defaultdict(lambda: Decimal("0.00"))
    invoiced = defaultdict(lambda: Decimal("0.00"))
    for month in result:
        if month.expected is not None:
            expected[month.currency] += month.expected
        for currency, amount in month.invoiced_amounts:
            invoiced[currency] += amount
    totals = [
        BillingTotal(currency, expected[currency], invoiced[currency])
        for currency in sorted(expected.keys() | invoiced.keys())
    ]
    return CustomerBilling(months=result, totals=totals, first=first, last=last)
