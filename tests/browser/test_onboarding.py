"""An account manager works a new customer's onboarding checklist in a real browser."""

import pytest

from onboarding.models import ChecklistTask
from onboarding.services import checklist_generate
from tests.browser.session import sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_manager_ticks_off_onboarding_tasks_and_sees_progress(
    live_server, page, screenshot, manager, templates, acme, agent, ops_lead
):
    checklist = checklist_generate(contract=acme.contracts.get())
    kickoff = checklist.tasks.get(title="Kick-off call with Acme Corp")
    sign_in(page, live_server, manager.username, PASSWORD)

    page.get_by_role("link", name="My onboarding tasks").first.click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("Kick-off call with Acme Corp").is_visible()
    screenshot("onboarding-my-tasks")

    page.get_by_role("link", name="Acme Corp").first.click()
    page.wait_for_load_state("networkidle")
    section = page.locator("#onboarding")
    assert section.get_by_text("0 of 3 done").is_visible()
    section.locator(f'[data-task="{kickoff.pk}"]').get_by_role("button", name="Mark done").click()
    page.wait_for_load_state("networkidle")
    section = page.locator("#onboarding")
    assert section.get_by_text("1 of 3 done").is_visible()
    kickoff.refresh_from_db()
    assert (kickoff.state, kickoff.done_by) == (ChecklistTask.State.DONE, manager)
    section.scroll_into_view_if_needed()
    screenshot("onboarding-customer-checklist")

    page.get_by_role("link", name="Onboarding overview").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("link", name="Acme Corp").is_visible()
    screenshot("onboarding-overview")
