"""``import_crm ACCOUNTS.csv [CONTRACTS.csv]``: take the CRM's accounts and contracts from
its CSV exports (the initial load, the fallback of its webhook)."""

from pathlib import Path

from django.core.management.base import CommandError

from audit.attribution import AuditedCommand
from customers.crm_import import CrmFileError, crm_import_files


class Command(AuditedCommand):
    help = (
        "Import the CRM's accounts, then its contracts, from CSV exports with the CRM "
        "events' fields as columns (docs/contracts/crm.md). Idempotent; prints every "
        "rejected row and warning with its line, and exits 1 when a row was rejected."
    )

    def add_arguments(self, parser):
        parser.add_argument("accounts", help="The accounts file (UTF-8 CSV, header row).")
        parser.add_argument("contracts", nargs="?", help="The contracts file, if any.")

    def handle(self, *args, accounts, contracts, **options):
        files = [_read(accounts)] + ([_read(contracts)] if contracts else [])
        try:
            _, result = crm_import_files(*files)
        except CrmFileError as exc:
            raise CommandError(f"Nothing imported. {exc}") from None
        for note in [*result.rejected, *result.warnings]:
            self.stderr.write(str(note))
        self.stdout.write(f"import_crm: {result.summary}")
        if result.rejected:
            raise CommandError(f"{len(result.rejected)} row(s) rejected; see above.", returncode=1)


def _read(path: str) -> tuple[str, bytes]:
    try:
        return Path(path).name, Path(path).read_bytes()
    except FileNotFoundError:
        raise CommandError(f"No such file: {path}") from None
    except IsADirectoryError:
        raise CommandError(f"{path} is a directory, not a CSV file.") from None
