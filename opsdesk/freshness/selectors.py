"""The freshness panel (docs/product.md#freshness): when each source of outside data last
delivered, how much of it failed, and whether it has been silent longer than usual.

The sources and their deliveries:

- **product webhooks**: ``support.WebhookEvent`` of source ``product``, each event stored;
- **CRM**: ``support.WebhookEvent`` of source ``crm``;
- **inbound email**: ``support.InboundEmail``, each message stored (webhook or IMAP);
- **invoice imports**: ``billing.InvoiceImport``, each import of the billing export.

A delivery is a row as stored, whatever became of it (processed, failed, rejected), at
its ``received_at``. Failed is what waits for a person now: events and emails whose status
is failed (a retry makes them pending again), and imports that failed since the latest
one that succeeded (a good import of a corrected file is what answers them). Pending is
what the workers still owe: events and emails waiting for their first attempt or a retry.

``source_state`` is the rule (a pure function); ``sources_freshness`` reads every
source's figures in one query whatever the number of rows: each figure is a bounded read
(the latest ``OPSDESK_FRESHNESS_SAMPLE`` deliveries, counts stopped at a cap) that an
index on the table serves.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.urls import reverse

from billing.models import InvoiceImport
from kit.text import capped_text
from support.models import InboundEmail, WebhookEvent
from support.reporting import duration_text

OK = "ok"
SILENT = "silent"
NEVER = "never"
STATE_LABELS = {OK: "Delivering", SILENT: "Silent", NEVER: "Never delivered"}

# Counts of deliveries in a window stop here ("10000+"), and counts of what piles up
# (failed, pending) here ("999+"): no figure counts a whole table.
DELIVERIES_CAP = 10_000
BACKLOG_CAP = 999

PRODUCT, CRM, EMAIL, INVOICES = "product", "crm", "email", "invoices"


# --- the rule ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceState:
    """What the rule says of a source at a moment: ``state`` (ok, silent, never),
    ``usual_gap`` (how long a usual silence of it may last), ``quiet_for`` (since its
    latest delivery; None when it never delivered), ``gaps`` (between the deliveries read)
    and ``learned`` (their percentile; None while too few to learn from)."""

    state: str
    usual_gap: dt.timedelta
    quiet_for: dt.timedelta | None
    gaps: int
    learned: dt.timedelta | None = None

    @property
    def floored(self) -> bool:
        """Whether the floor, not the gaps, made the usual gap."""
        return self.learned is None or self.learned < self.usual_gap


def percentile_gap(gaps: Sequence[dt.timedelta], percentile: int) -> dt.timedelta:
    """The ``percentile``-th gap by nearest rank: the smallest gap at least that share of
    the gaps is no longer than (90 of 99 gaps: the 90th shortest; 100: the longest)."""
    ordered = sorted(gaps)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def source_state(
    *,
    deliveries: Sequence[dt.datetime],
    now: dt.datetime,
    floor: dt.timedelta,
    percentile: int,
    min_gaps: int,
) -> SourceState:
    """Whether a source has been silent longer than usual, from its latest deliveries
    (any order; none later than ``now``).

    The gaps are those between consecutive deliveries. Their ``percentile``-th (nearest
    rank) is what the source taught, once there are at least ``min_gaps`` of them; its
    usual gap is that, never shorter than ``floor``, and the floor alone before. The
    source is silent when the time since its latest delivery is longer than its usual gap
    (exactly as long is still usual), and never delivered when it has no delivery at
    all."""
    if not deliveries:
        return SourceState(state=NEVER, usual_gap=floor, quiet_for=None, gaps=0)
    ordered = sorted(deliveries)
    gaps = [later - earlier for earlier, later in itertools.pairwise(ordered)]
    learned = percentile_gap(gaps, percentile) if len(gaps) >= min_gaps else None
    usual = floor if learned is None else max(floor, learned)
    quiet_for = now - ordered[-1]
    return SourceState(
        state=SILENT if quiet_for > usual else OK,
        usual_gap=usual,
        quiet_for=quiet_for,
        gaps=len(gaps),
        learned=learned,
    )


# --- the figures ------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFreshness:
    """One source on the panel. Counts above their cap mean "more than the cap"; a URL is
    the list of exactly the rows counted (empty: no such list); ``pending`` is None for a
    source whose deliveries do not wait for a worker (imports run at once)."""

    key: str
    label: str
    what: str  # what one delivery is, for the page ("event", "email", "import")
    last_delivered_at: dt.datetime | None
    deliveries_day: int
    deliveries_week: int
    failed: int
    pending: int | None
    last_error: str
    rule: SourceState
    list_url: str
    failed_url: str
    pending_url: str
    # The permissions that open those lists (any one of them).
    list_permissions: tuple[str, ...]
    percentile: int = 90

    @property
    def state(self) -> str:
        return self.rule.state

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.rule.state]

    @property
    def usual_gap_text(self) -> str:
        return duration_text(self.rule.usual_gap.total_seconds())

    @property
    def usual_gap_why(self) -> str:
        """Where the usual gap comes from, in a few words."""
        rule = self.rule
        if rule.learned is None:
            return "its floor: too few deliveries to learn from"
        if rule.floored:
            learned = duration_text(rule.learned.total_seconds())
            return f"its floor; {_ordinal(self.percentile)} percentile of its gaps: {learned}"
        return f"{_ordinal(self.percentile)} percentile of its last {rule.gaps} gaps"

    @property
    def quiet_for_text(self) -> str:
        quiet = self.rule.quiet_for
        return "" if quiet is None else duration_text(quiet.total_seconds())

    @property
    def deliveries_day_text(self) -> str:
        return capped_text(self.deliveries_day, DELIVERIES_CAP)

    @property
    def deliveries_week_text(self) -> str:
        return capped_text(self.deliveries_week, DELIVERIES_CAP)

    @property
    def failed_text(self) -> str:
        return capped_text(self.failed, BACKLOG_CAP)

    @property
    def pending_text(self) -> str:
        return "" if self.pending is None else capped_text(self.pending, BACKLOG_CAP)


def _ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


@dataclass(frozen=True)
class _Source:
    key: str
    label: str
    what: str
    model: type
    # The SQL condition on ``t`` (and its one parameter) of this source's rows in the
    # model's table.
    where: str = "TRUE"
    value: str = ""
    # The changelist filter of the same rows.
    list_filter: tuple[tuple[str, str], ...] = ()
    imports: bool = False


SOURCES = (
    _Source(
        PRODUCT,
        "Product webhooks",
        "event",
        WebhookEvent,
        "t.source = %s",
        WebhookEvent.Source.PRODUCT,
        (("source__exact", WebhookEvent.Source.PRODUCT),),
    ),
    _Source(
        CRM,
        "CRM",
        "event",
        WebhookEvent,
        "t.source = %s",
        WebhookEvent.Source.CRM,
        (("source__exact", WebhookEvent.Source.CRM),),
    ),
    _Source(EMAIL, "Inbound email", "email", InboundEmail),
    _Source(INVOICES, "Invoice imports", "import", InvoiceImport, imports=True),
)

# One row per source: its latest deliveries, the deliveries of the last day and week, its
# failures and pending rows (each count stopped at its cap), the latest failure's error.
# Every read is a LIMIT over one index: (source, received_at) or received_at for the
# deliveries, the failed and pending rows' partial indexes for the rest.
_STORED_SQL = """
SELECT %s AS key,
  ARRAY(SELECT t.received_at FROM {table} t WHERE {where} AND t.received_at <= %s
         ORDER BY t.received_at DESC LIMIT %s) AS recent,
  (SELECT count(*) FROM (SELECT 1 FROM {table} t WHERE {where}
     AND t.received_at > %s AND t.received_at <= %s LIMIT %s) d) AS day,
  (SELECT count(*) FROM (SELECT 1 FROM {table} t WHERE {where}
     AND t.received_at > %s AND t.received_at <= %s LIMIT %s) w) AS week,
  (SELECT count(*) FROM (SELECT 1 FROM {table} t WHERE {where}
     AND t.status = 'failed' LIMIT %s) f) AS failed,
  (SELECT count(*) FROM (SELECT 1 FROM {table} t WHERE {where}
     AND t.status = 'pending' LIMIT %s) p) AS pending,
  (SELECT t.error FROM {table} t WHERE {where} AND t.status = 'failed'
    ORDER BY t.received_at DESC LIMIT 1) AS last_error,
  NULL::timestamptz AS since
"""

# Imports: failed are those after the latest import that succeeded (``since``).
_IMPORTS_SQL = """
SELECT %s AS key,
  ARRAY(SELECT t.received_at FROM {table} t WHERE t.received_at <= %s
         ORDER BY t.received_at DESC LIMIT %s) AS recent,
  (SELECT count(*) FROM (SELECT 1 FROM {table} t
     WHERE t.received_at > %s AND t.received_at <= %s LIMIT %s) d) AS day,
  (SELECT count(*) FROM (SELECT 1 FROM {table} t
     WHERE t.received_at > %s AND t.received_at <= %s LIMIT %s) w) AS week,
  (SELECT count(*) FROM (SELECT 1 FROM {table} t WHERE t.status = 'failed'
     AND t.received_at > coalesce(s.since, '-infinity') LIMIT %s) f) AS failed,
  NULL::bigint AS pending,
  (SELECT t.error FROM {table} t WHERE t.status = 'failed'
     AND t.received_at > coalesce(s.since, '-infinity')
    ORDER BY t.received_at DESC LIMIT 1) AS last_error,
  s.since
FROM (SELECT (SELECT t.received_at FROM {table} t
               WHERE t.status = 'succeeded' AND t.received_at <= %s
               ORDER BY t.received_at DESC LIMIT 1) AS since) s
"""


def _source_sql(source: _Source, now: dt.datetime, sample: int) -> tuple[str, list]:
    day, week = now - dt.timedelta(days=1), now - dt.timedelta(days=7)
    # A count reads one row past its cap, to tell "more than the cap" from the cap.
    deliveries, backlog = DELIVERIES_CAP + 1, BACKLOG_CAP + 1
    table = connection.ops.quote_name(source.model._meta.db_table)
    if source.imports:
        params = [source.key, now, sample, day, now, deliveries, week, now, deliveries]
        params += [backlog, now]
        return _IMPORTS_SQL.format(table=table), params
    sql = _STORED_SQL.format(table=table, where=source.where)
    value = [source.value] if source.value else []
    params = [source.key, *value, now, sample]
    params += [*value, day, now, deliveries, *value, week, now, deliveries]
    params += [*value, backlog, *value, backlog, *value]
    return sql, params


def _changelist(model, filters: Sequence[tuple[str, str]]) -> str:
    opts = model._meta
    base = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{base}?{urlencode(list(filters))}" if filters else base


def sources_freshness(*, now: dt.datetime) -> list[SourceFreshness]:
    """Every source's figures as of ``now``, in the panel's order. One query."""
    sample = settings.OPSDESK_FRESHNESS_SAMPLE
    parts = [_source_sql(source, now, sample) for source in SOURCES]
    sql = " UNION ALL ".join(f"({part})" for part, _ in parts)
    params = [value for _, part_params in parts for value in part_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        rows = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}

    panel = []
    for source in SOURCES:
        row = rows[source.key]
        recent = row["recent"] or []
        opts = source.model._meta
        failed_filters = [*source.list_filter, ("status__exact", "failed")]
        if source.imports and row["since"] is not None:
            failed_filters.append(("received_at__gt", row["since"].isoformat()))
        panel.append(
            SourceFreshness(
                key=source.key,
                label=source.label,
                what=source.what,
                last_delivered_at=max(recent) if recent else None,
                deliveries_day=row["day"],
                deliveries_week=row["week"],
                failed=row["failed"],
                pending=row["pending"],
                last_error=row["last_error"] or "",
                rule=source_state(
                    deliveries=recent,
                    now=now,
                    floor=dt.timedelta(
                        minutes=settings.OPSDESK_FRESHNESS_FLOOR_MINUTES[source.key]
                    ),
                    percentile=settings.OPSDESK_FRESHNESS_PERCENTILE,
                    min_gaps=settings.OPSDESK_FRESHNESS_MIN_GAPS,
                ),
                list_url=_changelist(source.model, source.list_filter),
                failed_url=_changelist(source.model, failed_filters),
                pending_url=""
                if source.imports
                else _changelist(source.model, [*source.list_filter, ("status__exact", "pending")]),
                list_permissions=(
                    f"{opts.app_label}.view_{opts.model_name}",
                    f"{opts.app_label}.change_{opts.model_name}",
                ),
                percentile=settings.OPSDESK_FRESHNESS_PERCENTILE,
            )
        )
    return panel
