"""Importing the billing system's invoice export (``docs/contracts/invoices-csv.md``).

The file is read with the standard ``csv`` module and each row checked by a Django form,
so every rejection says which column was wrong and why. Good rows are kept when others
are rejected; nothing is dropped silently. Idempotent by ``invoice_id``: a row already
imported with the same values changes nothing, a changed one is updated (with history).
Each import is recorded as an ``InvoiceImport`` (its counts, or why the file was refused):
the billing system's deliveries, which the freshness panel reads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django import forms
from django.db import transaction
from django.utils import timezone

from audit.bulk import bulk_create_with_history, bulk_update_with_history
from audit.context import current_actor
from billing.models import Invoice, InvoiceImport
from customers.models import Customer

COLUMNS = (
    "invoice_id",
    "tenant_id",
    "number",
    "status",
    "currency",
    "amount_due",
    "amount_paid",
    "period_start",
    "period_end",
    "issued_at",
    "due_at",
)
# Invoice fields a row sets, besides ``external_id`` (invoice_id) and ``customer``.
FIELDS = COLUMNS[1:]
CHUNK = 2000


class InvoiceImportError(Exception):
    """The file cannot be imported at all (not CSV, no header, columns missing)."""


class InvoiceRow(forms.Form):
    """One CSV row, as the contract describes it."""

    invoice_id = forms.CharField(max_length=100)
    tenant_id = forms.CharField(max_length=100)
    number = forms.CharField(max_length=100)
    status = forms.ChoiceField(choices=Invoice.Status.choices)
    currency = forms.RegexField(
        regex=r"^[A-Za-z]{3}$", error_messages={"invalid": "Enter an ISO 4217 code such as EUR."}
    )
    amount_due = forms.DecimalField(max_digits=12, decimal_places=2)
    amount_paid = forms.DecimalField(max_digits=12, decimal_places=2)
    period_start = forms.DateField(input_formats=["%Y-%m-%d"])
    period_end = forms.DateField(input_formats=["%Y-%m-%d"])
    issued_at = forms.DateField(input_formats=["%Y-%m-%d"])
    due_at = forms.DateField(input_formats=["%Y-%m-%d"])

    def clean_currency(self):
        return self.cleaned_data["currency"].upper()

    def clean(self):
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if start and end and end < start:
            self.add_error("period_end", "The period ends before it starts.")
        for name in ("amount_due", "amount_paid"):
            if data.get(name) is not None and data[name] < 0:
                self.add_error(name, "An amount cannot be negative.")
        return data


@dataclass(frozen=True)
class Rejected:
    line: int
    invoice_id: str
    reason: str


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.rejected)} rejected"
        )


def _reason(form: forms.Form) -> str:
    return " ".join(
        f"{name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
        for name, errors in form.errors.items()
    )


def _rows(text: Iterable[str], result: ImportResult) -> Iterator[tuple[int, dict]]:
    """(line number, cleaned row) for every good row; bad rows go to ``result.rejected``."""
    reader = csv.DictReader(text, strict=True)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise InvoiceImportError(f"Not a CSV file: {exc}.") from None
    if not header:
        raise InvoiceImportError("The file is empty: a header row is required.")
    header = [name.strip() for name in header]
    reader.fieldnames = header
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise InvoiceImportError(
            f"The header lacks the column(s) {', '.join(missing)}; "
            f"expected {', '.join(COLUMNS)} (any order, extra columns ignored)."
        )
    seen: dict[str, int] = {}
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            result.rejected.append(Rejected(reader.line_num, "", f"Unreadable row: {exc}."))
            continue
        line = reader.line_num
        if None in raw:
            result.rejected.append(
                Rejected(line, raw.get("invoice_id") or "", "More values than columns.")
            )
            continue
        values = {name: (raw.get(name) or "").strip() for name in COLUMNS}
        form = InvoiceRow(values)
        if not form.is_valid():
            result.rejected.append(Rejected(line, values["invoice_id"], _reason(form)))
            continue
        row = form.cleaned_data
        first = seen.setdefault(row["invoice_id"], line)
        if first != line:
            result.rejected.append(
                Rejected(line, row["invoice_id"], f"The same invoice_id is on line {first}.")
            )
            continue
        yield line, row


def _chunks(rows: Iterator[tuple[int, dict]]) -> Iterator[list[dict]]:
    chunk = []
    for _, row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def invoices_import(
    text: Iterable[str], *, file_name: str = "", reason: str = "imported from the billing export"
):
    """Import the CSV ``text`` (an iterable of lines, e.g. an open file). Returns the
    counts and the rejected rows; raises ``InvoiceImportError`` when the file as a whole is
    unusable (and ``UnicodeDecodeError`` when an open file is not UTF-8). All good rows
    are written in one transaction, in chunks.

    Every import that reads a file is recorded (``InvoiceImport``, with history), after
    its rows and outside their transaction, so a refused file is recorded too."""
    received_at = timezone.now()
    result = ImportResult()
    try:
        with transaction.atomic():
            for chunk in _chunks(_rows(text, result)):
                _write(chunk, result, reason)
    except InvoiceImportError as exc:
        _record(received_at, file_name, result, refused=str(exc))
        raise
    except UnicodeDecodeError:
        _record(received_at, file_name, ImportResult(), refused=NOT_UTF8)
        raise
    _record(received_at, file_name, result)
    return result


NOT_UTF8 = "The file is not UTF-8 text; export it as UTF-8 CSV."
# The rejected rows an import's record lists (the command and the upload page list all).
RECORDED_REJECTIONS = 50


def _record(received_at, file_name: str, result: ImportResult, *, refused: str = "") -> None:
    """The import's ``InvoiceImport``: what it did to the rows, or why the file was
    refused (nothing was imported then: its rows' writes were rolled back)."""
    if refused:
        lines = [refused]
    else:
        lines = [
            f"line {row.line}{f' ({row.invoice_id})' if row.invoice_id else ''}: {row.reason}"
            for row in result.rejected[:RECORDED_REJECTIONS]
        ]
        if len(result.rejected) > RECORDED_REJECTIONS:
            lines.append(f"and {len(result.rejected) - RECORDED_REJECTIONS} more rejected rows")
    InvoiceImport.objects.create(
        received_at=received_at,
        file_name=file_name[:255],
        started_by=current_actor().label[:200],
        status=InvoiceImport.Status.FAILED if lines else InvoiceImport.Status.SUCCEEDED,
        created=0 if refused else result.created,
        updated=0 if refused else result.updated,
        unchanged=0 if refused else result.unchanged,
        rejected=0 if refused else len(result.rejected),
        error="\n".join(lines),
    )


def _write(chunk: list[dict], result: ImportResult, reason: str) -> None:
    existing = {
        invoice.external_id: invoice
        for invoice in Invoice.objects.select_for_update().filter(
            external_id__in=[row["invoice_id"] for row in chunk]
        )
    }
    customers = dict(
        Customer.objects.filter(external_id__in={row["tenant_id"] for row in chunk}).values_list(
            "external_id", "pk"
        )
    )
    new, changed = [], []
    now = timezone.now()
    for row in chunk:
        values = {name: row[name] for name in FIELDS}
        values["customer_id"] = customers.get(row["tenant_id"])
        invoice = existing.get(row["invoice_id"])
        if invoice is None:
            new.append(Invoice(external_id=row["invoice_id"], **values))
        elif any(getattr(invoice, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(invoice, name, value)
            invoice.imported_at = now
            changed.append(invoice)
        else:
            result.unchanged += 1
    bulk_create_with_history(new, Invoice, reason=reason)
    bulk_update_with_history(
        changed, Invoice, [*FIELDS, "customer_id", "imported_at"], reason=reason
    )
    result.created += len(new)
    result.updated += len(changed)


def invoices_import_file(data: bytes | str, *, file_name: str = "") -> ImportResult:
    """``invoices_import`` of an uploaded file's content (UTF-8, with or without BOM)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            _record(timezone.now(), file_name, ImportResult(), refused=NOT_UTF8)
            raise InvoiceImportError(NOT_UTF8) from None
    return invoices_import(io.StringIO(data, newline=""), file_name=file_name)
