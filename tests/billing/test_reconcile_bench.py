"""The reconciliation benchmark's check (``bench.reconcile``): its hand-written SQL gives
the expected-vs-invoiced figures of docs/product.md for a crafted month, agrees with
``billing_comparison`` row for row, and a disagreement is reported."""

import datetime as dt
from decimal import Decimal

import pytest

from audit.context import acting_as
from bench.reconcile import agreement, differences, expected_vs_invoiced
from billing import reconciliation
from billing.reconciliation import billing_comparison, reconciliation_run
from customers.models import Customer
from support.models import Case

# ``month``: the crafted month of the reconciliation tests, used as a fixture.
from tests.billing.crafted import OCTOBER, TODAY, customer, invoice, month, peak  # noqa: F401
from tests.records import active_contract

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("month")]
D = Decimal


@pytest.fixture(autouse=True)
def _more():
    """Beside the crafted month: two contracts active in it (fees and seats add up, the
    latest one's extra-seat price counts) and usage without a contract."""
    both = customer("Two contracts")
    active_contract(both)
    active_contract(
        both,
        start_date=dt.date(2026, 10, 1),
        seats=5,
        monthly_fee=D("100.00"),
        price_per_extra_seat=D("12.00"),
    )
    peak(both, 30)  # 25 seats: 5 extra at 12.00
    invoice(both, "660.00")
    peak(customer("Usage only"), 50)


def by_name(rows) -> dict[str, tuple]:
    names = dict(Customer.objects.values_list("pk", "name"))
    return {names.get(row[0], row[1]): tuple(row[2:]) for row in rows}


def test_the_sql_gives_expected_and_invoiced_per_customer():
    none = (None, 1, D("500.00"))  # invoiced without a contract active in the month
    assert by_name(expected_vs_invoiced(OCTOBER)) == {
        "Exact": (D("500.00"), 1, D("500.00")),
        "Extra seats": (D("550.00"), 1, D("550.00")),
        "Within tolerance": (D("500.00"), 1, D("502.50")),
        "Over tolerance": (D("500.00"), 1, D("497.49")),
        "Small within": (D("100.00"), 1, D("101.00")),
        "Small over": (D("100.00"), 1, D("98.99")),
        "Missing": (D("500.00"), 0, None),
        "Only void": (D("500.00"), 0, None),
        "Only draft": (D("500.00"), 0, None),
        "Ended in September": none,
        "Draft contract": none,
        "ghost-9": (None, 1, D("80.00")),
        "Dollars": (D("500.00"), 1, D("500.00")),
        "Twice": (D("500.00"), 2, D("1000.00")),
        "Late": (D("500.00"), 1, D("500.00")),
        "Just in time": (D("500.00"), 1, D("500.00")),
        "Mid-month start": (D("500.00"), 1, D("500.00")),
        "Two contracts": (D("660.00"), 1, D("660.00")),
    }
    assert expected_vs_invoiced(dt.date(2025, 12, 1)) == []  # before every contract


def test_the_sql_agrees_with_billing_comparison_row_for_row():
    app, sql, diffs = agreement(OCTOBER, TODAY)
    assert (len(app), len(sql), diffs) == (18, 18, [])
    assert agreement(dt.date(2026, 11, 1), TODAY)[2] == []  # no invoices: all missing


def test_a_disagreement_names_the_row_and_figure():
    app, sql, _ = agreement(OCTOBER, TODAY)
    exact = Customer.objects.get(name="Exact").pk
    missing = Customer.objects.get(name="Missing").pk
    changed = [
        (*row[:4], D("499.00")) if row[0] == exact else row for row in sql if row[0] != missing
    ]
    changed.append((None, "ghost-10", None, 1, D("5.00")))
    assert differences(app, changed) == [
        f"({missing}, None): only in billing_comparison",
        "(None, 'ghost-10'): only in the SQL",
        f"({exact}, None): invoiced 500.00 in billing_comparison, 499.00 in the SQL",
    ]


def test_reconcile_skips_only_rows_without_findings(monkeypatch):
    """What made ``reconcile`` fast enough: rows that are clean (one invoice in the
    contract's currency for exactly the expected amount, none overdue) are not looked up.
    It finds exactly what looking up every row finds."""

    def cases():
        return sorted(
            (c.dedupe_key, c.kind, c.summary, c.expected, c.found, c.expected_amount,
             c.found_amount, c.subject_type_id, c.subject_id)
            for c in Case.objects.filter(period=OCTOBER)
        )  # fmt: skip

    rows = billing_comparison(first=OCTOBER, last=OCTOBER, today=TODAY)
    clean = {r.customer_id for r in rows if reconciliation._clean(r)}
    assert clean == set(
        Customer.objects.filter(
            name__in=["Exact", "Extra seats", "Just in time", "Mid-month start", "Two contracts"]
        ).values_list("pk", flat=True)
    )
    with acting_as("test:reconcile"):
        skipping = reconciliation_run(month=OCTOBER, today=TODAY)
        found = cases()
        Case.objects.filter(period=OCTOBER).delete()
        monkeypatch.setattr(reconciliation, "_clean", lambda row: False)
        looking_up_all = reconciliation_run(month=OCTOBER, today=TODAY)
    assert cases() == found
    assert len(found) == 11
    assert skipping.findings == looking_up_all.findings
