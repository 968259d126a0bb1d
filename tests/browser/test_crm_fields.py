"""An account manager opens an account and a contract the CRM sent, in a real browser: the
fields the CRM owns are shown, not offered for editing, under the note naming the CRM."""

import pytest

from customers.models import Contract, Customer
from tests.browser.session import sign_in
from tests.customers.crm_sender import CRM_SECRET, account, contract, crm_deliver
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_crm_fields_of_a_linked_account_and_contract_are_read_only(
    live_server, page, screenshot, manager, settings
):
    settings.OPSDESK_CRM_WEBHOOK_SECRETS = [CRM_SECRET]
    crm_deliver(account(), "msg_a1")
    crm_deliver(contract(), "msg_c1")
    acme, taken = Customer.objects.get(), Contract.objects.get()
    sign_in(page, live_server, manager.username, PASSWORD)

    page.goto(f"{live_server.url}/admin/customers/customer/{acme.pk}/change/")
    note = page.get_by_test_id("crm-note")
    assert note.inner_text().startswith(
        "From the CRM: this account is CRM account 001Dn00000Acme, last changed there on"
    )
    screenshot("crm-linked-customer")
    for name in ("name", "external_id", "status", "account_manager", "crm_id"):
        assert page.locator(f"[name={name}]").count() == 0, name
    shown = page.locator("#customer_form").inner_text()
    assert "Acme Corp" in shown and "acme-7f3a" in shown

    page.goto(f"{live_server.url}/admin/customers/contract/{taken.pk}/change/")
    assert page.get_by_test_id("crm-note").is_visible()
    screenshot("crm-linked-contract")
    for name in ("customer", "plan", "seats", "monthly_fee", "currency", "status", "crm_id"):
        assert page.locator(f"[name={name}]").count() == 0, name
    shown = page.locator("#contract_form").inner_text()
    assert "800Dn00000C42" in shown and "1200.00" in shown
