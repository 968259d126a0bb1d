"""``prune_history``: the retention job, the only deleter of history rows."""

import datetime as dt

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit.appendonly import history_tables, retention_opt_in
from audit.attribution import AuditedCommand


class Command(AuditedCommand):
    help = (
        "Delete history rows older than OPSDESK_HISTORY_RETENTION_DAYS (default 7 years), "
        "in one transaction that opts in to the append-only trigger's retention exception."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Keep this many days instead of OPSDESK_HISTORY_RETENTION_DAYS (never fewer "
            "than that setting).",
        )

    def handle(self, *args, days, **options):
        keep = settings.OPSDESK_HISTORY_RETENTION_DAYS
        if days is not None:
            if days < keep:
                raise CommandError(
                    f"--days {days} is shorter than the retention of {keep} days "
                    "(OPSDESK_HISTORY_RETENTION_DAYS)."
                )
            keep = days
        cutoff = timezone.now() - dt.timedelta(days=keep)
        qn = connection.ops.quote_name
        tables = history_tables(apps.get_models())
        # m2m history rows first: they point at the history rows about to go.
        tables.sort(key=lambda t: t.parent is None)
        deleted = {}
        with retention_opt_in(cutoff), connection.cursor() as cursor:
            for table in tables:
                if table.parent:
                    cursor.execute(
                        f"DELETE FROM {qn(table.table)} WHERE history_id IN"
                        f" (SELECT history_id FROM {qn(table.parent)} WHERE history_date < %s)",
                        [cutoff],
                    )
                else:
                    cursor.execute(
                        f"DELETE FROM {qn(table.table)} WHERE history_date < %s", [cutoff]
                    )
                deleted[table.table] = cursor.rowcount
        total = sum(deleted.values())
        for table, count in deleted.items():
            if count:
                self.stdout.write(f"{table}: {count}")
        self.stdout.write(f"prune_history: {total} rows older than {cutoff:%Y-%m-%d} deleted")
