"""``import_invoices`` and the admin upload (docs/contracts/invoices-csv.md)."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.imports import InvoiceImportError, invoices_import_file
from billing.models import Invoice
from tests.billing.invoice_csv import HEADER, row

pytestmark = pytest.mark.django_db


def test_good_rows_are_imported_as_decimals_with_their_customer(customer):
    result = invoices_import_file(
        HEADER + row("in_1") + row("in_2", tenant="ghost-1", amount="99.95")
    )
    assert (result.created, result.updated, result.unchanged, result.rejected) == (2, 0, 0, [])
    first, second = Invoice.objects.order_by("external_id")
    assert first.customer == customer and first.amount_due == Decimal("1450.00")
    assert (second.customer, second.tenant_id, second.amount_due) == (
        None,
        "ghost-1",
        Decimal("99.95"),
    )
    record = first.history.get()
    assert (record.history_type, record.history_change_reason) == (
        "+",
        "imported from the billing export",
    )


def test_importing_again_changes_nothing_and_a_changed_row_is_updated_with_history(customer):
    invoices_import_file(HEADER + row("in_1", status="open"))
    again = invoices_import_file(HEADER + row("in_1", status="open"))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert Invoice.objects.get().history.count() == 1
    fixed = invoices_import_file(HEADER + row("in_1", status="paid", amount="1400.00"))
    assert (fixed.created, fixed.updated, fixed.unchanged) == (0, 1, 0)
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("1400.00"))
    latest = invoice.history.first()
    assert latest.history_type == "~"
    changed = {change.field for change in latest.diff_against(latest.prev_record).changes}
    assert changed == {"amount_due", "amount_paid", "status"}


def test_bad_rows_are_rejected_with_line_and_reason_and_good_rows_kept(customer):
    text = (
        HEADER
        + row("in_1")
        + row("in_2", amount="14x0.00", status="open")
        + row("in_3", status="weird")
        + row("in_4", period_end="2026-09-30")
        + row("in_5", currency="EURO")
        + row("in_6", amount="-5.00")
        + row("in_1")
        + "in_7,too,few\n"
        + row("in_8")
    )
    result = invoices_import_file(text)
    assert (result.created, result.updated) == (2, 0)
    assert [(r.line, r.invoice_id) for r in result.rejected] == [
        (3, "in_2"),
        (4, "in_3"),
        (5, "in_4"),
        (6, "in_5"),
        (7, "in_6"),
        (8, "in_1"),
        (9, "too"),  # the columns are in the header's order: due_at first
    ]
    reasons = {r.line: r.reason for r in result.rejected}
    assert reasons[3] == "amount_due: Enter a number."
    assert reasons[4].startswith("status: Select a valid choice. weird is not one")
    assert reasons[5] == "period_end: The period ends before it starts."
    assert reasons[6] == "currency: Enter an ISO 4217 code such as EUR."
    assert (
        reasons[7]
        == "amount_due: An amount cannot be negative. amount_paid: An amount cannot be negative."
    )
    assert reasons[8] == "The same invoice_id is on line 2."
    assert reasons[9].startswith("number: This field is required. status: This field")
    assert reasons[9].endswith("due_at: Enter a valid date.")
    assert sorted(Invoice.objects.values_list("external_id", flat=True)) == ["in_1", "in_8"]


def test_a_file_without_the_contract_columns_imports_nothing():
    with pytest.raises(InvoiceImportError, match=r"lacks the column\(s\) amount_paid, due_at"):
        invoices_import_file(
            "invoice_id,tenant_id,number,status,currency,amount_due,period_start,period_end,issued_at\n"
        )
    with pytest.raises(InvoiceImportError, match="empty"):
        invoices_import_file("")
    with pytest.raises(InvoiceImportError, match="not UTF-8"):
        invoices_import_file(b"\xff\xfe" + "x".encode("utf-16-le"))
    assert not Invoice.objects.exists()


def test_the_command_prints_a_summary_and_exits_non_zero_when_a_row_was_rejected(
    tmp_path, customer, capsys
):
    good = tmp_path / "good.csv"
    good.write_text("\ufeff" + HEADER + row("in_1"), encoding="utf-8")
    call_command("import_invoices", str(good))
    assert "1 created, 0 updated, 0 unchanged, 0 rejected" in capsys.readouterr().out
    assert Invoice.objects.get().history.get().history_actor == "command:import_invoices"

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + row("in_1") + row("in_2", amount="x", status="open"), encoding="utf-8")
    with pytest.raises(CommandError, match=r"1 row\(s\) rejected") as raised:
        call_command("import_invoices", str(bad))
    assert raised.value.returncode == 1
    captured = capsys.readouterr()
    assert "line 3 (in_2): amount_due: Enter a number." in captured.err
    assert "0 created, 0 updated, 1 unchanged, 1 rejected" in captured.out
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_invoices", str(tmp_path / "missing.csv"))


def test_the_admin_upload_imports_and_lists_rejected_rows(client, ops_lead, agent, customer):
    url = reverse("admin:billing_invoice_upload")
    client.force_login(agent)
    assert client.get(url).status_code == 403
    client.force_login(ops_lead)
    assert client.get(reverse("admin:billing_invoice_changelist")).content.count(url.encode()) == 1
    upload = SimpleUploadedFile(
        "nov.csv", (HEADER + row("in_1") + row("in_2", amount="x", status="open")).encode()
    )
    response = client.post(url, {"file": upload})
    assert response.status_code == 200
    page = response.content.decode()
    assert "nov.csv: 1 created, 0 updated, 0 unchanged, 1 rejected." in page
    assert "amount_due: Enter a number." in page
    assert Invoice.objects.get().history.get().history_actor == ops_lead.username
    broken = SimpleUploadedFile("x.csv", b"invoice_id\nin_9\n")
    page = client.post(url, {"file": broken}).content.decode()
    assert "Nothing imported. The header lacks the column(s)" in page
