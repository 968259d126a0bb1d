"""Rows of the billing system's invoice CSV (docs/contracts/invoices-csv.md), as the import
tests and the reconciliation tests that correct an invoice write them."""

HEADER = "due_at,invoice_id,tenant_id,number,status,currency,amount_due,amount_paid,period_start,period_end,issued_at,note\n"  # noqa: E501


def row(invoice_id="in_1", *, amount="1450.00", status="paid", tenant="acme-7f3a", **over):
    """One line of the CSV: Acme's October invoice, paid unless ``status`` says otherwise."""
    values = {
        "due_at": "2026-11-15",
        "invoice_id": invoice_id,
        "tenant_id": tenant,
        "number": f"OPS-{invoice_id}",
        "status": status,
        "currency": "EUR",
        "amount_due": amount,
        "amount_paid": amount if status == "paid" else "0.00",
        "period_start": "2026-10-01",
        "period_end": "2026-10-31",
        "issued_at": "2026-11-01",
        "note": "ignored",
        **over,
    }
    return ",".join(values.values()) + "\n"
