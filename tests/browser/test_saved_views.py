"""A support agent saves a filtered triage queue as a view, finds it in the sidebar with
its count, and opens it again from another page (docs/product.md#saved-views)."""

import pytest

from audit.context import acting_as
from opsdesk.models import SavedView
from support.models import Ticket
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tickets(customer, manager):
    with acting_as("test:fixture"):
        builders.ticket(customer=customer, subject="Export stuck", priority=Ticket.Priority.URGENT)
        builders.ticket(subject="Login loop", priority=Ticket.Priority.URGENT)
        builders.ticket(subject="Taken", priority=Ticket.Priority.URGENT, assignee=manager)
        builders.ticket(subject="Question", priority=Ticket.Priority.LOW)


def sidebar_view(page, name: str):
    return page.locator("#nav-sidebar-apps").get_by_test_id("sidebar-view").filter(has_text=name)


def test_an_agent_saves_a_filtered_queue_and_opens_it_from_the_sidebar(
    live_server, page, screenshot, agent, tickets
):
    # Script errors (a CSP refusal included) and failed requests, the browser's own
    # favicon request aside.
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and not message.text.startswith("Failed to load resource")
            and errors.append(message.text)
        ),
    )
    page.on(
        "response",
        lambda response: (
            response.status >= 400
            and not response.url.endswith("/favicon.ico")
            and errors.append(f"{response.status} {response.url}")
        ),
    )
    sign_in(page, live_server, agent.username, PASSWORD)
    page.get_by_role("link", name="Triage queue").first.click()
    filters = page.get_by_test_id("queue-filters")
    filters.get_by_label("Priority").select_option("urgent")
    filters.get_by_label("Assignee").select_option("none")
    with page.expect_navigation():
        filters.get_by_role("button", name="Filter").click()
    assert page.get_by_test_id("queue-row").count() == 2

    views = page.get_by_test_id("saved-views")
    views.get_by_text("Save this view").click()
    views.get_by_label("Name").fill("Urgent, nobody on it")
    screenshot("saved-view-save-form")
    with page.expect_navigation():
        views.get_by_role("button", name="Save view").click()
    assert page.get_by_text(
        "Saved the view “Urgent, nobody on it”: it is in the sidebar under Triage queue."
    ).is_visible()
    current = views.locator('[aria-current="page"]')
    assert current.inner_text().strip() == "Urgent, nobody on it"

    # The sidebar gets it under the queue, with its count, marked as the page shown.
    entry = sidebar_view(page, "Urgent, nobody on it")
    entry.wait_for()
    assert entry.get_by_test_id("sidebar-view-count").inner_text() == "2"
    assert entry.get_attribute("aria-current") == "page"
    # Right under the queue's own entry.
    after_queue = page.evaluate(
        """() => document.querySelector('#nav-sidebar-apps a[href="/admin/support/ticket/queue/"]')
            .closest('li').nextElementSibling.textContent.trim()"""
    )
    assert after_queue.startswith("Urgent, nobody on it"), after_queue
    screenshot("saved-view-queue")

    # From another page: the same entry, live, opens the view.
    with page.expect_navigation():
        page.get_by_role("link", name="All tickets").click()
    entry = sidebar_view(page, "Urgent, nobody on it")
    entry.wait_for()
    assert entry.get_attribute("aria-current") is None
    with acting_as("test:fixture"):
        builders.ticket(subject="Another fire", priority=Ticket.Priority.URGENT)
    page.reload()
    entry = sidebar_view(page, "Urgent, nobody on it")
    entry.wait_for()
    assert entry.get_by_test_id("sidebar-view-count").inner_text() == "3"
    with page.expect_navigation():
        entry.click()
    assert page.url.endswith("/admin/support/ticket/queue/?priority=urgent&assignee=none")
    assert page.get_by_test_id("queue-row").count() == 3
    assert page.get_by_test_id("queue-filters").get_by_label("Priority").input_value() == "urgent"

    page.emulate_media(color_scheme="dark")  # the admin's theme follows the system's
    page.reload()
    sidebar_view(page, "Urgent, nobody on it").wait_for()
    screenshot("saved-view-queue-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    screenshot("saved-view-queue-390")
    # The sidebar, opened from the header as on a phone: the view under the queue.
    page.locator('[x-on\\:click="sidebarMobileOpen = !sidebarMobileOpen"]').last.click()
    sidebar_view(page, "Urgent, nobody on it").wait_for(state="visible")
    screenshot("saved-view-sidebar-390")

    view = SavedView.objects.get()
    assert (view.owner, view.page, view.query, view.shared) == (
        agent,
        "queue",
        "priority=urgent&assignee=none",
        False,
    )
    assert errors == []
