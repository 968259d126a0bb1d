"""``send_rollups [--date YYYY-MM-DD] [--dry-run]``: the weekly team roll-ups for a date."""

import datetime as dt

from django.core.management.base import CommandError
from django.utils import timezone

from audit.attribution import AuditedCommand
from kit.params import DATE_MAX, DATE_MIN, ParamError, parse_date
from opsdesk.health.rollup import rollup_build, rollup_recipients, rollup_send


def _date(value: str) -> dt.date:
    try:
        return parse_date(value, name="--date")
    except ParamError:
        raise CommandError(
            f"--date {value!r} is not a date like 2026-11-23 "
            f"(from {DATE_MIN:%Y-%m-%d} to {DATE_MAX:%Y-%m-%d})."
        ) from None


class Command(AuditedCommand):
    help = "Send each team's leads the team roll-up for a date (default today, UTC)."

    def add_arguments(self, parser):
        parser.add_argument("--date", type=str, help="YYYY-MM-DD; default today (UTC)")
        parser.add_argument("--dry-run", action="store_true", help="Print what would be sent.")

    def handle(self, *args, date=None, dry_run=False, **options):
        day = _date(date) if date else timezone.now().date()
        pairs = rollup_recipients()
        if dry_run:
            built = {}
            for team, recipient in pairs:
                if team not in built:
                    built[team] = rollup_build(date=day, team=team)
                self.stdout.write(f"{recipient.email or '(no email)'}: {built[team].subject}")
            self.stdout.write(f"send_rollups {day} (dry run): {len(pairs)} would be sent")
            return
        sent = skipped = 0
        failures = []
        for team, recipient in pairs:
            try:
                if rollup_send(date=day, team=team, recipient=recipient):
                    sent += 1
                else:
                    skipped += 1
            except Exception as error:  # recorded on the delivery; reported below
                failures.append(f"{recipient.email or recipient.name}: {error}")
        summary = f"send_rollups {day}: {sent} sent, {skipped} already sent, {len(failures)} failed"
        if failures:
            raise CommandError(summary + "\n" + "\n".join(failures))
        self.stdout.write(summary)
