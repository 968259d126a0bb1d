"""Support picks an assignee-like person by name and sees the account manager as a name
and email, never a link to a page it may not open."""

from __future__ import annotations

import pytest

from audit.context import acting_as
from support.models import TriageRule
from tests.browser.session import sign_in
from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_support_sees_the_account_manager_by_name_and_picks_a_rules_target(
    page, live_server, agent, manager, customer
):
    manager.last_name = "Ames"
    manager.save()
    with acting_as("test:fixture"):
        rule = TriageRule.objects.create(name="VIP first")
    sign_in(page, live_server, "sam", PASSWORD)

    page.goto(f"{live_server.url}/admin/customers/customer/{customer.pk}/change/")
    body = page.locator("body")
    assert "Alice Ames · alice@opsdesk.test" in body.inner_text()
    assert page.locator(f'a[href="/admin/auth/user/{manager.pk}/change/"]').count() == 0
    page.screenshot(path="/tmp/shots/e/customer-support-1440.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 900})
    page.screenshot(path="/tmp/shots/e/customer-support-390.png")
    page.emulate_media(color_scheme="dark")
    page.evaluate("document.documentElement.classList.add('dark')")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path="/tmp/shots/e/customer-support-dark.png")

    page.goto(f"{live_server.url}/admin/support/triagerule/{rule.pk}/change/")
    page.locator(".field-assign_to .select2-selection, #id_assign_to + .select2").first.click()
    page.keyboard.type("ali")
    option = page.locator(".select2-results__option", has_text="Alice Ames")
    option.wait_for()
    page.screenshot(path="/tmp/shots/e/rule-picker-1440.png", full_page=False)
    option.click()
    assert page.locator("#id_assign_to").input_value() == str(manager.pk)
