"""An account manager previews their digest in a real browser."""

import pytest

from tests.browser.session import sign_in
from tests.opsdesk.health.followed import follow
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_manager_previews_the_digest_as_it_will_be_emailed(
    live_server, page, screenshot, manager
):
    follow("Healthy Co", manager)
    follow("Silent Co", manager, usage_days=0)
    sign_in(page, live_server, manager.username, PASSWORD)

    page.get_by_role("link", name="Digest preview").click()
    page.get_by_label("Digest date").fill("2026-11-22")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state("networkidle")

    mail = page.frame_locator('[data-testid="digest-html"]')
    # Silent Co's two signals (dormant, no usage data) are new on that date.
    assert mail.get_by_role("heading").inner_text() == "2 new signals, 0 still open"
    assert mail.get_by_text("no usage report for 21 Nov 2026").is_visible()
    assert mail.get_by_role("link", name="Healthy Co").is_visible()
    # The frame takes the email's height: no scroll box inside the page.
    frame, content = page.get_by_test_id("digest-html").evaluate(
        "el => [el.clientHeight, el.contentDocument.documentElement.scrollHeight]"
    )
    assert frame == content > 300
    screenshot("digest-preview")
