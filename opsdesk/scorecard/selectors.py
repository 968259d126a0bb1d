"""The operations scorecard (docs/product.md#scorecard): per ISO week, the figures that
say whether operations work, computed live from history as it stood at a moment.

Every figure reads only what was recorded before the moment (``reporting.ReportFilter``'s
``moment``, the end of an "as of" day): a record's latest version in its simple-history
table before then, so rows changed or deleted since read as they were. Weeks start on
Monday (local time) and are those of ``ReportFilter.week_starts``.

- **onboarding**: checklists completed in the week; time from activation to the last
  task done (median, p90);
- **support**: first response (median, p90, share within target), the support report's
  own figures (``support.reporting.support_report``);
- **billing**: customer-months reconciled (every customer with a contract active in a
  month, or a billing finding about it, once a run could find every kind of finding in
  that month), by the week of that run; the share of them settled without a person's
  touch: no finding, or only findings closed and never changed by a person;
- **cases opened** / **cases resolved**: exceptions opened, and closed (resolved or
  waived) with the median time to resolve: the case's age when it closed, from when its
  problem began (``support.case_age``);
- **staff**: people with at least one history entry as its actor; **actions** per role:
  their history entries, by the role groups they belong to.

The page is five queries whatever the number of weeks or rows (one per family of figures
and the support report's one); a drill-down is one query.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from billing.models import ReconciliationRun
from billing.reconciliation import BILLING_KINDS
from customers.models import Contract, Customer
from kit import roles
from kit.charts import two_axis_options
from kit.people import person_name
from onboarding.models import Checklist
from opsdesk.audit_log.selectors import audited_models
from support import reporting
from support.case_age import began_at_sql
from support.models import Case

ONBOARDING = "onboarding"
BILLING = "billing"
CASES_OPENED = "cases_opened"
CASES_RESOLVED = "cases_resolved"
STAFF = "staff"
ACTIONS = "actions"
FIGURES = (ONBOARDING, BILLING, CASES_OPENED, CASES_RESOLVED, STAFF, ACTIONS)
# The role groups actions are counted by, and the bucket of people in none of them.
ROLES = (roles.SUPPORT, roles.ACCOUNT_MANAGERS, roles.OPS_LEADS)
NO_ROLE = "none"
ROLE_LABELS = {**{role: role for role in ROLES}, NO_ROLE: "No role group"}

_WEEK = "(date_trunc('week', {column} AT TIME ZONE %(zone)s))::date"


def _week(column: str) -> str:
    return _WEEK.format(column=column)


# --- the queries --------------------------------------------------------------------------

# Checklists completed in [since, until) as recorded before the moment.
_ONBOARDING_FACTS = f"""
WITH latest AS (
  SELECT DISTINCT ON (h.id) h.id, h.history_type, h.customer_id, h.contract_id,
         h.activated_at, h.completed_at
  FROM {{checklist_history}} h
  WHERE h.history_date < %(moment)s
    AND h.id IN (SELECT x.id FROM {{checklist_history}} x
                  WHERE x.completed_at >= %(since)s AND x.completed_at < %(until)s)
  ORDER BY h.id, h.history_date DESC, h.history_id DESC
),
facts AS (
  SELECT l.id, l.customer_id, l.activated_at, l.completed_at AS at,
         greatest(extract(epoch FROM l.completed_at - l.activated_at), 0)::float8 AS seconds,
         {_week("l.completed_at")} AS week
  FROM latest l
  WHERE l.history_type <> '-' AND l.completed_at >= %(since)s AND l.completed_at < %(until)s
)
"""

# Cases as recorded before the moment: opened in the weeks, and closed in them, with
# their age when they closed.
_CASE_FACTS = f"""
WITH latest AS (
  SELECT DISTINCT ON (h.id) h.id, h.history_type, h.kind, h.state, h.summary,
         h.customer_id, h.opened_at, h.closed_at, {began_at_sql("h")} AS began_at
  FROM {{case_history}} h
  WHERE h.history_date < %(moment)s
    AND h.id IN (SELECT x.id FROM {{case_history}} x
                  WHERE (x.opened_at >= %(since)s AND x.opened_at < %(until)s)
                     OR (x.closed_at >= %(since)s AND x.closed_at < %(until)s))
  ORDER BY h.id, h.history_date DESC, h.history_id DESC
),
facts AS (
  SELECT l.id, l.kind, l.state, l.summary, l.customer_id, l.opened_at, l.closed_at,
         'cases_opened' AS figure, l.opened_at AS at, NULL::float8 AS seconds,
         {_week("l.opened_at")} AS week
  FROM latest l
  WHERE l.history_type <> '-' AND l.opened_at >= %(since)s AND l.opened_at < %(until)s
  UNION ALL
  SELECT l.id, l.kind, l.state, l.summary, l.customer_id, l.opened_at, l.closed_at,
         'cases_resolved', l.closed_at,
         greatest(extract(epoch FROM l.closed_at - l.began_at), 0)::float8,
         {_week("l.closed_at")}
  FROM latest l
  WHERE l.history_type <> '-' AND l.state IN ('resolved', 'waived')
    AND l.closed_at >= %(since)s AND l.closed_at < %(until)s
)
"""

# Customer-months reconciled, as recorded before the moment. A month is reconciled by
# the first run that succeeded on a day its invoices were due (billing.reconciliation's
# invoice_due_by: the day after its last day plus the grace days), so it could find every
# kind of finding: a whole month's run for every customer, a re-check for its customer.
# Its customer-months: every customer with a contract active in it (as the comparison
# reads them) and every customer with a billing finding about it. Each counts in the week
# it was reconciled, settled without a touch when none of its findings is open and no
# person wrote any of their history.
_BILLING_FACTS = f"""
WITH run_latest AS (
  SELECT DISTINCT ON (h.id) h.id, h.history_type, h.status, h.month, h.customer_id,
         h.started_at, h.finished_at
  FROM {{run_history}} h
  WHERE h.history_date < %(moment)s
  ORDER BY h.id, h.history_date DESC, h.history_id DESC
),
runs AS (
  SELECT r.month, r.customer_id, min(r.finished_at) AS at
  FROM run_latest r
  WHERE r.history_type <> '-' AND r.status = 'succeeded'
    AND (r.started_at AT TIME ZONE 'UTC')::date
        > (r.month + interval '1 month' - interval '1 day')::date + %(grace_days)s
  GROUP BY r.month, r.customer_id
),
months AS (
  SELECT DISTINCT r.month FROM runs r WHERE r.at >= %(since)s AND r.at < %(until)s
),
contract_latest AS (
  SELECT DISTINCT ON (h.id) h.id, h.history_type, h.customer_id, h.status, h.start_date,
         h.end_date
  FROM {{contract_history}} h
  WHERE h.history_date < %(moment)s
  ORDER BY h.id, h.history_date DESC, h.history_id DESC
),
case_latest AS (
  SELECT DISTINCT ON (h.id) h.id, h.history_type, h.state, h.customer_id, h.period
  FROM {{case_history}} h
  WHERE h.history_date < %(moment)s AND h.kind = ANY(%(billing_kinds)s)
    AND h.period IN (SELECT m.month FROM months m)
  ORDER BY h.id, h.history_date DESC, h.history_id DESC
),
cases AS (
  SELECT l.id, l.state, l.customer_id, l.period,
         EXISTS (SELECT FROM {{case_history}} x
                  WHERE x.id = l.id AND x.history_date < %(moment)s
                    AND x.history_user_id IS NOT NULL) AS touched
  FROM case_latest l
  WHERE l.history_type <> '-' AND l.customer_id IS NOT NULL AND l.period IS NOT NULL
),
customer_months AS (
  SELECT c.customer_id, m.month
  FROM contract_latest c
  JOIN months m ON c.start_date <= (m.month + interval '1 month' - interval '1 day')::date
               AND (c.end_date IS NULL OR c.end_date >= m.month)
  WHERE c.history_type <> '-' AND c.status IN ('active', 'ended')
  UNION
  SELECT k.customer_id, k.period FROM cases k
),
reconciled AS (
  SELECT cm.customer_id, cm.month,
         (SELECT min(r.at) FROM runs r
           WHERE r.month = cm.month
             AND (r.customer_id IS NULL OR r.customer_id = cm.customer_id)) AS at
  FROM customer_months cm
),
facts AS (
  SELECT r.customer_id, r.month AS period, r.at,
         coalesce(array_agg(k.id ORDER BY k.id) FILTER (WHERE k.id IS NOT NULL), '{{{{}}}}')
           AS case_ids,
         coalesce(bool_and(k.state IN ('resolved', 'waived')), true) AS settled,
         coalesce(bool_or(k.touched), false) AS touched,
         {_week("r.at")} AS week
  FROM reconciled r
  LEFT JOIN cases k ON k.customer_id = r.customer_id AND k.period = r.month
  WHERE r.at >= %(since)s AND r.at < %(until)s
  GROUP BY r.customer_id, r.month, r.at
)
"""

# Every history entry written by a person in the weeks, before the moment.
_STAFF_FACTS = """
WITH entries AS (
  {entries}
),
facts AS (
  SELECT e.user_id, {week} AS week, count(*) AS actions
  FROM entries e
  GROUP BY 1, 2
)
"""

_ENTRY = """SELECT h.history_user_id AS user_id, h.history_date FROM {table} h
  WHERE h.history_user_id IS NOT NULL AND h.history_date >= %(since)s
    AND h.history_date < %(until)s AND h.history_date < %(moment)s"""

_PERCENTILES = """count(*) AS count,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY f.seconds) AS median,
  percentile_cont(0.9) WITHIN GROUP (ORDER BY f.seconds) AS p90"""

_ONBOARDING_WEEKS = f"SELECT f.week, {_PERCENTILES} FROM facts f GROUP BY f.week"
_CASE_WEEKS = f"SELECT f.figure, f.week, {_PERCENTILES} FROM facts f GROUP BY f.figure, f.week"
_BILLING_WEEKS = """SELECT f.week, count(*) AS count,
  count(*) FILTER (WHERE f.settled AND NOT f.touched) AS untouched
FROM facts f GROUP BY f.week"""
_STAFF_WEEKS = """SELECT f.week, f.user_id, f.actions,
  (SELECT array_agg(g.name ORDER BY g.name) FROM {user_groups} ug
     JOIN {group} g ON g.id = ug.group_id
    WHERE ug.user_id = f.user_id AND g.name = ANY(%(roles)s)) AS roles
FROM facts f"""

_ONBOARDING_ROWS = """SELECT f.*, c.name AS customer_name, k.id IS NOT NULL AS present
FROM facts f
LEFT JOIN {customer} c ON c.id = f.customer_id
LEFT JOIN {checklist} k ON k.id = f.id
WHERE f.week = %(week)s
ORDER BY f.seconds, f.id"""
_CASE_ROWS = """SELECT f.*, c.name AS customer_name, k.id IS NOT NULL AS present
FROM facts f
LEFT JOIN {customer} c ON c.id = f.customer_id
LEFT JOIN {case} k ON k.id = f.id
WHERE f.week = %(week)s AND f.figure = %(figure)s
ORDER BY f.at, f.id"""
_BILLING_ROWS = """SELECT f.*, c.name AS customer_name,
  (SELECT array_agg(ARRAY[u.username, u.first_name, u.last_name]
                    ORDER BY u.first_name, u.last_name, u.username)
     FROM {user} u
    WHERE u.id IN (SELECT x.history_user_id FROM {case_history} x
                    WHERE x.id = ANY(f.case_ids) AND x.history_date < %(moment)s)) AS people
FROM facts f
LEFT JOIN {customer} c ON c.id = f.customer_id
WHERE f.week = %(week)s
ORDER BY f.touched, NOT f.settled, c.name, f.customer_id, f.period"""
_STAFF_ROWS = """SELECT w.*, u.username, u.first_name, u.last_name
FROM ({weeks}) w
LEFT JOIN {user} u ON u.id = w.user_id
WHERE w.week = %(week)s
ORDER BY w.actions DESC, u.username, w.user_id"""


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    user = get_user_model()
    return {
        "checklist_history": quote(Checklist.history.model._meta.db_table),
        "checklist": quote(Checklist._meta.db_table),
        "case_history": quote(Case.history.model._meta.db_table),
        "case": quote(Case._meta.db_table),
        "run_history": quote(ReconciliationRun.history.model._meta.db_table),
        "contract_history": quote(Contract.history.model._meta.db_table),
        "customer": quote(Customer._meta.db_table),
        "user": quote(user._meta.db_table),
        "user_groups": quote(user.groups.through._meta.db_table),
        "group": quote(Group._meta.db_table),
    }


def _staff_facts() -> str:
    quote = connection.ops.quote_name
    entries = "\n  UNION ALL\n  ".join(
        _ENTRY.format(table=quote(model.history.model._meta.db_table)) for model in audited_models()
    )
    return _STAFF_FACTS.format(entries=entries, week=_week("e.history_date"))


def _params(filters: reporting.ReportFilter, **extra) -> dict[str, Any]:
    return {
        "moment": filters.moment,
        "since": filters.since,
        "until": filters.until,
        "zone": timezone.get_current_timezone_name(),
        "billing_kinds": [str(kind) for kind in BILLING_KINDS],
        "grace_days": settings.OPSDESK_INVOICE_GRACE_DAYS,
        "roles": list(ROLES),
        **extra,
    }


def _rows(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql.format(**_tables()), params)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# --- figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Times:
    """How many, and the median and p90 of their times (seconds)."""

    count: int = 0
    median: float | None = None
    p90: float | None = None

    @property
    def median_text(self) -> str:
        return reporting.duration_text(self.median)

    @property
    def p90_text(self) -> str:
        return reporting.duration_text(self.p90)


@dataclass(frozen=True)
class Share:
    """Customer-months reconciled, and those settled without a person's touch."""

    count: int = 0
    untouched: int = 0

    @property
    def percent(self) -> float | None:
        return 100 * self.untouched / self.count if self.count else None

    @property
    def text(self) -> str:
        return "—" if self.percent is None else f"{self.percent:.0f}%"


@dataclass(frozen=True)
class Week:
    """One week's figures."""

    monday: dt.date
    onboarding: Times = field(default_factory=Times)
    support: reporting.Figures = field(default_factory=reporting.Figures)
    billing: Share = field(default_factory=Share)
    cases_opened: int = 0
    cases_resolved: Times = field(default_factory=Times)
    staff: int = 0
    actions: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return reporting.week_label(self.monday)


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 1)


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 86400, 1)


@dataclass(frozen=True)
class Scorecard:
    filters: reporting.ReportFilter
    weeks: list[Week]

    @property
    def chart_data(self) -> str:
        labels = [f"{week.monday.day} {week.monday:%b}" for week in self.weeks]

        def line(label, values, color, *, dashed=False):
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

        datasets = [
            {
                "type": "bar",
                "label": "Median time to onboard (days)",
                "data": [_days(week.onboarding.median) for week in self.weeks],
                "yAxisID": "y",
                "backgroundColor": "var(--color-primary-500)",
                "borderColor": "var(--color-primary-500)",
                "borderRadius": 4,
                "order": 2,
            },
            line(
                "First response within target (%)",
                [week.support.within for week in self.weeks],
                "#16a34a",
            ),
            line(
                "Billing months without a touch (%)",
                [week.billing.percent for week in self.weeks],
                "#ea580c",
                dashed=True,
            ),
        ]
        return json.dumps({"labels": labels, "datasets": datasets})

    @property
    def chart_options(self) -> str:
        return two_axis_options(
            left={"title": {"display": True, "text": "Median time to onboard (days)"}},
            right={"min": 0, "max": 100, "title": {"display": True, "text": "Share (%)"}},
        )


def _times(row: dict[str, Any]) -> Times:
    return Times(count=row["count"], median=row["median"], p90=row["p90"])


def scorecard(*, filters: reporting.ReportFilter) -> Scorecard:
    """The figures of every week of ``filters`` (its ``moment`` and ``weeks``; plan,
    priority and the rest are not read): five queries."""
    params = _params(filters)
    per_week: dict[dt.date, dict[str, Any]] = defaultdict(dict)
    for row in _rows(_ONBOARDING_FACTS + _ONBOARDING_WEEKS, params):
        per_week[row["week"]]["onboarding"] = _times(row)
    for row in _rows(_CASE_FACTS + _CASE_WEEKS, params):
        if row["figure"] == CASES_OPENED:
            per_week[row["week"]]["cases_opened"] = row["count"]
        else:
            per_week[row["week"]]["cases_resolved"] = _times(row)
    for row in _rows(_BILLING_FACTS + _BILLING_WEEKS, params):
        per_week[row["week"]]["billing"] = Share(count=row["count"], untouched=row["untouched"])
    for row in _rows(_staff_facts() + _STAFF_WEEKS, params):
        figures = per_week[row["week"]]
        figures["staff"] = figures.get("staff", 0) + 1
        actions = figures.setdefault("actions", dict.fromkeys((*ROLES, NO_ROLE), 0))
        for role in row["roles"] or [NO_ROLE]:
            actions[role] += row["actions"]
    support = reporting.support_report(
        filters=reporting.ReportFilter(moment=filters.moment, weeks=filters.weeks)
    )
    for row in support.weeks:
        per_week[row.value]["support"] = row.first_response
    return Scorecard(
        filters=filters,
        weeks=[
            Week(
                monday=monday,
                **{"actions": dict.fromkeys((*ROLES, NO_ROLE), 0), **per_week.get(monday, {})},
            )
            for monday in filters.week_starts
        ],
    )


# --- drill-down ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One row behind a figure: what it is, the record it links to (``admin`` URL name
    and id; none when it was deleted since), when, and its value."""

    id: int
    title: str
    detail: str
    at: dt.datetime | None
    value: str
    link: tuple[str, int] | None
    weight: int = 1  # how much the row adds to the figure (a person's actions)


def _person(row: dict[str, Any]) -> str:
    if row.get("username") is None:
        return f"#{row['user_id']} (no longer a user)"
    name = f"{row['first_name']} {row['last_name']}".strip()
    return f"{name} ({row['username']})" if name else row["username"]


def _findings_text(case_ids: list[int]) -> str:
    """ "no findings", "1 finding (case #4)", "2 findings (cases #4, #7)"."""
    if not case_ids:
        return "no findings"
    cases = ", ".join(f"#{pk}" for pk in case_ids)
    if len(case_ids) == 1:
        return f"1 finding (case {cases})"
    return f"{len(case_ids)} findings (cases {cases})"


def _touch_text(row: dict[str, Any]) -> str:
    """ "no touch" (settled by reconciliation alone), "touched by Olga Nilsen, Sam Rivera",
    or "finding open" (nobody has touched it yet)."""
    if row["touched"]:
        user = get_user_model()
        names = [
            person_name(user(username=username, first_name=first, last_name=last))
            for username, first, last in row["people"] or []
        ]
        return "touched by " + ", ".join(names or ["a former user"])
    return "no touch" if row["settled"] else "finding open"


def scorecard_rows(
    *, filters: reporting.ReportFilter, figure: str, week: dt.date, role: str | None = None
) -> list[Line]:
    """The rows behind one figure of one week (``week``: its Monday; ``role`` for
    ``ACTIONS``, one of ``ROLES`` or ``NO_ROLE``): one query. Their number (their
    ``weight`` summed, for actions) is the figure's count."""
    params = _params(filters, week=week, figure=figure)
    if figure == ONBOARDING:
        return [
            Line(
                id=row["id"],
                title=f"Onboarding of {row['customer_name'] or 'a deleted customer'}",
                detail=f"activated {timezone.localtime(row['activated_at']):%d %b %Y %H:%M}",
                at=row["at"],
                value=reporting.duration_text(row["seconds"]),
                link=("admin:onboarding_checklist_change", row["id"]) if row["present"] else None,
            )
            for row in _rows(_ONBOARDING_FACTS + _ONBOARDING_ROWS, params)
        ]
    if figure in (CASES_OPENED, CASES_RESOLVED):
        return [
            Line(
                id=row["id"],
                title=row["summary"],
                detail=" · ".join(
                    part
                    for part in (
                        str(Case.Kind(row["kind"]).label)
                        if row["kind"] in Case.Kind.values
                        else row["kind"],
                        str(Case.State(row["state"]).label)
                        if row["state"] in Case.State.values
                        else row["state"],
                        row["customer_name"] or "",
                    )
                    if part
                ),
                at=row["at"],
                value=reporting.duration_text(row["seconds"]) if figure == CASES_RESOLVED else "",
                link=("admin:support_case_change", row["id"]) if row["present"] else None,
            )
            for row in _rows(_CASE_FACTS + _CASE_ROWS, params)
        ]
    if figure == BILLING:
        return [
            Line(
                id=row["customer_id"],
                title=f"{row['customer_name'] or 'A deleted customer'}, {row['period']:%B %Y}",
                detail=_findings_text(row["case_ids"]),
                at=row["at"],
                value=_touch_text(row),
                link=("admin:customers_customer_change", row["customer_id"])
                if row["customer_name"] is not None
                else None,
            )
            for row in _rows(_BILLING_FACTS + _BILLING_ROWS, params)
        ]
    if figure in (STAFF, ACTIONS):
        lines = []
        sql = _staff_facts() + _STAFF_ROWS.replace("{weeks}", _STAFF_WEEKS)
        for row in _rows(sql, params):
            in_roles = row["roles"] or [NO_ROLE]
            if figure == ACTIONS and role not in in_roles:
                continue
            lines.append(
                Line(
                    id=row["user_id"],
                    title=_person(row),
                    detail=", ".join(ROLE_LABELS[r] for r in in_roles),
                    at=None,
                    value=f"{row['actions']} action{'s' if row['actions'] != 1 else ''}",
                    link=("admin:auth_user_change", row["user_id"])
                    if row.get("username") is not None
                    else None,
                    weight=row["actions"] if figure == ACTIONS else 1,
                )
            )
        return lines
    raise ValueError(f"No figure {figure!r}.")
