"""``import_invoices PATH.csv``: import the billing system's invoice export."""

from pathlib import Path

from django.core.management.base import CommandError

from audit.attribution import AuditedCommand
from billing.imports import InvoiceImportError, invoices_import


class Command(AuditedCommand):
    help = (
        "Import invoices from the billing system's CSV export (docs/contracts/invoices-csv.md). "
        "Idempotent by invoice_id; exits non-zero when any row was rejected."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The CSV file (UTF-8, header row required).")

    def handle(self, *args, path, **options):
        try:
            with open(path, encoding="utf-8-sig", newline="") as text:
                result = invoices_import(text, file_name=Path(path).name)
        except FileNotFoundError:
            raise CommandError(f"No such file: {path}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{path} is not UTF-8 text; export it as UTF-8 CSV.") from None
        except InvoiceImportError as exc:
            raise CommandError(f"{path}: nothing imported. {exc}") from None
        for row in result.rejected:
            name = f" ({row.invoice_id})" if row.invoice_id else ""
            self.stderr.write(f"line {row.line}{name}: {row.reason}")
        self.stdout.write(f"import_invoices {path}: {result.summary}")
        if result.rejected:
            raise CommandError(f"{len(result.rejected)} row(s) rejected; see above.", returncode=1)
