"""History is append-only for the application: a PostgreSQL trigger on every history table.

The trigger rejects every ``UPDATE`` and every ``DELETE`` of a history row. The one
exception is retention (``manage.py prune_history``): a transaction that opted in with
``SET LOCAL opsdesk.history_retention = 'on'`` and named its cutoff with
``SET LOCAL opsdesk.history_retention_before = '<timestamp>'`` may delete rows whose
``history_date`` is older than the cutoff (``retention_opt_in()`` does both). An m2m
history table (``HistoricalTicket_tags``...) has no date of its own: its rows follow
the history row they belong to. ``TRUNCATE`` is not a row operation and stays possible
(test databases are flushed with it).

The trigger is installed by ``audit/migrations/0001_history_append_only.py`` and, for
history tables created later, by a ``post_migrate`` handler (``install_missing``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import connections, models, transaction

FUNCTION = "opsdesk_history_append_only"
TRIGGER = "opsdesk_history_append_only"
RETENTION_FLAG = "opsdesk.history_retention"
RETENTION_BEFORE = "opsdesk.history_retention_before"
MIGRATION = ("audit", "0001_history_append_only")

FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cutoff timestamptz;
    row_date timestamptz;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'history is append-only: UPDATE of % is not allowed', TG_TABLE_NAME
            USING HINT = 'History rows are never changed; write a new row instead.';
    END IF;
    IF coalesce(current_setting('{RETENTION_FLAG}', true), '') <> 'on' THEN
        RAISE EXCEPTION 'history is append-only: DELETE from % is not allowed', TG_TABLE_NAME
            USING HINT = 'Only the retention job (manage.py prune_history) deletes history.';
    END IF;
    cutoff := nullif(current_setting('{RETENTION_BEFORE}', true), '')::timestamptz;
    IF TG_NARGS = 0 THEN
        row_date := OLD.history_date;
    ELSE  -- an m2m history table: the date of the history row it belongs to
        EXECUTE format('SELECT history_date FROM %I WHERE history_id = $1', TG_ARGV[0])
            INTO row_date USING OLD.history_id;
    END IF;
    IF cutoff IS NULL OR row_date IS NULL OR row_date >= cutoff THEN
        RAISE EXCEPTION
            'history is append-only: row % of % (%) is not older than the retention cutoff (%)',
            OLD.history_id, TG_TABLE_NAME, row_date, cutoff;
    END IF;
    RETURN OLD;
END;
$$;
"""


@dataclass(frozen=True)
class HistoryTable:
    table: str
    # For an m2m history table: the history table whose rows it belongs to.
    parent: str | None = None


def _field_names(model: type[models.Model]) -> set[str]:
    return {f.name for f in model._meta.get_fields()}


def history_tables(models_: Iterable[type[models.Model]]) -> list[HistoryTable]:
    """The history tables among ``models_`` (an app registry's, current or historical).

    Recognised by shape, so it works on a migration's historical models too: a history
    model has ``history_id``, ``history_date`` and ``history_type``; an m2m history model
    has ``m2m_history_id`` and a ``history`` foreign key to the history model.
    """
    found = []
    for model in models_:
        opts = model._meta
        if not opts.managed or opts.proxy or opts.abstract:
            continue
        names = _field_names(model)
        if {"history_id", "history_date", "history_type"} <= names:
            found.append(HistoryTable(opts.db_table))
        elif {"m2m_history_id", "history"} <= names:
            parent = opts.get_field("history").related_model._meta.db_table
            found.append(HistoryTable(opts.db_table, parent))
    return sorted(found, key=lambda t: t.table)


def install_sql(table: HistoryTable, quote) -> list[str]:
    args = f"'{table.parent}'" if table.parent else ""
    return [
        f"DROP TRIGGER IF EXISTS {TRIGGER} ON {quote(table.table)}",
        f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON {quote(table.table)}"
        f" FOR EACH ROW EXECUTE FUNCTION {FUNCTION}({args})",
    ]


def install(tables: Iterable[HistoryTable], *, using: str = "default") -> None:
    """Create (or replace) the function and the trigger on each of ``tables``."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(FUNCTION_SQL)
        for table in tables:
            for sql in install_sql(table, connection.ops.quote_name):
                cursor.execute(sql)


def tables_with_trigger(*, using: str = "default") -> set[str]:
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE t.tgname = %s AND NOT t.tgisinternal",
            [TRIGGER],
        )
        return {row[0] for row in cursor.fetchall()}


def install_missing(sender=None, *, using: str = "default", apps=None, **kwargs) -> list[str]:
    """``post_migrate``: install the trigger on every existing history table lacking it
    (a model added after the migration). Idempotent; returns the tables it installed on.
    Does nothing while audit's migration is not applied (``migrate audit zero`` sticks)."""
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    if (MIGRATION[0], MIGRATION[1]) not in MigrationRecorder(connection).applied_migrations():
        return []
    if apps is None:
        from django.apps import apps
    existing = set(connection.introspection.table_names())
    covered = tables_with_trigger(using=using)
    missing = [
        table
        for table in history_tables(apps.get_models())
        if table.table in existing and table.table not in covered
    ]
    if missing:
        install(missing, using=using)
    return [table.table for table in missing]


@contextlib.contextmanager
def retention_opt_in(before: dt.datetime, *, using: str = "default") -> Iterator[None]:
    """A transaction in which history rows older than ``before`` may be deleted (and
    nothing else: updates and younger rows stay refused). Both settings are ``LOCAL``
    and end with the block: cleared when it commits, rolled back with it when it fails
    (also when the block is a savepoint inside a longer transaction)."""
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%s, 'on', true), set_config(%s, %s, true)",
            [RETENTION_FLAG, RETENTION_BEFORE, before.isoformat()],
        )
        yield
        cursor.execute(
            "SELECT set_config(%s, '', true), set_config(%s, '', true)",
            [RETENTION_FLAG, RETENTION_BEFORE],
        )
