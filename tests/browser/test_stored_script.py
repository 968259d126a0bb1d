"""Hostile text from outside runs nothing in a real browser (once the digest
preview ran a customer's name through Alpine's x-init under the CSP)."""

import datetime as dt

import pytest

from audit.context import acting_as
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.records import active_contract

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAME = (
    "Evil <script>alert(1)</script><img src=x onerror=alert(2)>"
    '<div x-data x-init="alert(3)">x</div>'
)


def test_a_hostile_customer_name_in_the_digest_preview_is_shown_and_runs_nothing(
    live_server, page, screenshot, manager
):
    with acting_as("test:fixture"):
        evil = builders.customer(external_id="evil", name=NAME, account_manager=manager)
        active_contract(evil, end_date=dt.date(2027, 12, 31))
    alerts = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    sign_in(page, live_server, manager.username, PASSWORD)

    page.get_by_role("link", name="Digest preview").click()
    page.wait_for_load_state("networkidle")
    page.get_by_text("Plain-text part").click()

    assert f"* {NAME} (evil)" in page.get_by_test_id("digest-text").inner_text()
    mail = page.frame_locator('[data-testid="digest-html"]')
    assert mail.get_by_role("link", name=NAME).is_visible()
    assert alerts == []
    screenshot("digest-preview-hostile-name")
