"""Support reporting (docs/product.md#support-reporting): first-response and resolution
times (median and p90) and the share of tickets that met their service level's target,
per week, plan, priority and person, read from history as it stood at a moment.

Everything is read from what was recorded before the moment (``ReportFilter.moment``):
each ticket's versions in ``support_historicalticket``, the replies of its conversation,
and its customer's contracts in ``customers_historicalcontract``. A figure for a past
moment is therefore what the report said then, whatever happened since.

Per ticket (opened in the weeks shown) and clock:

- **first response**: from the opening (``created_at``) to the first reply to the
  requester (the first ``reply`` of the conversation or ``first_responded_at`` as
  recorded, whichever came first, as ``support.ticket_sla`` counts it);
- **resolution**: from the opening to the moment the ticket last became solved or closed
  (a reopened ticket is not resolved until it is solved again).

Its outcome: *met* (stopped by its deadline), *missed* (stopped after it, or still
running past it), *waiting* (running, deadline not reached or none while waiting on the
customer), *no target* (stopped, but the ticket had no deadline: before service levels).
A first response that never came on a ticket solved before its deadline is not counted.
The deadline is the one the ticket stored (``first_response_due_at``,
``resolution_due_at``): the service level's own, in its business hours, paused while
waiting on the customer. Times themselves are wall-clock time, not business time.

Plan, priority and person are read when the clock was decided (its stop, or its deadline
for a miss; the moment itself while it waits): the ticket's version then (or its first
version, for a ticket recorded after that, as the demo's), and its customer's current
contract then (``customers.selectors.contract_current``'s rule: the active one, else the
latest by start date).

The aggregates are PostgreSQL's (``percentile_cont``): one query for the whole report,
two for a drill-down page.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from customers.models import Contract
from kit.charts import two_axis_options
from support import sla
from support.models import Ticket, TicketComment

CLOCKS = (sla.FIRST_RESPONSE, sla.RESOLUTION)
CLOCK_LABELS = {sla.FIRST_RESPONSE: "First response", sla.RESOLUTION: "Resolution"}
MET, MISSED, WAITING, NO_TARGET = "met", "missed", "waiting", "no_target"
OUTCOME_LABELS = {
    MET: "met",
    MISSED: "missed",
    WAITING: "waiting",
    NO_TARGET: "no target",
}
# A plan or person filter's value for "none": no plan (no customer, no contract), or
# unassigned.
NONE = "none"
WEEKS_DEFAULT = 12
WEEKS_MAX = 52
PRIORITY_ORDER = ("urgent", "high", "normal", "low")
DRILL_PAGE_SIZE = 100


# --- parameters ---------------------------------------------------------------------------


def report_moment(as_of: dt.date | None, *, now: dt.datetime | None = None) -> dt.datetime:
    """The moment a report reads history up to (not included): the end of ``as_of`` (the
    midnight after it, local time), or now; never later than now."""
    now = now or timezone.now()
    if as_of is None:
        return now
    zone = timezone.get_current_timezone()
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return min(end, now)


def week_of(moment: dt.datetime | dt.date) -> dt.date:
    """The Monday of the (local) week of ``moment``."""
    if isinstance(moment, dt.datetime):
        moment = timezone.localtime(moment).date()
    return moment - dt.timedelta(days=moment.weekday())


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


@dataclass(frozen=True)
class ReportFilter:
    """What a report (or a drill-down) covers: history up to ``moment``; tickets opened in
    the ``weeks`` weeks up to the moment's (or in ``week`` alone); of ``plan`` /
    ``priority`` / ``person`` (``NONE``: no plan, unassigned) as they were when each
    clock was decided; ``clock`` one of ``CLOCKS`` (both when None)."""

    moment: dt.datetime
    weeks: int = WEEKS_DEFAULT
    plan: str | None = None
    priority: str | None = None
    week: dt.date | None = None
    person: int | str | None = None
    clock: str | None = None

    @property
    def last_week(self) -> dt.date:
        # The moment itself is not included: a report as of Monday 00:00 ends last week.
        return week_of(self.moment - dt.timedelta(microseconds=1))

    @property
    def week_starts(self) -> list[dt.date]:
        """The Mondays of the weeks shown, oldest first."""
        if self.week is not None:
            return [week_of(self.week)]
        return [self.last_week - dt.timedelta(weeks=n) for n in reversed(range(self.weeks))]

    @property
    def since(self) -> dt.datetime:
        return _local_midnight(self.week_starts[0])

    @property
    def until(self) -> dt.datetime:
        return _local_midnight(self.week_starts[-1] + dt.timedelta(weeks=1))

    def sql_params(self) -> dict[str, Any]:
        person_given = self.person is not None
        return {
            "moment": self.moment,
            "since": self.since,
            "until": self.until,
            "zone": timezone.get_current_timezone_name(),
            "clock": self.clock,
            "plan": self.plan,
            "priority": self.priority,
            "person_given": person_given,
            "person": None if not person_given or self.person == NONE else int(self.person),
        }


# --- the query ----------------------------------------------------------------------------

# Every (ticket, clock) of the tickets opened in [since, until) as recorded before the
# moment, with its outcome, duration and the plan, priority and person of when it was
# decided; the page's filters applied. Its CTEs:
#   versions  every version recorded before the moment, with when the ticket was first
#             recorded and the last version that was not solved or closed;
#   tickets   the latest of them (deleted ones left out below);
#   ended     since when a ticket solved or closed now has been so;
#   stops     when each clock stopped;
#   clocks    both clocks, their outcome and when they were decided (``look_at``: the
#             moment plan, priority and person are read at);
#   facts     with the priority, assignee and plan of that moment, filtered.
_FACTS_SQL = """
WITH versions AS (
  SELECT h.history_id, h.id, h.history_date, h.history_type, h.created_at, h.subject,
         h.status, h.first_responded_at, h.first_response_due_at, h.resolution_due_at,
         min(h.history_date) OVER per_ticket AS recorded_at,
         max(h.history_date) FILTER (WHERE h.status NOT IN ('solved', 'closed'))
           OVER per_ticket AS worked_until
  FROM {ticket_history} h
  WHERE h.created_at >= %(since)s AND h.created_at < %(until)s
    AND h.history_date < %(moment)s
  WINDOW per_ticket AS (PARTITION BY h.id)
),
tickets AS (
  SELECT DISTINCT ON (v.id) v.*
  FROM versions v
  ORDER BY v.id, v.history_date DESC, v.history_id DESC
),
ended AS (
  SELECT v.id, min(v.history_date) AS ended_at
  FROM versions v
  WHERE v.history_date > coalesce(v.worked_until, '-infinity'::timestamptz)
  GROUP BY v.id
),
stops AS (
  SELECT t.id, t.subject, t.created_at, t.recorded_at,
         t.first_response_due_at, t.resolution_due_at,
         CASE WHEN t.status IN ('solved', 'closed')
              THEN coalesce(e.ended_at, t.history_date) END AS resolved_at,
         least(
           CASE WHEN t.first_responded_at >= t.created_at
                 AND t.first_responded_at < %(moment)s THEN t.first_responded_at END,
           (SELECT min(c.created_at) FROM {comment} c
             WHERE c.ticket_id = t.id AND c.kind = 'reply'
               AND c.created_at >= t.created_at AND c.created_at < %(moment)s)
         ) AS responded_at
  FROM tickets t
  LEFT JOIN ended e ON e.id = t.id
  WHERE t.history_type <> '-'
),
decided AS (
  SELECT s.id, s.subject, s.created_at, s.recorded_at, 'first_response' AS clock,
         s.responded_at AS stopped_at, s.first_response_due_at AS due_at,
         CASE
           WHEN s.responded_at IS NOT NULL THEN
             CASE WHEN s.first_response_due_at IS NULL THEN 'no_target'
                  WHEN s.responded_at <= s.first_response_due_at THEN 'met'
                  ELSE 'missed' END
           WHEN s.first_response_due_at < coalesce(s.resolved_at, %(moment)s) THEN 'missed'
           WHEN s.resolved_at IS NOT NULL THEN NULL
           ELSE 'waiting'
         END AS outcome,
         CASE
           WHEN s.responded_at IS NOT NULL THEN s.responded_at
           WHEN s.first_response_due_at < coalesce(s.resolved_at, %(moment)s)
             THEN s.first_response_due_at
         END AS decided_at
  FROM stops s
  UNION ALL
  SELECT s.id, s.subject, s.created_at, s.recorded_at, 'resolution',
         s.resolved_at, s.resolution_due_at,
         CASE
           WHEN s.resolved_at IS NOT NULL THEN
             CASE WHEN s.resolution_due_at IS NULL THEN 'no_target'
                  WHEN s.resolved_at <= s.resolution_due_at THEN 'met'
                  ELSE 'missed' END
           WHEN s.resolution_due_at < %(moment)s THEN 'missed'
           ELSE 'waiting'
         END,
         CASE
           WHEN s.resolved_at IS NOT NULL THEN s.resolved_at
           WHEN s.resolution_due_at < %(moment)s THEN s.resolution_due_at
         END
  FROM stops s
),
clocks AS (
  SELECT d.*, greatest(coalesce(d.decided_at, %(moment)s), d.recorded_at) AS look_at
  FROM decided d
  WHERE d.outcome IS NOT NULL
    AND (%(clock)s::text IS NULL OR d.clock = %(clock)s::text)
),
facts AS (
  SELECT k.id, k.subject, k.created_at, k.clock, k.stopped_at, k.due_at, k.decided_at,
         k.outcome,
         -- greatest() skips NULLs: a clock that has not stopped has no time.
         CASE WHEN k.stopped_at IS NOT NULL
              THEN greatest(extract(epoch FROM k.stopped_at - k.created_at), 0)::float8
         END AS seconds,
         (date_trunc('week', k.created_at AT TIME ZONE %(zone)s))::date AS week,
         a.priority, a.assignee_id, p.plan
  FROM clocks k
  CROSS JOIN LATERAL (
    SELECT h.priority, h.assignee_id, h.customer_id
    FROM {ticket_history} h
    WHERE h.id = k.id AND h.history_date < %(moment)s AND h.history_date <= k.look_at
    ORDER BY h.history_date DESC, h.history_id DESC
    LIMIT 1
  ) a
  LEFT JOIN LATERAL (
    SELECT cv.plan
    FROM (
      SELECT DISTINCT ON (hc.id) hc.id, hc.plan, hc.status, hc.start_date,
             hc.customer_id, hc.history_type
      FROM {contract_history} hc
      WHERE hc.id IN (SELECT x.id FROM {contract_history} x
                       WHERE x.customer_id = a.customer_id)
        AND hc.history_date < %(moment)s AND hc.history_date <= k.look_at
      ORDER BY hc.id, hc.history_date DESC, hc.history_id DESC
    ) cv
    WHERE cv.customer_id = a.customer_id AND cv.history_type <> '-'
    ORDER BY cv.status = 'active' DESC, cv.start_date DESC, cv.id DESC
    LIMIT 1
  ) p ON true
),
filtered AS (
  SELECT f.* FROM facts f
  WHERE (%(plan)s::text IS NULL
         OR f.plan IS NOT DISTINCT FROM nullif(%(plan)s::text, 'none'))
    AND (%(priority)s::text IS NULL OR f.priority = %(priority)s::text)
    AND (NOT %(person_given)s OR f.assignee_id IS NOT DISTINCT FROM %(person)s::bigint)
)
"""

_FIGURES_SQL = """
, figures AS (
  SELECT f.clock, GROUPING(f.week, f.plan, f.priority, f.assignee_id) AS grouped,
         f.week, f.plan, f.priority, f.assignee_id,
         count(*) AS tickets,
         count(f.seconds) AS measured,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY f.seconds) AS median,
         percentile_cont(0.9) WITHIN GROUP (ORDER BY f.seconds) AS p90,
         count(*) FILTER (WHERE f.outcome = 'met') AS met,
         count(*) FILTER (WHERE f.outcome = 'missed') AS missed,
         count(*) FILTER (WHERE f.outcome = 'waiting') AS waiting
  FROM filtered f
  GROUP BY f.clock, GROUPING SETS ((f.week), (f.plan), (f.priority), (f.assignee_id), ())
)
SELECT g.clock, g.grouped, g.week, g.plan, g.priority, g.assignee_id, g.tickets,
       g.measured, g.median, g.p90, g.met, g.missed, g.waiting,
       u.username, u.first_name, u.last_name
FROM figures g
LEFT JOIN {user} u ON u.id = g.assignee_id
"""

_TICKETS_SQL = """
SELECT f.id, f.subject, f.created_at, f.clock, f.stopped_at, f.due_at, f.decided_at,
       f.outcome, f.seconds, f.week, f.priority, f.assignee_id, f.plan,
       u.username, u.first_name, u.last_name, t.id IS NOT NULL AS present
FROM filtered f
LEFT JOIN {user} u ON u.id = f.assignee_id
LEFT JOIN {ticket} t ON t.id = f.id
ORDER BY f.seconds ASC NULLS LAST, f.created_at, f.id
LIMIT %(limit)s OFFSET %(offset)s
"""

# GROUPING(week, plan, priority, assignee_id): the bit of each column left out of a set.
_GROUPED = {7: "week", 11: "plan", 13: "priority", 14: "person", 15: "total"}


def _sql(template: str) -> str:
    quote = connection.ops.quote_name
    return template.format(
        ticket_history=quote(Ticket.history.model._meta.db_table),
        ticket=quote(Ticket._meta.db_table),
        comment=quote(TicketComment._meta.db_table),
        contract_history=quote(Contract.history.model._meta.db_table),
        user=quote(get_user_model()._meta.db_table),
    )


def _rows(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# --- figures ------------------------------------------------------------------------------


def duration_text(seconds: float | None) -> str:
    """A duration as the report shows it: "—", "45 min", "3 h 20 min", "2 d 4 h"
    (rounded to the minute)."""
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


@dataclass(frozen=True)
class Figures:
    """One clock's figures for a group of tickets. ``tickets``: every ticket counted
    (met, missed, waiting, no target); ``measured``: those whose clock stopped (the
    times are theirs); ``median``/``p90`` in seconds."""

    tickets: int = 0
    measured: int = 0
    median: float | None = None
    p90: float | None = None
    met: int = 0
    missed: int = 0
    waiting: int = 0

    @property
    def decided(self) -> int:
        """Tickets whose target was met or missed: the share's denominator."""
        return self.met + self.missed

    @property
    def within(self) -> float | None:
        """The share (0-100) of decided tickets that met their target; None without any."""
        return 100 * self.met / self.decided if self.decided else None

    @property
    def within_text(self) -> str:
        return "—" if self.within is None else f"{self.within:.0f}%"

    @property
    def median_text(self) -> str:
        return duration_text(self.median)

    @property
    def p90_text(self) -> str:
        return duration_text(self.p90)


@dataclass(frozen=True)
class Row:
    """A line of the report: the figures of both clocks for one group (``dimension``
    week, plan, priority, person or total; ``value`` the group's)."""

    dimension: str
    value: Any
    label: str
    first_response: Figures = field(default_factory=Figures)
    resolution: Figures = field(default_factory=Figures)

    def figures(self, clock: str) -> Figures:
        return self.first_response if clock == sla.FIRST_RESPONSE else self.resolution

    @property
    def params(self) -> dict[str, str]:
        """The drill-down parameters that narrow a report to this group."""
        if self.dimension == "total":
            return {}
        if self.dimension == "week":
            return {"week": self.value.isoformat()}
        if self.value is None:
            return {self.dimension: NONE}
        return {self.dimension: str(self.value)}


def _plan_label(plan: str | None) -> str:
    if plan is None:
        return "No plan"
    return str(Contract.Plan(plan).label) if plan in Contract.Plan.values else plan


def _priority_label(priority: str) -> str:
    if priority in Ticket.Priority.values:
        return str(Ticket.Priority(priority).label)
    return priority


def _person_label(assignee_id: int | None, row: dict[str, Any]) -> str:
    if assignee_id is None:
        return "Unassigned"
    if row.get("username") is None:
        return f"#{assignee_id} (no longer a user)"
    name = f"{row['first_name']} {row['last_name']}".strip()
    return name or row["username"]


def week_label(monday: dt.date) -> str:
    return f"{monday.day} {monday:%b %Y}"


@dataclass(frozen=True)
class Report:
    """The report for ``filters``: ``weeks`` (every week shown, oldest first, empty ones
    included), ``plans`` (by the plans' order, no plan last), ``priorities`` (urgent
    first), ``people`` (by name, unassigned last) and ``total``."""

    filters: ReportFilter
    weeks: list[Row]
    plans: list[Row]
    priorities: list[Row]
    people: list[Row]
    total: Row

    @property
    def sections(self) -> list[tuple[str, str, list[Row]]]:
        """(dimension, heading, rows) of the breakdowns, in the page's order."""
        return [
            ("week", "By week opened", self.weeks),
            ("plan", "By plan", self.plans),
            ("priority", "By priority", self.priorities),
            ("person", "By person", self.people),
        ]

    @property
    def empty(self) -> bool:
        return self.total.first_response.tickets == 0 and self.total.resolution.tickets == 0

    # --- the chart (Chart.js, shipped by django-unfold) ---

    @property
    def chart_data(self) -> str:
        labels = [f"{row.value.day} {row.value:%b}" for row in self.weeks]
        datasets = [
            {
                "type": "bar",
                "label": "Median first response (h)",
                "data": [_hours(row.first_response.median) for row in self.weeks],
                "yAxisID": "y",
                "backgroundColor": "var(--color-primary-500)",
                "borderColor": "var(--color-primary-500)",
                "borderRadius": 4,
                "order": 2,
            },
            _share_line(
                "First response within target (%)",
                [row.first_response.within for row in self.weeks],
                "#16a34a",
                dashed=False,
            ),
            _share_line(
                "Resolution within target (%)",
                [row.resolution.within for row in self.weeks],
                "#ea580c",
                dashed=True,
            ),
        ]
        return json.dumps({"labels": labels, "datasets": datasets})

    @property
    def chart_options(self) -> str:
        return two_axis_options(
            left={"title": {"display": True, "text": "Median first response (hours)"}},
            right={"min": 0, "max": 100, "title": {"display": True, "text": "Within target (%)"}},
        )

    # --- CSV ---

    CSV_HEADER = [
        "breakdown",
        "group",
        *(
            f"{clock} {name}"
            for clock in CLOCKS
            for name in (
                "tickets",
                "measured",
                "median hours",
                "p90 hours",
                "met",
                "missed",
                "within target %",
                "waiting",
            )
        ),
    ]

    def csv_rows(self) -> Iterator[list[Any]]:
        """The table as CSV rows (``CSV_HEADER``): every breakdown's rows, then the
        total; times in hours, the share in percent (two decimals)."""
        for dimension, _, rows in self.sections:
            for row in rows:
                yield self._csv_row(dimension, row)
        yield self._csv_row("total", self.total)

    @staticmethod
    def _csv_row(dimension: str, row: Row) -> list[Any]:
        group = row.value.isoformat() if dimension == "week" else row.label
        cells: list[Any] = [dimension, group]
        for clock in CLOCKS:
            f = row.figures(clock)
            cells += [
                f.tickets,
                f.measured,
                _hours(f.median),
                _hours(f.p90),
                f.met,
                f.missed,
                None if f.within is None else round(f.within, 2),
                f.waiting,
            ]
        return ["" if cell is None else cell for cell in cells]


def _share_line(label: str, values: list[float | None], color: str, *, dashed: bool) -> dict:
    return {
        "type": "line",
        "label": label,
        "data": [None if v is None else round(v, 1) for v in values],
        "yAxisID": "y1",
        "borderColor": color,
        "backgroundColor": color,
        "borderWidth": 2,
        "borderDash": [6, 4] if dashed else [],
        "pointRadius": 3,
        "spanGaps": True,
        "order": 1,
    }


def _figures(row: dict[str, Any]) -> Figures:
    return Figures(
        tickets=row["tickets"],
        measured=row["measured"],
        median=row["median"],
        p90=row["p90"],
        met=row["met"],
        missed=row["missed"],
        waiting=row["waiting"],
    )


def support_report(*, filters: ReportFilter) -> Report:
    """The report for ``filters`` (docs/product.md#support-reporting): one query."""
    rows = _rows(_sql(_FACTS_SQL + _FIGURES_SQL), filters.sql_params())
    groups: dict[tuple[str, Any], dict[str, Any]] = {}
    for row in rows:
        dimension = _GROUPED[row["grouped"]]
        value = {
            "week": row["week"],
            "plan": row["plan"],
            "priority": row["priority"],
            "person": row["assignee_id"],
            "total": None,
        }[dimension]
        group = groups.setdefault((dimension, value), {"row": row})
        group[row["clock"]] = _figures(row)

    def made(dimension: str, value: Any, label: str) -> Row:
        group = groups.get((dimension, value), {})
        return Row(
            dimension,
            value,
            label,
            group.get(sla.FIRST_RESPONSE, Figures()),
            group.get(sla.RESOLUTION, Figures()),
        )

    present: dict[str, list] = {dimension: [] for dimension in _GROUPED.values()}
    for dimension, value in groups:
        present[dimension].append(value)
    plan_order = {plan: n for n, plan in enumerate(Contract.Plan.values)}
    plans = sorted(present["plan"], key=lambda p: (p is None, plan_order.get(p, 99), p or ""))
    priorities = sorted(
        present["priority"],
        key=lambda p: PRIORITY_ORDER.index(p) if p in PRIORITY_ORDER else 99,
    )
    people = [
        made("person", pk, _person_label(pk, groups[("person", pk)]["row"]))
        for pk in present["person"]
    ]
    people.sort(key=lambda r: (r.value is None, r.label.lower(), r.value or 0))
    return Report(
        filters=filters,
        weeks=[made("week", monday, week_label(monday)) for monday in filters.week_starts],
        plans=[made("plan", plan, _plan_label(plan)) for plan in plans],
        priorities=[made("priority", p, _priority_label(p)) for p in priorities],
        people=people,
        total=made("total", None, "All tickets"),
    )


# --- drill-down ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketLine:
    """One ticket of a drill-down: its clock, outcome and the groups it was counted in."""

    id: int
    subject: str
    created_at: dt.datetime
    clock: str
    stopped_at: dt.datetime | None
    due_at: dt.datetime | None
    decided_at: dt.datetime | None
    outcome: str
    seconds: float | None
    week: dt.date
    priority: str
    plan: str | None
    person: str
    present: bool  # False: deleted since

    @property
    def time_text(self) -> str:
        return duration_text(self.seconds)

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS[self.outcome]

    @property
    def plan_label(self) -> str:
        return _plan_label(self.plan)

    @property
    def priority_label(self) -> str:
        return _priority_label(self.priority)


@dataclass(frozen=True)
class TicketList:
    """A page of the tickets behind a figure, fastest first (unstopped last), with the
    figures they make (``summary``: the same as the report's cell)."""

    filters: ReportFilter
    summary: Figures
    lines: list[TicketLine]
    page: int
    pages: int
    first_position: int  # the position of the page's first ticket, counted from 1


def report_tickets(*, filters: ReportFilter, page: int = 1) -> TicketList:
    """The tickets of one clock (``filters.clock``) behind a report figure, ``page`` by
    page (``DRILL_PAGE_SIZE``; past the end is the last page): two queries, the group's
    figures and the page."""
    if filters.clock not in CLOCKS:
        raise ValueError("A drill-down lists one clock's tickets.")
    params = filters.sql_params()
    summary = Figures()
    for row in _rows(_sql(_FACTS_SQL + _FIGURES_SQL), params):
        if _GROUPED[row["grouped"]] == "total" and row["clock"] == filters.clock:
            summary = _figures(row)
    pages = max(1, math.ceil(summary.tickets / DRILL_PAGE_SIZE))
    page = min(max(page, 1), pages)
    offset = (page - 1) * DRILL_PAGE_SIZE
    rows = _rows(
        _sql(_FACTS_SQL + _TICKETS_SQL), {**params, "limit": DRILL_PAGE_SIZE, "offset": offset}
    )
    lines = [
        TicketLine(
            id=row["id"],
            subject=row["subject"],
            created_at=row["created_at"],
            clock=row["clock"],
            stopped_at=row["stopped_at"],
            due_at=row["due_at"],
            decided_at=row["decided_at"],
            outcome=row["outcome"],
            seconds=row["seconds"],
            week=row["week"],
            priority=row["priority"],
            plan=row["plan"],
            person=_person_label(row["assignee_id"], row),
            present=row["present"],
        )
        for row in rows
    ]
    return TicketList(
        filters=filters,
        summary=summary,
        lines=lines,
        page=page,
        pages=pages,
        first_position=offset + 1,
    )
