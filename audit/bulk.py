"""Bulk writes that keep history, attributed to the current actor.

Thin wrappers over django-simple-history's helpers that also fill ``history_actor``
(bulk paths send no ``pre_create_historical_record`` signal) and pass the guard of
``audit.guard``; ``copy_with_history`` for inserts too large for them; and
``bulk_create_with_past`` for records inserted with the history of what already happened
to them (the demo data).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction
from django.utils import timezone
from simple_history import utils as history_utils

from audit.context import current_actor, recorded_moment
from audit.guard import history_recorded_by_caller


def _history_kwargs(reason: str | None) -> dict:
    actor = current_actor()
    return {
        "default_user": actor.user,
        "default_change_reason": reason or actor.reason or "",
        # One bulk write, one moment: its history rows share it.
        "default_date": recorded_moment() or timezone.now(),
        "custom_historical_attrs": {"history_actor": actor.label, "history_for": actor.done_for},
    }


def bulk_create_with_history(
    objs: Sequence[models.Model],
    model: type[models.Model],
    *,
    batch_size: int | None = 2000,
    reason: str | None = None,
) -> list[models.Model]:
    """Insert ``objs`` and one ``+`` history row each, in one transaction."""
    if not objs:
        return []
    with history_recorded_by_caller():
        return history_utils.bulk_create_with_history(
            objs, model, batch_size=batch_size, **_history_kwargs(reason)
        )


def bulk_update_with_history(
    objs: Sequence[models.Model],
    model: type[models.Model],
    fields: Iterable[str],
    *,
    batch_size: int | None = 2000,
    reason: str | None = None,
) -> int:
    """Update ``fields`` of ``objs`` and write one ``~`` history row each, in one transaction."""
    if not objs:
        return 0
    with history_recorded_by_caller():
        return history_utils.bulk_update_with_history(
            objs, model, list(fields), batch_size=batch_size, **_history_kwargs(reason)
        )


def update_with_history(queryset: models.QuerySet, *, reason: str | None = None, **values) -> int:
    """``queryset.update(**values)`` with a history row per changed row.

    Locks the rows (in primary-key order, so concurrent callers cannot deadlock), applies
    the values in Python and writes them back with ``bulk_update_with_history``. Rows
    that already hold the values are left alone and get no history row. Returns the
    number of rows changed.
    """
    fields = list(values)
    with transaction.atomic():
        rows = list(queryset.select_for_update().order_by("pk"))
        changed = []
        for row in rows:
            if any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                changed.append(row)
        bulk_update_with_history(changed, queryset.model, fields, reason=reason)
    return len(changed)


_NATIVE_COPY_TYPES = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "EmailField",
    "ForeignKey",
    "IntegerField",
    "PositiveBigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SlugField",
    "SmallIntegerField",
    "TextField",
}


@functools.cache
def _history_columns(model: type[models.Model]) -> tuple[str, str]:
    """The history table and the model columns it copies (minus ``excluded_fields``),
    quoted. Cached: ``model.history`` builds a new manager class on every access."""
    from django.db import connection

    qn = connection.ops.quote_name
    history = model.history.model._meta
    kept = {f.column for f in history.concrete_fields}
    columns = [qn(f.column) for f in model._meta.concrete_fields if f.column in kept]
    return qn(history.db_table), ", ".join(columns)


def _history_insert(
    model: type[models.Model], source: str, reason: str | None, *, dated_by: str | None = None
) -> tuple:
    """SQL and params that write a ``+`` history row, attributed to the current actor,
    for every row of ``source`` (a table or CTE name, with any ``WHERE`` appended), dated
    now (or ``recorded_at``'s moment), or by each row's own ``dated_by`` column."""
    from django.db import connection

    table, columns = _history_columns(model)
    actor = current_actor()
    params = [reason or actor.reason or "", getattr(actor.user, "pk", None), actor.label]
    if dated_by is not None:
        date = connection.ops.quote_name(model._meta.get_field(dated_by).column)
    elif (moment := recorded_moment()) is not None:
        date, params = "%s", [moment, *params]
    else:
        date = "now()"
    sql = (
        f"INSERT INTO {table} ({columns}, history_date, history_type,"
        " history_change_reason, history_user_id, history_actor, history_for)"
        f" SELECT {columns}, {date}, '+', %s, %s, %s, %s FROM {source}"
    )
    return sql, [*params, actor.done_for]


def copy_with_history(
    objs: Sequence[models.Model],
    model: type[models.Model],
    *,
    reason: str | None = None,
    dated_by: str | None = None,
) -> list[models.Model]:
    """Insert many new rows with PostgreSQL ``COPY`` and their ``+`` history rows with one
    ``INSERT ... SELECT``, in one transaction: the bulk path for millions of rows.

    Ids are drawn from the table's sequence first, so the history rows select exactly
    the rows copied. ``auto_now``/``default`` values are applied as ``save()`` would,
    but for ``dated_by``: a date-time field whose value each object carries (even an
    ``auto_now`` one) and that dates its history row (rows recorded in the past).
    Returns ``objs`` with their primary keys set.
    """
    if not objs:
        return []
    from django.db import connection

    qn = connection.ops.quote_name
    opts = model._meta
    fields = list(opts.concrete_fields)
    # psycopg adapts plain values itself; Django's per-value preparation is most of the
    # cost at millions of rows, so keep it for the fields that need it (JSON, arrays...).
    prepared = [(f, f.get_internal_type() in _NATIVE_COPY_TYPES) for f in fields]
    columns = ", ".join(qn(f.column) for f in fields)
    history_sql, history_params = _history_insert(
        model,
        f"{qn(opts.db_table)} WHERE {qn(opts.pk.column)} = ANY(%s)",
        reason,
        dated_by=dated_by,
    )
    kept = opts.get_field(dated_by).attname if dated_by else None
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [opts.db_table, opts.pk.column, len(objs)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        for obj, pk in zip(objs, ids, strict=True):
            obj.pk = pk
            obj._state.adding = False
        # COPY goes through psycopg directly; map its errors to Django's (IntegrityError...).
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY {qn(opts.db_table)} ({columns}) FROM STDIN") as copy,
        ):
            for obj in objs:
                copy.write_row(
                    [
                        getattr(obj, kept)
                        if f.attname == kept
                        else f.pre_save(obj, add=True)
                        if native
                        else f.get_db_prep_save(f.pre_save(obj, add=True), connection)
                        for f, native in prepared
                    ]
                )
        cursor.execute(history_sql, [*history_params, ids])
    return list(objs)


def insert_with_history(obj: models.Model, *, unique: Sequence[str]) -> models.Model | None:
    """Insert one new row and its ``+`` history row in a single statement, unless a row
    with the same ``unique`` fields exists: then insert nothing and return None.

    The hot path of intake (one webhook delivery, one row): ``INSERT ... ON CONFLICT DO
    NOTHING`` lets the unique constraint decide between concurrent deliveries, and a
    writable CTE writes the history from the inserted row in the same round trip.
    ``unique=()`` lets every unique constraint and index of the table decide (a row
    that is a duplicate by either of two keys, one of them a partial index).
    """
    from django.db import connection

    qn = connection.ops.quote_name
    model = type(obj)
    opts = model._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    columns = ", ".join(qn(f.column) for f in fields)
    conflict = ", ".join(qn(opts.get_field(name).column) for name in unique)
    conflict = f"({conflict}) " if conflict else ""
    history_sql, history_params = _history_insert(model, "new", reason=None)
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH new AS (INSERT INTO {qn(opts.db_table)} ({columns})"
            f" VALUES ({', '.join(['%s'] * len(fields))})"
            f" ON CONFLICT {conflict}DO NOTHING RETURNING *),"
            f" history AS ({history_sql})"
            f" SELECT {qn(opts.pk.column)} FROM new",
            [*values, *history_params],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    obj.pk = row[0]
    obj._state.adding = False
    return obj


@dataclass(frozen=True)
class PastChange:
    """One history row of what already happened to a record: when, by whom (``actor``,
    a history actor label, and ``user`` for a person), why, and the ``values``
    (attnames) in which the record then differed from the record as it is now."""

    at: dt.datetime
    actor: str
    user: Any = None
    reason: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)


def bulk_create_with_past(
    items: Sequence[tuple[models.Model, Sequence[PastChange]]],
    model: type[models.Model],
    *,
    batch_size: int | None = 2000,
) -> list[models.Model]:
    """Insert each record of ``items`` as it is now, with one history row per change of
    its past, in order of time: the first ``+`` (its creation), the others ``~``.

    For data that arrives with its past (the demo data): each row is dated and attributed
    as its change says, not by the clock and the current actor. The last change should
    leave the record as it is (``values`` empty): its latest history row is the record.
    ``auto_now_add`` fields take the first change's moment (unless set on the object) and
    ``auto_now`` ones each change's moment, as ``save()`` at that moment would have."""
    items = [(obj, sorted(past, key=lambda change: change.at)) for obj, past in items if past]
    if not items:
        return []
    concrete = model._meta.concrete_fields
    created_fields = [f for f in concrete if getattr(f, "auto_now_add", False)]
    updated_fields = [f for f in concrete if getattr(f, "auto_now", False)]
    stamps = {}
    for obj, past in items:
        values = {f.attname: getattr(obj, f.attname) or past[0].at for f in created_fields}
        values.update({f.attname: past[-1].at for f in updated_fields})
        stamps[id(obj)] = values
    objs = [obj for obj, _ in items]
    history = model.history.model
    with transaction.atomic(), history_recorded_by_caller():
        model._default_manager.bulk_create(objs, batch_size=batch_size)
        if stamps and (created_fields or updated_fields):
            # bulk_create stamped the clock's time into them: put the past back.
            for obj in objs:
                for name, value in stamps[id(obj)].items():
                    setattr(obj, name, value)
            model._default_manager.bulk_update(
                objs, [f.name for f in (*created_fields, *updated_fields)], batch_size=batch_size
            )
        rows = []
        for obj, past in items:
            current = {f.attname: getattr(obj, f.attname) for f in history.tracked_fields}
            for position, change in enumerate(past):
                values = {**current, **change.values}
                values.update({f.attname: change.at for f in updated_fields})
                rows.append(
                    history(
                        **values,
                        history_date=change.at,
                        history_type="~" if position else "+",
                        history_user_id=getattr(change.user, "pk", None),
                        history_change_reason=change.reason,
                        history_actor=change.actor,
                        history_for="",
                    )
                )
        history._default_manager.bulk_create(rows, batch_size=batch_size)
    return objs
