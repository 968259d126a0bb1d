"""``send_digests [--date YYYY-MM-DD] [--dry-run] [--if-due]``: the daily usage digests for a
date."""

import datetime as dt

from django.core.management.base import CommandError
from django.utils import timezone

from audit.attribution import AuditedCommand
from kit.params import DATE_MAX, DATE_MIN, ParamError, parse_date
from opsdesk.health.digest import digest_build, digest_due, digest_recipients, digest_send


def _date(value: str) -> dt.date:
    try:
        return parse_date(value, name="--date")  # bounded: 0001-01-01 overflowed the digest
    except ParamError:
        raise CommandError(
            f"--date {value!r} is not a date like 2026-11-22 "
            f"(from {DATE_MIN:%Y-%m-%d} to {DATE_MAX:%Y-%m-%d})."
        ) from None


class Command(AuditedCommand):
    help = "Send each account manager the usage digest for a date (default today, UTC)."

    def add_arguments(self, parser):
        parser.add_argument("--date", type=str, help="YYYY-MM-DD; default today (UTC)")
        parser.add_argument("--dry-run", action="store_true", help="Print what would be sent.")
        parser.add_argument(
            "--if-due",
            action="store_true",
            help="Only once today's scheduled time (OPSDESK_DIGEST_HOUR:MINUTE) has passed.",
        )

    def handle(self, *args, date=None, dry_run=False, if_due=False, **options):
        day = _date(date) if date else timezone.now().date()
        if if_due and not digest_due():
            self.stdout.write(f"send_digests {day}: not due yet; beat sends them on schedule")
            return
        recipients = digest_recipients()
        if dry_run:
            for recipient in recipients:
                digest = digest_build(date=day, recipient=recipient)
                self.stdout.write(f"{recipient.email or '(no email)'}: {digest.subject}")
            self.stdout.write(f"send_digests {day} (dry run): {len(recipients)} would be sent")
            return
        sent = skipped = 0
        failures = []
        for recipient in recipients:
            try:
                if digest_send(date=day, recipient=recipient):
                    sent += 1
                else:
                    skipped += 1
            except Exception as error:  # recorded on the delivery; reported below
                failures.append(f"{recipient.email or recipient.name}: {error}")
        summary = f"send_digests {day}: {sent} sent, {skipped} already sent, {len(failures)} failed"
        if failures:
            raise CommandError(summary + "\n" + "\n".join(failures))
        self.stdout.write(summary)
