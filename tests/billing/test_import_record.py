"""Every import of the billing export is recorded (billing.InvoiceImport): when it came,
who brought it and what became of its rows, or why the file was refused. The freshness
panel reads these as the billing system's deliveries (docs/product.md#freshness)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.context import acting_as
from billing.imports import RECORDED_REJECTIONS, InvoiceImportError, invoices_import_file
from billing.models import Invoice, InvoiceImport
from tests.billing.invoice_csv import HEADER, row

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 11, 10, 9, 30, tzinfo=dt.UTC)


def record() -> dict:
    imported = InvoiceImport.objects.get()
    return {
        "received_at": imported.received_at,
        "file_name": imported.file_name,
        "started_by": imported.started_by,
        "status": imported.status,
        "counts": (imported.created, imported.updated, imported.unchanged, imported.rejected),
        "error": imported.error,
    }


def test_a_clean_import_is_recorded_as_succeeded_with_its_counts_and_history(customer):
    invoices_import_file(HEADER + row("in_1"))
    with time_machine.travel(AT, tick=False), acting_as("olga"):
        invoices_import_file(HEADER + row("in_1") + row("in_2"), file_name="nov.csv")
    latest = InvoiceImport.objects.get(file_name="nov.csv")
    assert (latest.received_at, latest.file_name, latest.started_by, latest.status) == (
        AT,
        "nov.csv",
        "olga",
        "succeeded",
    )
    assert (latest.created, latest.updated, latest.unchanged, latest.rejected) == (1, 0, 1, 0)
    assert latest.error == ""
    assert [(h.history_type, h.history_actor) for h in latest.history.all()] == [("+", "olga")]


def test_an_import_with_rejected_rows_failed_and_names_each_line(customer):
    invoices_import_file(
        HEADER + row("in_1") + row("in_2", amount="x", status="open") + row("in_1"),
        file_name="bad.csv",
    )
    assert record() | {"received_at": None} == {
        "received_at": None,
        "file_name": "bad.csv",
        "started_by": "unattributed",
        "status": "failed",
        "counts": (1, 0, 0, 2),
        "error": "line 3 (in_2): amount_due: Enter a number.\n"
        "line 4 (in_1): The same invoice_id is on line 2.",
    }


def test_a_long_list_of_rejected_rows_is_cut_with_how_many_more(customer):
    invoices_import_file(
        HEADER + "".join(row(f"in_{n}", amount="x", status="open") for n in range(60))
    )
    lines = InvoiceImport.objects.get().error.split("\n")
    assert len(lines) == RECORDED_REJECTIONS + 1
    assert lines[0] == "line 2 (in_0): amount_due: Enter a number."
    assert lines[-1] == f"and {60 - RECORDED_REJECTIONS} more rejected rows"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("invoice_id\nin_9\n", "The header lacks the column(s) tenant_id"),
        ("", "The file is empty: a header row is required."),
        (b"\xff\xfe" + "x".encode("utf-16-le"), "The file is not UTF-8 text"),
    ],
    ids=["columns missing", "empty", "not UTF-8"],
)
def test_a_refused_file_is_recorded_as_failed_though_nothing_was_imported(data, why):
    with pytest.raises(InvoiceImportError):
        invoices_import_file(data, file_name="export.csv")
    assert not Invoice.objects.exists()
    imported = InvoiceImport.objects.get()
    assert (imported.status, imported.file_name, imported.created, imported.rejected) == (
        "failed",
        "export.csv",
        0,
        0,
    )
    assert imported.error.startswith(why)


def test_the_command_records_the_file_s_name_and_the_command(tmp_path, customer):
    good = tmp_path / "good.csv"
    good.write_text(HEADER + row("in_1"), encoding="utf-8")
    call_command("import_invoices", str(good))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(HEADER.encode() + "in_2,é\n".encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("import_invoices", str(latin))
    assert list(
        InvoiceImport.objects.order_by("received_at").values_list(
            "file_name", "started_by", "status"
        )
    ) == [
        ("good.csv", "command:import_invoices", "succeeded"),
        ("latin.csv", "command:import_invoices", "failed"),
    ]


def test_the_upload_records_the_uploaded_file_s_name_and_the_person(client, ops_lead, customer):
    client.force_login(ops_lead)
    upload = SimpleUploadedFile("nov.csv", (HEADER + row("in_1")).encode())
    assert client.post(reverse("admin:billing_invoice_upload"), {"file": upload}).status_code == 200
    broken = SimpleUploadedFile("broken.csv", b"invoice_id\nin_9\n")
    client.post(reverse("admin:billing_invoice_upload"), {"file": broken})
    assert list(
        InvoiceImport.objects.order_by("received_at").values_list(
            "file_name", "started_by", "status"
        )
    ) == [("nov.csv", ops_lead.username, "succeeded"), ("broken.csv", ops_lead.username, "failed")]


def test_a_superuser_reads_the_imports_and_nobody_adds_or_changes_one(client, superuser):
    with pytest.raises(InvoiceImportError):
        invoices_import_file("", file_name="<b>empty</b>.csv")
    client.force_login(superuser)
    page = client.get(reverse("admin:billing_invoiceimport_changelist")).content.decode()
    assert "&lt;b&gt;empty&lt;/b&gt;.csv" in page and "<b>empty</b>" not in page
    assert "The file is empty: a header row is required." in page
    assert client.get(reverse("admin:billing_invoiceimport_add")).status_code == 403
    imported = InvoiceImport.objects.get()
    change = reverse("admin:billing_invoiceimport_change", args=[imported.pk])
    assert client.post(change, {"file_name": "renamed.csv"}).status_code == 403
    imported.refresh_from_db()
    assert imported.file_name == "<b>empty</b>.csv"
