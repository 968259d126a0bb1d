"""Reads that span several apps: what support sees about a customer on one screen."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from django.conf import settings
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.utils import timezone

from billing.models import Invoice
from customers.models import Contract, Customer, Entitlement, UsageDaily
from opsdesk import health
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
    return json.dumps(
        {
            "animation": False,
            "responsive": True,
            "maintainAspectRatio": False,
            "layout": {"padding": {"top": 8, "right": 8}},
            "interaction": {"mode": "index", "intersect": False},
            "plugins": {
                "legend": {
                    "display": True,
                    "align": "end",
                    "labels": {"usePointStyle": True, "boxWidth": 6, "boxHeight": 6},
                },
            },
            "scales": {
                "x": {"grid": {"display": False}, "ticks": {"maxTicksLimit": 13, "maxRotation": 0}},
                "y": {
                    "beginAtZero": True,
                    "title": {"display": True, "text": "WAU"},
                    "ticks": {"precision": 0},
                },
                "y1": {
                    "position": "right",
                    "beginAtZero": True,
                    # Up to the anomaly floor at least, so everyday noise stays flat.
                    "suggestedMax": settings.OPSDESK_HEALTH_ERROR_RATE_FLOOR * 100,
                    "title": {"display": True, "text": "Error rate (%)"},
                    "grid": {"drawOnChartArea": False},
                },
            },
        }
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
    rules of ``opsdesk.health`` in one pass, so the marks match what the digest flagged."""
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
    return CustomerOverview(
        contracts=list(customer.contracts.order_by("-start_date")[:recent]),
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
