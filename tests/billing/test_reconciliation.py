"""Billing reconciliation of a crafted month: exactly which findings, the tolerance edges,
idempotent re-runs, a corrected invoice resolving its case, and one writer per month."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.context import acting_as
from billing.imports import invoices_import_file
from billing.models import Invoice, ReconciliationRun
from billing.reconciliation import (
    ReconciliationBusy,
    amount_mismatch,
    billing_comparison,
    mismatch_kinds,
    reconciliation_run,
    tolerance,
)
from customers.models import Contract, Customer
from support.models import Case
from tests.billing.crafted import OCTOBER, TODAY, customer, invoice, month
from tests.billing.invoice_csv import HEADER, row
from tests.records import active_contract

__all__ = ["month"]  # the crafted month, a fixture here

pytestmark = pytest.mark.django_db

D = Decimal


def findings():
    return sorted(
        (
            c.kind,
            c.customer.name if c.customer else c.details["tenant_id"],
            c.expected_amount,
            c.found_amount,
        )
        for c in Case.objects.select_related("customer").filter(period=OCTOBER)
    )


def test_the_month_gives_exactly_these_findings(month):
    run = reconciliation_run(month=OCTOBER, today=TODAY)
    assert findings() == [
        ("amount_mismatch", "Over tolerance", D("500.00"), D("497.49")),
        ("amount_mismatch", "Small over", D("100.00"), D("98.99")),
        ("currency_mismatch", "Dollars", D("500.00"), D("500.00")),
        ("duplicate_invoice", "Twice", D("500.00"), D("1000.00")),
        ("invoice_without_contract", "Draft contract", D("0.00"), D("500.00")),
        ("invoice_without_contract", "Ended in September", D("0.00"), D("500.00")),
        ("invoice_without_contract", "ghost-9", D("0.00"), D("80.00")),
        ("missing_invoice", "Missing", D("500.00"), None),
        ("missing_invoice", "Only draft", D("500.00"), None),
        ("missing_invoice", "Only void", D("500.00"), None),
        ("overdue_invoice", "Late", D("500.00"), D("100.00")),
    ]
    assert run.status == "succeeded" and run.progress == 100
    assert run.findings == {
        "amount_mismatch": 2,
        "currency_mismatch": 1,
        "duplicate_invoice": 1,
        "invoice_without_contract": 3,
        "missing_invoice": 3,
        "overdue_invoice": 1,
    }
    assert (run.opened, run.updated, run.resolved) == (11, 0, 0)
    late = Case.objects.get(kind="overdue_invoice")
    unpaid = Invoice.objects.get(customer=month["Late"])
    assert late.summary == f"Late: invoice {unpaid.number} overdue since 06 Nov 2026"
    assert late.found == "open, 400.00 EUR unpaid"
    assert late.subject == unpaid
    missing = Case.objects.get(kind="missing_invoice", customer=month["Missing"])
    assert missing.dedupe_key == "missing_invoice:tenant:missing:2026-10"
    assert missing.subject == month["Missing"].contracts.get()
    history = missing.history.get()
    assert history.history_change_reason == f"found by reconciliation run #{run.pk}"
    assert (history.history_actor, history.history_type) == ("test:reconcile", "+")


@pytest.fixture(autouse=True)
def _actor():
    with acting_as("test:reconcile"):
        yield


def test_expected_adds_extra_seats_at_the_peak_and_ignores_other_months(month):
    rows = {r.customer_id: r for r in billing_comparison(first=OCTOBER, last=OCTOBER, today=TODAY)}
    extra = rows[month["Extra seats"].pk]
    assert (extra.expected, extra.peak, extra.seats, extra.invoiced) == (
        D("550.00"),
        25,
        20,
        D("550.00"),
    )
    assert rows[month["Exact"].pk].expected == D("500.00")
    assert rows[month["Mid-month start"].pk].expected == D("500.00")  # no proration
    assert month["Starts November"].pk not in rows


def test_tolerance_is_the_larger_of_one_unit_and_half_a_percent(settings):
    assert tolerance(D("100.00")) == D("1.00")
    assert tolerance(D("500.00")) == D("2.50")
    assert tolerance(D("10000.00")) == D("50.00")
    settings.OPSDESK_RECONCILE_TOLERANCE_MIN = D("5")
    assert tolerance(D("500.00")) == D("5")
    settings.OPSDESK_RECONCILE_TOLERANCE_RATE = D("0.02")
    assert tolerance(D("500.00")) == D("10.00")


def test_the_tolerance_is_read_from_the_settings_not_the_environment(monkeypatch):
    """The strict helpers of opsdesk/settings.py parse the variables once, at start."""
    monkeypatch.setenv("OPSDESK_RECONCILE_TOLERANCE_MIN", "100")
    monkeypatch.setenv("OPSDESK_RECONCILE_TOLERANCE_RATE", "0.5")
    assert tolerance(D("500.00")) == D("2.50")


@pytest.mark.parametrize(
    ("expected", "amount", "mismatch"),
    [
        ("500.00", "502.50", False),  # 0.5% over: at the edge, allowed
        ("500.00", "497.50", False),
        ("500.00", "502.51", True),
        ("500.00", "497.49", True),
        ("100.00", "101.00", False),  # one unit beats 0.5% of 100
        ("100.00", "98.99", True),
        ("0.00", "1.00", False),
        ("0.00", "1.01", True),
        ("10000.00", "10050.00", False),
        ("10000.00", "9949.99", True),
    ],
)
def test_an_amount_mismatch_is_further_than_the_tolerance_either_way(expected, amount, mismatch):
    assert amount_mismatch(D(expected), D(amount)) is mismatch


def test_each_row_of_the_month_has_the_mismatches_its_findings_are_made_of(month):
    rows = billing_comparison(first=OCTOBER, last=OCTOBER, today=TODAY)
    names = dict(Customer.objects.values_list("pk", "name"))
    kinds = {
        names.get(row.customer_id, row.tenant_id): mismatch_kinds(row, today=TODAY) for row in rows
    }
    assert kinds == {
        "Exact": [],
        "Extra seats": [],
        "Within tolerance": [],
        "Over tolerance": ["amount_mismatch"],
        "Small within": [],
        "Small over": ["amount_mismatch"],
        "Missing": ["missing_invoice"],
        "Only void": ["missing_invoice"],
        "Only draft": ["missing_invoice"],
        "Ended in September": ["invoice_without_contract"],
        "Draft contract": ["invoice_without_contract"],
        "ghost-9": ["invoice_without_contract"],
        "Dollars": ["currency_mismatch"],
        "Twice": ["duplicate_invoice"],
        "Late": [],  # overdue: a finding of the invoice, not of the month's amount
        "Just in time": [],
        "Mid-month start": [],
    }
    # Billing invoices in arrears: not missing until the month and its grace days are over.
    missing = next(row for row in rows if names.get(row.customer_id) == "Missing")
    assert mismatch_kinds(missing, today=dt.date(2026, 11, 5)) == []
    assert mismatch_kinds(missing, today=dt.date(2026, 11, 6)) == ["missing_invoice"]


def test_a_second_run_changes_nothing(month):
    reconciliation_run(month=OCTOBER, today=TODAY)
    before = {c.pk: c.history.count() for c in Case.objects.all()}
    again = reconciliation_run(month=OCTOBER, today=TODAY)
    assert (again.opened, again.updated, again.resolved) == (0, 0, 0)
    assert {c.pk: c.history.count() for c in Case.objects.all()} == before
    assert Case.objects.count() == 11


def test_a_corrected_invoice_reimported_resolves_its_case_which_keeps_owner_and_notes(
    month, ops_lead
):
    first = reconciliation_run(month=OCTOBER, today=TODAY)
    case = Case.objects.get(kind="amount_mismatch", customer=month["Over tolerance"])
    with acting_as("olga", user=ops_lead):
        case.owner = ops_lead
        case.save()
    wrong = Invoice.objects.get(customer=month["Over tolerance"])
    fixed = row(wrong.external_id, amount="500.00", tenant=wrong.tenant_id)
    result = invoices_import_file(HEADER + fixed)
    assert result.updated == 1
    run = reconciliation_run(month=OCTOBER, today=TODAY)
    assert (run.opened, run.updated, run.resolved) == (0, 0, 1)
    case.refresh_from_db()
    assert (case.state, case.owner) == ("resolved", ops_lead)
    assert case.closing_note.startswith(f"No longer found by reconciliation run #{run.pk} on ")
    latest = case.history.first()
    assert latest.history_change_reason == f"no longer found by reconciliation run #{run.pk}"
    assert first.pk != run.pk

    # Broken again: the same case opens again, still Olga's.
    invoices_import_file(HEADER + row(wrong.external_id, amount="400.00", tenant=wrong.tenant_id))
    third = reconciliation_run(month=OCTOBER, today=TODAY)
    case.refresh_from_db()
    assert (third.opened, case.state, case.owner, case.closing_note) == (1, "open", ops_lead, "")
    assert case.found_amount == D("400.00")
    assert case.history.first().history_change_reason == (
        f"found again by reconciliation run #{third.pk}"
    )


def test_a_changed_amount_updates_the_open_case_and_a_waived_case_stays_waived(month, ops_lead):
    reconciliation_run(month=OCTOBER, today=TODAY)
    small = Case.objects.get(kind="amount_mismatch", customer=month["Small over"])
    twice = Case.objects.get(kind="duplicate_invoice")
    from support.cases import case_close

    case_close(case=twice, state="waived", note="Credit note follows", by=ops_lead)
    with acting_as("test:fixture"):
        wrong = Invoice.objects.get(customer=month["Small over"])
        wrong.amount_due = D("90.00")
        wrong.save()
    run = reconciliation_run(month=OCTOBER, today=TODAY)
    assert (run.opened, run.updated, run.resolved) == (0, 1, 0)
    small.refresh_from_db()
    assert small.found_amount == D("90.00") and small.state == "open"
    twice.refresh_from_db()
    assert (twice.state, twice.closing_note) == ("waived", "Credit note follows")


def test_re_check_of_one_customer_touches_only_its_cases(month):
    reconciliation_run(month=OCTOBER, today=TODAY)
    with acting_as("test:fixture"):
        fix = Invoice.objects.get(customer=month["Over tolerance"])
        fix.amount_due = D("500.00")
        fix.save()
        missing = Invoice.objects.get(customer=month["Only void"])
        missing.status = "paid"
        missing.save()
    run = reconciliation_run(month=OCTOBER, customer=month["Over tolerance"], today=TODAY)
    assert (run.customer, run.customers_checked, run.resolved) == (month["Over tolerance"], 1, 1)
    assert Case.objects.get(customer=month["Only void"]).state == "open"  # not re-checked


def test_queries_do_not_grow_with_the_number_of_customers(month):
    reconciliation_run(month=OCTOBER, today=TODAY)  # warm: content types cached
    september = {"period_start": dt.date(2026, 9, 1), "period_end": dt.date(2026, 9, 30)}
    invoice(month["Exact"], "500.00", **september)
    with CaptureQueriesContext(connection) as small:
        reconciliation_run(month=dt.date(2026, 9, 1), today=TODAY)
    for number in range(40):
        who = customer(f"More {number}")
        active_contract(who)
        invoice(who, "400.00", **september)
    with CaptureQueriesContext(connection) as large:
        run = reconciliation_run(month=dt.date(2026, 9, 1), today=TODAY)
    assert run.findings["amount_mismatch"] == 40
    assert len(large.captured_queries) == len(small.captured_queries)


def test_two_runs_of_a_month_cannot_write_at_once_and_a_dead_one_is_taken_over(month):
    with acting_as("test:fixture"):
        alive = ReconciliationRun.objects.create(
            month=OCTOBER, started_by="task:reconciliation_run"
        )
    with pytest.raises(
        ReconciliationBusy, match=f"run #{alive.pk}, started by task:reconciliation_run"
    ):
        reconciliation_run(month=OCTOBER, today=TODAY)
    assert not Case.objects.exists()
    assert ReconciliationRun.objects.count() == 1
    with acting_as("test:fixture"):
        alive.started_at = timezone.now() - dt.timedelta(minutes=31)
        alive.save()
    run = reconciliation_run(month=OCTOBER, today=TODAY)
    alive.refresh_from_db()
    assert (alive.status, alive.error) == ("failed", "Stopped without finishing (worker lost).")
    assert run.status == "succeeded" and Case.objects.count() == 11


def test_a_failure_is_recorded_on_the_run(month, monkeypatch):
    from billing import reconciliation

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(reconciliation, "_write_findings", broken)
    with pytest.raises(RuntimeError):
        reconciliation_run(month=OCTOBER, today=TODAY)
    run = ReconciliationRun.objects.get()
    assert (run.status, run.error) == ("failed", "RuntimeError: disk full")
    assert run.finished_at is not None and not Case.objects.exists()


def test_the_command_reports_the_run(month, capsys):
    call_command("reconcile", "--month", "2026-10")
    out = capsys.readouterr().out
    assert out.startswith("reconcile 2026-10 (run #")
    assert "findings: amount_mismatch 2, currency_mismatch 1, duplicate_invoice 1" in out
    assert ReconciliationRun.objects.get().started_by == "command:reconcile"
    with pytest.raises(CommandError, match=r"'2026-13' is not a month like 2026-10\."):
        call_command("reconcile", "--month", "2026-13")
    assert Contract.objects.exists()


@pytest.mark.parametrize(
    ("today", "missing"),
    [
        (dt.date(2026, 10, 20), False),  # October is not over: its invoice is not due yet
        (dt.date(2026, 11, 5), False),  # the last day of grace (5 days after the month)
        (dt.date(2026, 11, 6), True),
    ],
)
def test_a_month_invoiced_in_arrears_has_a_missing_invoice_only_after_its_grace(
    month, today, missing
):
    reconciliation_run(month=OCTOBER, today=today)
    found = Case.objects.filter(kind="missing_invoice", customer=month["Missing"])
    assert found.exists() is missing
    if missing:
        assert found.get().expected == "an invoice in EUR by 05 Nov 2026"
