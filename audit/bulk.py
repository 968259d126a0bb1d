"""Bulk writes that keep history, attributed to the current actor.

Thin wrappers over django-simple-history's helpers that also fill ``history_actor``
(bulk paths send no ``pre_create_historical_record`` signal) and pass the guard of
``audit.guard``; and ``copy_with_history`` for inserts too large for them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from django.db import models, transaction
from django.utils import timezone
from simple_history import utils as history_utils

from audit.context import current_actor
from audit.guard import history_recorded_by_caller


def _history_kwargs(reason: str | None) -> dict:
    actor = current_actor()
    return {
        "default_user": actor.user,
        "default_change_reason": reason or actor.reason or "",
        # One bulk write, one moment: its history rows share it.
        "default_date": timezone.now(),
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


def _history_insert(model: type[models.Model], source: str, reason: str | None) -> tuple:
    """SQL and params that write a ``+`` history row, attributed to the current actor,
    for every row of ``source`` (a table or CTE name, with any ``WHERE`` appended)."""
    table, columns = _history_columns(model)
    actor = current_actor()
    sql = (
        f"INSERT INTO {table} ({columns}, history_date, history_type,"
        " history_change_reason, history_user_id, history_actor, history_for)"
        f" SELECT {columns}, now(), '+', %s, %s, %s, %s FROM {source}"
    )
    user_id = getattr(actor.user, "pk", None)
    return sql, [reason or actor.reason or "", user_id, actor.label, actor.done_for]


def copy_with_history(
    objs: Sequence[models.Model], model: type[models.Model], *, reason: str | None = None
) -> list[models.Model]:
    """Insert many new rows with PostgreSQL ``COPY`` and their ``+`` history rows with one
    ``INSERT ... SELECT``, in one transaction: the bulk path for millions of rows.

    Ids are drawn from the table's sequence first, so the history rows select exactly
    the rows copied. ``auto_now``/``default`` values are applied as ``save()`` would.
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
        model, f"{qn(opts.db_table)} WHERE {qn(opts.pk.column)} = ANY(%s)", reason
    )
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
                        f.pre_save(obj, add=True)
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
