"""Importing the CRM's accounts and contracts from its CSV exports: the initial load, and
the fallback when its webhook cannot deliver (``docs/contracts/crm.md#pull``). Run as
``import_crm ACCOUNTS.csv [CONTRACTS.csv]`` or uploaded on the CRM imports' page, where
the worker runs it and its page shows the progress.

Each file has the fields of its CRM event as columns (``integrations`` space-separated),
in any order; it is read with the ``csv`` module and each row checked by the event's own
schema (``customers.crm.CrmAccount``, ``CrmContract``). Rows are taken by the webhook's
rules (``customers.crm``): upserted by their CRM ids, idempotent (a row as opsdesk already
has it changes nothing and writes no history), in the CRM's order (a row older than the
change opsdesk took last changes nothing and is reported as a warning). Accounts first,
then contracts; a contract of an account neither in opsdesk nor taken from the accounts
file is rejected (an import has no retries to wait with). A bad row is rejected with its
line, the row as a spreadsheet numbers it (the header is line 1); the good rows are kept.

Rows are taken ``BATCH`` at a time, one transaction each, so a large file never holds one
long transaction and its progress can be shown. A batch takes the CRM records' locks and
finds their records in a few queries, then writes them with ``audit.bulk`` (a history row
each, naming the importer): 30,000 rows in seconds, where ``account_upsert`` for each row
would take minutes (``bench.crm_import``). The rows whose take depends on another customer
(an account linked to a customer by its tenant id, a tenant id that moves or that another
customer holds) are taken one at a time by ``account_upsert`` itself. A contract created
active, becoming active or changing scope gets its onboarding checklist as after its own
save (``customers.signals.contracts_saved``).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import ValidationError

from audit.bulk import bulk_create_with_history, bulk_update_with_history, update_with_history
from audit.context import require_permission
from customers.crm import (
    CRM_OWNED,
    LINK,
    CrmAccount,
    CrmAccountUnknown,
    CrmContract,
    CrmError,
    account_reason,
    account_upsert,
    account_values,
    comparable_value,
    contract_reason,
    contract_upsert,
    contract_values,
    manager_by_email,
    stale_take,
    stored_value,
    take_locks,
    taking_as,
)
from customers.models import Contract, CrmImport, Customer
from customers.signals import contracts_saved
from kit.publish import publish_after_commit
from kit.schemas import Schema

ACTOR = "command:import_crm"
# Rows per transaction: large enough that a batch's few queries are paid per thousand
# rows, small enough that locks are held for about a second.
BATCH = 1000
# The largest file taken (an upload; the command reads any size): 30,000 rows are 4 MB.
MAX_FILE_BYTES = 50 * 1024 * 1024
# The rejected and warned rows an import's record lists (all are counted; the command
# prints all).
NOTES_KEPT = 1000
# An import's page is told how far it got at most this often (each step is a history row).
STEP_SECONDS = 1.0
# A running import silent this long lost its worker; one queued this long lost its task.
STALE_AFTER = dt.timedelta(minutes=10)
QUEUED_GRACE = dt.timedelta(minutes=1)
MAX_ATTEMPTS = 3
RUN_TASK = "customers.crm_import_run"


# --- The files --------------------------------------------------------------------------


@dataclass(frozen=True)
class CrmFile:
    """One of the two files: the CRM event its rows are, by the event's schema."""

    kind: str
    schema: type[Schema]
    id_column: str

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.schema.model_fields)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(name for name, f in self.schema.model_fields.items() if f.is_required())


ACCOUNTS = CrmFile("accounts", CrmAccount, "crm_id")
CONTRACTS = CrmFile("contracts", CrmContract, "crm_contract_id")
LIST_COLUMNS = frozenset({"integrations"})  # space-separated in a cell


class CrmFileError(Exception):
    """A file that cannot be imported at all (not UTF-8 text, not CSV, a required column
    missing from its header): nothing of the import was taken."""


def crm_file_text(data: bytes, crm_file: CrmFile = ACCOUNTS) -> str:
    """A file's text (UTF-8, with or without a byte order mark), its header checked."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CrmFileError(
            f"The {crm_file.kind} file is not UTF-8 text: export it from the CRM as CSV (UTF-8)."
        ) from None
    if "\x00" in text:
        raise CrmFileError(
            f"The {crm_file.kind} file is not CSV text (it holds NUL bytes): export it from "
            "the CRM as CSV (UTF-8)."
        )
    _header(crm_file, text)
    return text


@dataclass(frozen=True)
class _Header:
    positions: dict[str, int]  # column -> index of its cell
    width: int
    ignored: tuple[str, ...]


def _header(crm_file: CrmFile, text: str) -> _Header:
    """The header of ``text`` (its first line), or why it is not one of ``crm_file``."""
    expected = (
        f"its first line names the columns {', '.join(crm_file.columns)}, in any order "
        f"(those not required may be left out)"
    )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        cells = next(reader)
    except StopIteration:
        raise CrmFileError(f"The {crm_file.kind} file is empty: {expected}.") from None
    except csv.Error as exc:
        raise CrmFileError(f"The {crm_file.kind} file is not CSV ({exc}): {expected}.") from None
    names = [cell.strip().lower() for cell in cells]
    twice = sorted({name for name in names if name and names.count(name) > 1})
    if twice:
        raise CrmFileError(
            f"The {crm_file.kind} file's header names {', '.join(twice)} more than once."
        )
    missing = [name for name in crm_file.required if name not in names]
    if missing:
        other = CONTRACTS if crm_file is ACCOUNTS else ACCOUNTS
        hint = (
            f" It looks like a {other.kind} file."
            if all(name in names for name in other.required)
            else ""
        )
        raise CrmFileError(
            f"The {crm_file.kind} file's header lacks {', '.join(missing)}: {expected}.{hint}"
        )
    return _Header(
        positions={name: i for i, name in enumerate(names) if name in crm_file.columns},
        width=len(names),
        ignored=tuple(
            cell.strip()
            for cell, name in zip(cells, names, strict=True)
            if name and name not in crm_file.columns
        ),
    )


def _records(text: str) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(line, cells) of every record after the header, numbered as a spreadsheet numbers
    its rows: a quoted cell over several lines is one row, an empty line is one."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            cells = exc
        line += 1
        if line > 1:
            yield line, cells


def _row_count(text: str) -> int:
    return sum(1 for _ in _records(text))


def _why(error: ValidationError) -> str:
    """A schema's refusal of a row, one "column: what is wrong" per problem."""
    parts = []
    for item in error.errors(include_url=False, include_context=False):
        where, message = item["loc"], item["msg"].removeprefix("Value error, ")
        if len(where) > 1 and where[0] in LIST_COLUMNS:
            parts.append(f"{where[0]}: {item['input']}: {message}")
        elif where:
            parts.append(f"{where[0]}: {message}")
        else:
            parts.append(message)
    return "; ".join(parts)


# --- What became of the rows --------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """A row rejected (nothing taken from it) or taken with a warning."""

    file: str
    line: int
    crm_id: str
    message: str
    rejected: bool

    def __str__(self) -> str:
        crm_id = f" ({self.crm_id})" if self.crm_id else ""
        what = "" if self.rejected else "warning: "
        return f"{self.file} line {self.line}{crm_id}: {what}{self.message}"


OUTCOMES = ("created", "changed", "unchanged", "stale")


@dataclass
class FileResult:
    kind: str
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0
    rejected: list[Note] = field(default_factory=list)
    warnings: list[Note] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in OUTCOMES} | {"rejected": len(self.rejected)}

    @property
    def summary(self) -> str:
        return f"{self.kind}: " + ", ".join(f"{n} {name}" for name, n in self.counts.items())


@dataclass
class ImportResult:
    accounts: FileResult = field(default_factory=lambda: FileResult(ACCOUNTS.kind))
    contracts: FileResult | None = None

    @property
    def files(self) -> list[FileResult]:
        return [self.accounts] + ([self.contracts] if self.contracts else [])

    @property
    def rejected(self) -> list[Note]:
        return [note for result in self.files for note in result.rejected]

    @property
    def warnings(self) -> list[Note]:
        return [note for result in self.files for note in result.warnings]

    @property
    def summary(self) -> str:
        """One line: each file's rows created, changed, unchanged, stale and rejected."""
        return "; ".join(result.summary for result in self.files)


@dataclass(frozen=True)
class _Taken:
    line: int
    crm_id: str
    outcome: str  # one of OUTCOMES, or "rejected"
    messages: tuple[str, ...] = ()


def _tally(result: FileResult, taken: list[_Taken]) -> None:
    for row in taken:
        if row.outcome == "rejected":
            result.rejected.append(Note(result.kind, row.line, row.crm_id, row.messages[0], True))
            continue
        setattr(result, row.outcome, getattr(result, row.outcome) + 1)
        result.warnings += [
            Note(result.kind, row.line, row.crm_id, message, False) for message in row.messages
        ]


# --- Taking the rows ----------------------------------------------------------------------


def crm_import(
    accounts: str,
    contracts: str | None = None,
    *,
    actor=ACTOR,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Take the rows of the accounts file's text ``accounts``, then of the contracts
    file's ``contracts``. Both headers are checked before anything is taken
    (``CrmFileError``); then each row is taken or rejected, and the result says which.

    ``actor`` is who the history names: a label (``command:import_crm``) or a person, who
    must hold ``customers.link_crm_account`` (``customers.crm``). ``progress(done,
    total)`` is called with the rows read after each batch. Safe to run again: rows
    already taken change nothing."""
    files = [(ACCOUNTS, accounts)] + ([(CONTRACTS, contracts)] if contracts is not None else [])
    headers = {crm_file.kind: _header(crm_file, text) for crm_file, text in files}
    total = sum(_row_count(text) for _, text in files)
    result = ImportResult(contracts=FileResult(CONTRACTS.kind) if contracts is not None else None)
    done = 0
    managers = _Managers()
    with taking_as(actor):
        for crm_file, text in files:
            header = headers[crm_file.kind]
            file_result = result.contracts if crm_file is CONTRACTS else result.accounts
            if header.ignored:
                file_result.warnings.append(
                    Note(
                        crm_file.kind,
                        1,
                        "",
                        f"columns ignored (not fields of the CRM's {crm_file.kind}): "
                        + ", ".join(header.ignored),
                        False,
                    )
                )
            for batch, read in _batches(crm_file, text, header, file_result):
                if crm_file is ACCOUNTS:
                    taken = _take(batch, _accounts_batch, _account_alone, actor, managers)
                else:
                    unknown = _unknown_accounts(result.accounts)
                    taken = _take(batch, _contracts_batch, _contract_alone, actor, unknown)
                _tally(file_result, taken)
                done += read
                if progress is not None:
                    progress(done, total)
            file_result.rejected.sort(key=lambda note: note.line)
            file_result.warnings.sort(key=lambda note: note.line)
    return result


def _batches(
    crm_file: CrmFile, text: str, header: _Header, result: FileResult
) -> Iterator[tuple[list[tuple[int, Schema]], int]]:
    """(rows, lines read for them) of up to ``BATCH`` good rows; a bad row goes to
    ``result.rejected``. A CRM id a second time starts a new batch, so that its rows are
    taken one after the other, as the CRM sent them."""
    batch: list[tuple[int, Schema]] = []
    ids: set[str] = set()
    read = 0
    for line, cells in _records(text):
        read += 1
        if isinstance(cells, csv.Error):
            result.rejected.append(
                Note(crm_file.kind, line, "", f"not readable as CSV: {cells}", True)
            )
            continue
        if not any(cell.strip() for cell in cells):
            continue  # an empty row, as spreadsheets leave at the end
        values = {
            name: cells[i].strip()
            for name, i in header.positions.items()
            if i < len(cells) and cells[i].strip()
        }
        crm_id = values.get(crm_file.id_column, "")[:100]
        if any(cell.strip() for cell in cells[header.width :]):
            why = f"{len(cells)} values where the header names {header.width} columns"
            result.rejected.append(Note(crm_file.kind, line, crm_id, why, True))
            continue
        for name in LIST_COLUMNS & values.keys():
            values[name] = values[name].split()
        try:
            row = crm_file.schema.model_validate(values)
        except ValidationError as exc:
            result.rejected.append(Note(crm_file.kind, line, crm_id, _why(exc), True))
            continue
        if crm_id in ids or len(batch) == BATCH:
            yield batch, read - 1
            batch, ids, read = [], set(), 1
        batch.append((line, row))
        ids.add(crm_id)
    if batch or read:
        yield batch, read


def _take(batch, together, alone, actor, context) -> list[_Taken]:
    """The batch's rows taken ``together`` in one transaction; when that collides with a
    record written meanwhile (a webhook's), each ``alone``, as the webhook takes it."""
    if not batch:
        return []
    try:
        with transaction.atomic():
            return together(batch, actor, context)
    except IntegrityError:
        return [alone(line, row, actor, context) for line, row in batch]


def _with_crm_id(records):
    """``records`` that have a CRM id: said in the query, so that PostgreSQL may look a
    batch's ids up in the unique index of CRM ids, which holds only those (more than 100
    ids in one ``IN`` are too many for it to prove that none is empty)."""
    return records.exclude(crm_id="")


def _apply(record, values: dict, *, reason: str) -> str:
    """What ``customers.crm``'s write does to ``record``, without its save: ``created``,
    ``changed`` (``values`` set on it) or ``unchanged``."""
    created = record.pk is None
    same = all(stored_value(record, name) == comparable_value(v) for name, v in values.items())
    if not created and same:
        return "unchanged"
    for name, value in values.items():
        setattr(record, name, value)
    record._change_reason = reason
    return "created" if created else "changed"


class _Managers:
    """``customers.crm.manager_by_email`` once per address for the whole import."""

    def __init__(self) -> None:
        self._found: dict[str, tuple[object, tuple[str, ...]]] = {}

    def __call__(self, email: str, warnings: list[str]):
        if email not in self._found:
            said: list[str] = []
            self._found[email] = (manager_by_email(email, said), tuple(said))
        manager, said = self._found[email]
        warnings.extend(said)
        return manager


CUSTOMER_FIELDS = [*CRM_OWNED[Customer], "crm_updated_at"]


def _accounts_batch(batch, actor, managers: _Managers) -> list[_Taken]:
    """``account_upsert`` of each row, in a few queries for the batch."""
    take_locks("crm-account", [row.crm_id for _, row in batch])
    found = {
        customer.crm_id: customer
        for customer in _with_crm_id(Customer.objects.select_for_update())
        .filter(crm_id__in=[row.crm_id for _, row in batch])
        .order_by("pk")
    }
    # Tenant ids a customer may hold: an account taking one is taken alone.
    held = _tenants_held({row.tenant_id for _, row in batch if row.tenant_id})
    taken: list[_Taken] = []
    new: list[Customer] = []
    changed: list[Customer] = []

    def write() -> None:
        bulk_create_with_history(new, Customer)
        now = timezone.now()
        for customer in changed:
            customer.updated_at = now
        bulk_update_with_history(changed, Customer, [*CUSTOMER_FIELDS, "updated_at"])
        new.clear()
        changed.clear()

    for line, row in batch:
        customer = found.get(row.crm_id)
        stale = stale_take(f"account {row.crm_id}", customer, row.updated_at)
        if stale:
            taken.append(_Taken(line, row.crm_id, "stale", stale.warnings))
            continue
        tenant = row.tenant_id
        if tenant and (customer is None or customer.external_id != tenant):
            if tenant in held or (customer is not None and customer.external_id):
                write()  # what it depends on, as the rows before it left it
                taken.append(_account_alone(line, row, actor, managers))
                held.add(tenant)
                continue
            held.add(tenant)
        warnings: list[str] = []
        values = account_values(row, managers(row.account_manager_email, warnings))
        reason = account_reason(row, customer, linked_by="CRM id")
        record = customer or Customer()
        outcome = _apply(record, values, reason=reason)
        if outcome == "created":
            new.append(record)
        elif outcome == "changed":
            changed.append(record)
        taken.append(_Taken(line, row.crm_id, outcome, tuple(warnings)))
    write()
    return taken


def _tenants_held(tenant_ids: set[str]) -> set[str]:
    """Those of ``tenant_ids`` a customer holds (as committed when looked up: one a webhook
    takes meanwhile makes the batch's write fail, and its rows are taken one by one)."""
    found = Customer.objects.filter(external_id__in=tenant_ids)
    return set(found.values_list("external_id", flat=True))


def _account_alone(line: int, row: CrmAccount, actor, managers) -> _Taken:
    try:
        with transaction.atomic():
            upserted = account_upsert(row, actor=actor)
    except (CrmError, IntegrityError) as exc:
        return _Taken(line, row.crm_id, "rejected", (str(exc).splitlines()[0],))
    return _Taken(line, row.crm_id, upserted.outcome, upserted.warnings)


def _unknown_accounts(accounts: FileResult) -> dict[str, int]:
    """The accounts file's rejected rows by CRM id: a contract of one is rejected too."""
    return {note.crm_id: note.line for note in accounts.rejected if note.crm_id}


def _unknown_account(row: CrmContract, rejected: dict[str, int]) -> str:
    if row.crm_account_id in rejected:
        return (
            f"CRM account {row.crm_account_id} is not in opsdesk: its row in the accounts "
            f"file (line {rejected[row.crm_account_id]}) was rejected"
        )
    return (
        f"CRM account {row.crm_account_id} is neither in opsdesk nor in the accounts file: "
        "import the account with its contracts"
    )


CONTRACT_FIELDS = [*CRM_OWNED[Contract], "crm_updated_at"]


def _contracts_batch(batch, actor, rejected_accounts: dict[str, int]) -> list[_Taken]:
    """``contract_upsert`` of each row, in a few queries for the batch."""
    take_locks("crm-contract", [row.crm_contract_id for _, row in batch])
    customers = {
        customer.crm_id: customer
        for customer in _with_crm_id(Customer.objects).filter(
            crm_id__in={row.crm_account_id for _, row in batch}
        )
    }
    found = {
        contract.crm_id: contract
        for contract in _with_crm_id(Contract.objects.select_for_update())
        .filter(crm_id__in=[row.crm_contract_id for _, row in batch])
        .order_by("pk")
    }
    taken: list[_Taken] = []
    new: list[Contract] = []
    changed: list[Contract] = []
    for line, row in batch:
        customer = customers.get(row.crm_account_id)
        if customer is None:
            why = _unknown_account(row, rejected_accounts)
            taken.append(_Taken(line, row.crm_contract_id, "rejected", (why,)))
            continue
        contract = found.get(row.crm_contract_id)
        stale = stale_take(f"contract {row.crm_contract_id}", contract, row.updated_at)
        if stale:
            taken.append(_Taken(line, row.crm_contract_id, "stale", stale.warnings))
            continue
        values = contract_values(row, customer)
        reason = contract_reason(row, contract)
        record = contract or Contract()
        outcome = _apply(record, values, reason=reason)
        if outcome == "created":
            new.append(record)
        elif outcome == "changed":
            changed.append(record)
        taken.append(_Taken(line, row.crm_contract_id, outcome))
    bulk_create_with_history(new, Contract)
    now = timezone.now()
    for contract in changed:
        contract.updated_at = now
    bulk_update_with_history(changed, Contract, [*CONTRACT_FIELDS, "updated_at"])
    # What their saves would have set off (the onboarding checklist), after this commits.
    saved = [(contract, True) for contract in new] + [(contract, False) for contract in changed]
    if saved:
        contracts_saved.send(sender=Contract, contracts=saved)
    return taken


def _contract_alone(line: int, row: CrmContract, actor, rejected_accounts) -> _Taken:
    try:
        with transaction.atomic():
            upserted = contract_upsert(row, actor=actor)
    except CrmAccountUnknown:
        why = _unknown_account(row, rejected_accounts)
        return _Taken(line, row.crm_contract_id, "rejected", (why,))
    except (CrmError, IntegrityError) as exc:
        return _Taken(line, row.crm_contract_id, "rejected", (str(exc).splitlines()[0],))
    return _Taken(line, row.crm_contract_id, upserted.outcome, upserted.warnings)


# --- The record of each import ------------------------------------------------------------


def _notes(result: ImportResult) -> list[dict]:
    notes = [*result.rejected, *result.warnings][:NOTES_KEPT]
    return [
        {
            "file": note.file,
            "line": note.line,
            "crm_id": note.crm_id,
            "rejected": note.rejected,
            "message": note.message,
        }
        for note in notes
    ]


class _Steps:
    """Saves how far an import got on its record, where its page sees it at once (each
    batch commits before), at most every ``STEP_SECONDS``."""

    def __init__(self, record: CrmImport) -> None:
        self.record = record
        self.saved_at = 0.0

    def __call__(self, done: int, total: int) -> None:
        percent = min(99, done * 100 // total) if total else 99
        if percent == self.record.progress or time.monotonic() - self.saved_at < STEP_SECONDS:
            return
        self.record.progress = percent
        self.record.stage = f"taking rows: {done} of {total} read"
        self.record._change_reason = self.record.stage
        self.record.save(update_fields=["progress", "stage", "updated_at"])
        self.saved_at = time.monotonic()


def _finish(record: CrmImport, result: ImportResult) -> None:
    record.status = (
        CrmImport.Status.ROWS_REJECTED if result.rejected else CrmImport.Status.SUCCEEDED
    )
    record.stage, record.progress = "done", 100
    record.counts = {file.kind: file.counts for file in result.files}
    record.rejected = len(result.rejected)
    record.warnings = len(result.warnings)
    record.notes = _notes(result)
    record.accounts_csv = record.contracts_csv = b""
    record.finished_at = timezone.now()
    record._change_reason = f"finished: {result.summary}"
    record.save()


def _fail(record: CrmImport, why: str) -> None:
    record.status = CrmImport.Status.FAILED
    record.stage = "stopped"
    record.error = why[:2000]
    record.accounts_csv = record.contracts_csv = b""
    record.finished_at = timezone.now()
    record._change_reason = "failed"
    record.save()


def _run(record: CrmImport, accounts: bytes, contracts: bytes | None, actor) -> ImportResult:
    """Import the files into ``record``'s rows, recording the outcome; a file refused
    (``CrmFileError``), a person without the permission or any error is recorded on it as
    failed and raised."""
    try:
        texts = [crm_file_text(accounts, ACCOUNTS)]
        if contracts is not None:
            texts.append(crm_file_text(contracts, CONTRACTS))
        result = crm_import(*texts, actor=actor, progress=_Steps(record))
    except (CrmFileError, PermissionDenied) as exc:
        _fail(record, f"Nothing imported. {exc}")
        raise
    except Exception as exc:
        _fail(record, f"{type(exc).__name__}: {exc}")
        raise
    _finish(record, result)
    return result


def crm_import_files(
    accounts: tuple[str, bytes], contracts: tuple[str, bytes] | None = None
) -> tuple[CrmImport, ImportResult]:
    """``import_crm``: the files (name, content) imported at once, as ``command:import_crm``,
    with the import's record; ``CrmFileError`` when a file is refused (recorded too)."""
    record = CrmImport.objects.create(
        accounts_file_name=accounts[0][:255],
        contracts_file_name=contracts[0][:255] if contracts else "",
        started_by=ACTOR,
        status=CrmImport.Status.RUNNING,
        stage="reading the files",
        attempts=1,
        started_at=timezone.now(),
    )
    result = _run(record, accounts[1], contracts[1] if contracts else None, ACTOR)
    return record, result


def crm_import_queue(
    *, accounts: tuple[str, bytes], contracts: tuple[str, bytes] | None = None, by
) -> CrmImport:
    """Store uploaded files (name, content) as an import the worker runs once this
    commits (``crm_import_run``; the sweep, should the broker be down). The files are
    checked first as the import reads them: ``CrmFileError`` says what is wrong with one
    and nothing is stored. ``by``, who uploads and whom the history names, holds
    ``customers.link_crm_account`` (``PermissionDenied``)."""
    require_permission(by, LINK, PermissionDenied)
    files = [(accounts[1], ACCOUNTS)] + ([(contracts[1], CONTRACTS)] if contracts else [])
    for data, crm_file in files:
        if len(data) > MAX_FILE_BYTES:
            raise CrmFileError(
                f"The {crm_file.kind} file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB: "
                "split it, or run import_crm on the server."
            )
        crm_file_text(data, crm_file)
    record = CrmImport.objects.create(
        accounts_file_name=accounts[0][:255],
        accounts_csv=accounts[1],
        contracts_file_name=contracts[0][:255] if contracts else "",
        contracts_csv=contracts[1] if contracts else b"",
        requested_by=by,
        started_by=by.get_username(),
        stage="waiting for a worker",
    )
    publish_after_commit(RUN_TASK, record.pk)
    return record


def _claim(import_id: int) -> CrmImport | None:
    """The queued import, now running in this worker; None when it is not queued (another
    worker runs or ran it: a task delivered twice)."""
    with transaction.atomic():
        record = (
            CrmImport.objects.select_for_update(of=("self",))
            .select_related("requested_by")
            .filter(pk=import_id, status=CrmImport.Status.QUEUED)
            .first()
        )
        if record is None:
            return None
        record.status = CrmImport.Status.RUNNING
        record.stage = "reading the files"
        record.progress = 0
        record.attempts += 1
        record.started_at = timezone.now()
        record._change_reason = f"started (attempt {record.attempts})"
        record.save()
    return record


def crm_import_run(*, import_id: int) -> CrmImport | None:
    """Run a queued import (the worker): its files' rows taken in the name of whoever
    uploaded them. Idempotent: an import that is not queued is left alone (None)."""
    record = _claim(import_id)
    if record is None:
        return None
    if record.requested_by is None:
        _fail(record, "Nothing imported: whoever uploaded the files is no longer a user.")
        return record
    contracts = bytes(record.contracts_csv) if record.contracts_file_name else None
    with contextlib.suppress(CrmFileError, PermissionDenied):  # recorded: its page says why
        _run(record, bytes(record.accounts_csv), contracts, record.requested_by)
    return record


def crm_imports_sweep() -> list[int]:
    """Imports whose run was lost: queued ones no worker started within ``QUEUED_GRACE``
    (their task never reached the broker), and running ones silent for ``STALE_AFTER``
    (their worker died), queued again unless they ran ``MAX_ATTEMPTS`` times (then
    failed: rows taken before stay, a new upload takes the rest). The ids handed to the
    workers."""
    now = timezone.now()
    unfinished = CrmImport.objects.filter(
        status__in=[CrmImport.Status.QUEUED, CrmImport.Status.RUNNING]
    ).defer("accounts_csv", "contracts_csv")
    lost = unfinished.filter(status=CrmImport.Status.RUNNING, updated_at__lt=now - STALE_AFTER)
    with transaction.atomic():
        update_with_history(
            lost.filter(attempts__gte=MAX_ATTEMPTS),
            reason="its worker was lost",
            status=CrmImport.Status.FAILED,
            stage="stopped",
            error=f"Its worker was lost {MAX_ATTEMPTS} times; the rows taken before are "
            "kept. Upload the files again to take the rest.",
            finished_at=now,
        )
        update_with_history(
            lost.filter(attempts__lt=MAX_ATTEMPTS),
            reason="its worker was lost: queued again",
            status=CrmImport.Status.QUEUED,
            stage="waiting for a worker (its previous one was lost)",
        )
        due = list(
            unfinished.filter(
                status=CrmImport.Status.QUEUED, updated_at__lt=now - QUEUED_GRACE
            ).values_list("pk", flat=True)
        )
        for pk in due:
            publish_after_commit(RUN_TASK, pk)
    return due
