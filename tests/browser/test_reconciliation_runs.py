"""An ops lead works a billing finding in a real browser: the inbox filtered by month, a
corrected invoice re-checked from the case's page, then the runs and a run's page."""

import datetime as dt
from decimal import Decimal

import pytest

from audit.context import acting_as
from billing.models import Invoice, ReconciliationRun
from billing.reconciliation import reconciliation_run
from support.models import Case
from tests.billing.crafted import OCTOBER, customer, invoice
from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.records import active_contract

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def october(customer):
    """Acme (1,450.00 EUR a month) was invoiced 1,400.00 for October; Globex was not
    invoiced; Initech twice; Hooli's invoice is right. September was reconciled too."""
    invoice(customer, "1400.00")
    globex = customer_with_contract("Globex")
    initech = customer_with_contract("Initech")
    invoice(initech, "500.00")
    invoice(initech, "500.00", issued_at=dt.date(2026, 10, 3))
    invoice(customer_with_contract("Hooli"), "500.00")
    invoice(globex, "450.00", period_start=dt.date(2026, 9, 1), period_end=dt.date(2026, 9, 30))
    with acting_as("task:reconciliation_run"):
        reconciliation_run(month=dt.date(2026, 9, 1))
        run = reconciliation_run(month=OCTOBER)
    assert run.findings == {"amount_mismatch": 1, "missing_invoice": 1, "duplicate_invoice": 1}
    return run


def customer_with_contract(name):
    who = customer(name)
    active_contract(who)
    return who


def test_an_ops_lead_re_checks_a_corrected_invoice_and_reads_the_runs(
    live_server, page, screenshot, ops_lead, customer, october
):
    sign_in(page, live_server, ops_lead.username, PASSWORD)
    page.get_by_role("link", name="Exceptions").click()
    page.wait_for_load_state("networkidle")
    # September's four findings too (three not invoiced, Globex's short invoice).
    assert page.get_by_test_id("inbox-row").count() == 7

    filters = page.get_by_test_id("inbox-filters")
    filters.get_by_label("Billing month").fill("2026-10")
    filters.get_by_role("button", name="Filter").click()
    page.wait_for_load_state("networkidle")
    assert "month=2026-10" in page.url
    rows = page.get_by_test_id("inbox-row")
    assert rows.count() == 3
    case = Case.objects.get(kind="amount_mismatch", customer=customer)
    row = page.locator(f'[data-case="{case.pk}"]')
    assert row.get_by_text("Amount mismatch").is_visible()
    assert row.get_by_text("1450.00").is_visible() and row.get_by_text("1400.00").is_visible()

    row.get_by_role("link", name=case.summary).click()
    page.wait_for_load_state("networkidle")
    panel = page.get_by_test_id("case-panel")
    assert panel.get_by_text("October 2026").is_visible()
    # Billing sends a credit note: the invoice now says what the contract does.
    with acting_as("test:billing-fix"):
        wrong = Invoice.objects.get(customer=customer)
        wrong.amount_due = wrong.amount_paid = Decimal("1450.00")
        wrong.save()
    page.get_by_role("button", name="Re-check now").click()
    page.wait_for_load_state("networkidle")
    recheck = ReconciliationRun.objects.latest("pk")
    assert page.get_by_text(
        f"Re-checked (run #{recheck.pk}): fixed, so the case is resolved."
    ).is_visible()
    panel = page.get_by_test_id("case-panel")
    assert panel.locator(".od-pill", has_text="Resolved").is_visible()
    assert panel.get_by_text(f"No longer found by reconciliation run #{recheck.pk}").is_visible()
    assert page.get_by_role("button", name="Re-check now").count() == 0
    screenshot("billing-case-recheck")
    case.refresh_from_db()
    assert (case.state, recheck.customer, recheck.started_by) == ("resolved", customer, "olga")

    page.get_by_role("link", name="Reconciliation runs").click()
    page.wait_for_load_state("networkidle")
    runs = page.locator("#result_list tbody tr")
    assert runs.count() == 3
    assert runs.nth(0).get_by_text("Acme Corp").is_visible()
    whole = runs.nth(1)
    assert whole.get_by_text("every customer").is_visible()
    whole.get_by_role("link", name="2026-10").click()
    page.wait_for_load_state("networkidle")
    progress = page.get_by_test_id("run-progress")
    assert progress.get_by_text("Reconciliation of October 2026").is_visible()
    assert progress.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"
    findings = page.get_by_test_id("run-findings")
    assert findings.get_by_role("link", name="in the inbox →").count() == 3
    screenshot("reconciliation-run")

    # Its amount mismatch link: Acme's, resolved since.
    findings.get_by_role("row", name="Amount mismatch").get_by_role("link").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("inbox-row").count() == 1
    assert page.locator(f'[data-case="{case.pk}"]').get_by_text("Resolved").is_visible()
