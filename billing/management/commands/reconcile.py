"""``reconcile --month YYYY-MM``: billing reconciliation for that month."""

from django.core.management.base import CommandError

from audit.attribution import AuditedCommand
from billing.reconciliation import ReconciliationBusy, parse_month, reconciliation_run


class Command(AuditedCommand):
    help = (
        "Compare the month's expected charges (contracts and usage) with its invoices and "
        "bring the billing findings in the ops inbox up to date. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="The month, as YYYY-MM.")

    def handle(self, *args, month, **options):
        try:
            first = parse_month(month)
            run = reconciliation_run(month=first)
        except (ValueError, ReconciliationBusy) as exc:
            raise CommandError(str(exc)) from None
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(run.findings.items()))
        self.stdout.write(
            f"reconcile {first:%Y-%m} (run #{run.pk}): {run.customers_checked} customers, "
            f"findings: {kinds or 'none'}; cases opened {run.opened}, updated {run.updated}, "
            f"resolved {run.resolved}; {run.duration.total_seconds():.2f}s"
        )
