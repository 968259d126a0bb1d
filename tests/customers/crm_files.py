"""CRM export files as the CRM writes them (docs/contracts/crm.md#pull): the events'
fields as columns, one account or contract a row; Acme and its growth contract, as
tests/customers/crm_sender.py pushes them."""

from __future__ import annotations

import io
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError

ACCOUNTS_HEADER = "crm_id,name,tenant_id,account_manager_email,status,updated_at\n"
CONTRACTS_HEADER = (
    "crm_contract_id,crm_account_id,plan,seats,monthly_fee,price_per_extra_seat,currency,"
    "start_date,end_date,status,integrations,updated_at\n"
)
ACCOUNT = "001Dn00000Acme"
CONTRACT = "800Dn00000C42"


def account(
    crm_id=ACCOUNT,
    name="Acme Corp",
    tenant_id="acme-7f3a",
    manager="alice@opsdesk.test",
    status="active",
    updated_at="2026-11-21T09:29:41+00:00",
) -> str:
    return f"{crm_id},{name},{tenant_id},{manager},{status},{updated_at}\n"


def contract(
    crm_id=CONTRACT,
    account_id=ACCOUNT,
    plan="growth",
    seats="50",
    fee="1200.00",
    extra="25.00",
    currency="EUR",
    start="2026-12-01",
    end="2027-11-30",
    status="active",
    integrations="sso slack",
    updated_at="2026-11-21T09:30:58+00:00",
) -> str:
    return (
        f"{crm_id},{account_id},{plan},{seats},{fee},{extra},{currency},{start},{end},"
        f"{status},{integrations},{updated_at}\n"
    )


def import_crm(directory: Path, accounts: str | bytes, contracts: str | bytes | None = None):
    """``import_crm`` of the files with these contents: (exit status, stdout, stderr)."""
    paths = []
    for name, content in (("accounts.csv", accounts), ("contracts.csv", contracts)):
        if content is None:
            continue
        path = directory / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        paths.append(str(path))
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_crm", *paths, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()
