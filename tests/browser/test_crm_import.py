"""An ops lead uploads the CRM's exports in a real browser: the import waits for a worker,
then a real Celery worker takes the rows while the page follows its progress bar to the
end; the contract it activated gets its onboarding checklist from the worker."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import expect

from customers.models import Contract, CrmImport, Customer
from onboarding.models import Checklist
from opsdesk.celery import app
from tests.browser.session import sign_in
from tests.customers.crm_files import (
    ACCOUNTS_HEADER,
    CONTRACT,
    CONTRACTS_HEADER,
    account,
    contract,
)
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MORE = 1500  # accounts besides Acme: two batches, so the page has progress to follow


def csv_payload(name: str, text: str) -> dict:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode()}


def wait_for(condition, seconds=30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_an_ops_lead_uploads_the_crms_exports_and_follows_the_import_to_its_end(
    live_server, page, screenshot, ops_lead, manager, agent, templates
):
    accounts = (
        ACCOUNTS_HEADER
        + account()
        + "".join(
            account(crm_id=f"001N{n:05d}", name=f"Northwind {n}", tenant_id=f"nw-{n}")
            for n in range(MORE)
        )
        + account(crm_id="<b>Evil</b>", name="Evil Corp", manager="<i>@evil.test")
    )
    contracts = (
        CONTRACTS_HEADER
        + contract()
        + contract(crm_id="800Dn00000Lost", account_id="001Dn00000Gone", status="draft")
    )
    sign_in(page, live_server, ops_lead.username, PASSWORD)
    page.get_by_role("link", name="CRM imports").click()
    page.get_by_role("link", name="Import CSV…").click()
    page.get_by_label("Accounts (CSV)").set_input_files(csv_payload("accounts.csv", accounts))
    page.get_by_label("Contracts (CSV)").set_input_files(csv_payload("contracts.csv", contracts))
    with page.expect_navigation():
        page.get_by_role("button", name="Import").click()

    # Stored, waiting for a worker: the page says so and follows it.
    progress = page.get_by_test_id("import-progress")
    expect(progress.get_by_text("Queued", exact=True)).to_be_visible()
    assert progress.get_by_role("progressbar").get_attribute("aria-valuenow") == "0"
    screenshot("crm-import-queued")

    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        expect(progress.get_by_role("progressbar")).to_have_attribute(
            "aria-valuenow", "100", timeout=60_000
        )
        assert wait_for(lambda: Checklist.objects.filter(contract__crm_id=CONTRACT).exists())

    expect(progress.get_by_text("Rows rejected", exact=True)).to_be_visible()
    counts = page.get_by_test_id("import-counts")
    expect(counts.get_by_role("row", name="Accounts").locator("td")).to_have_text(
        ["Accounts", str(MORE + 1), "0", "0", "0", "1"]
    )
    expect(counts.get_by_role("row", name="Contracts").locator("td")).to_have_text(
        ["Contracts", "1", "0", "0", "0", "1"]
    )
    notes = page.get_by_test_id("import-notes")
    expect(notes.locator("tr[data-line]")).to_have_count(2)
    expect(notes.locator('tr[data-line="3"]')).to_contain_text(
        "CRM account 001Dn00000Gone is neither in opsdesk nor in the accounts file"
    )
    expect(notes.locator(f'tr[data-line="{MORE + 3}"]')).to_contain_text(
        "account_manager_email: must be an email address"
    )
    assert page.locator("b", has_text="Evil").count() == 0  # the file's markup is text
    screenshot("crm-import-done")

    record = CrmImport.objects.get()
    assert (record.status, record.rejected, record.started_by) == ("rows_rejected", 2, "olga")
    assert Customer.objects.count() == MORE + 1
    acme_contract = Contract.objects.get(crm_id=CONTRACT)
    assert acme_contract.history.get().history_actor == "olga"
    assert sorted(
        Checklist.objects.get(contract=acme_contract).tasks.values_list("title", flat=True)
    ) == ["Configure SSO", "Kick-off call with Acme Corp"]
