"""Someone looks a record up from the sidebar's box: grouped results, and a whole code
straight to its entitlement; at 1440 px, 390 px and in the dark theme."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audit.context import acting_as
from customers.models import Entitlement
from tests import builders
from tests.browser.session import SCREENSHOTS, sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("OPSDESK_SCREENSHOTS", SCREENSHOTS))


@pytest.fixture
def records(customer):
    with acting_as("test:fixture"):
        builders.contact(customer=customer, name="Jane Roe", email="jane.roe@acme.example")
        seat = builders.entitlement(
            customer=customer,
            code="K7QP-4XMD-9RTW",
            state=Entitlement.State.ASSIGNED,
            assignee_email="pat.lee@acme.example",
        )
        builders.order(customer=customer, external_id="ord_acme_8f3k2m")
        builders.invoice(customer=customer, number="OPS-2026-0042")
        builders.ticket(
            customer=customer,
            subject="Acme: login page times out",
            requester_email="sam@acme.example",
        )
        builders.customer(name="<script>alert(1)</script> Acme twin", external_id="acme-twin")
    return seat


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_the_sidebar_box_finds_records_grouped_and_a_code_opens_its_entitlement(
    page, live_server, agent, records
):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, live_server, agent.username, PASSWORD)
    box = page.get_by_test_id("sidebar-search").locator("input[name=q]")
    box.fill("acme")
    with page.expect_navigation():
        box.press("Enter")
    assert page.url.endswith("/admin/search/?q=acme")
    groups = page.get_by_test_id("search-group")
    assert [groups.nth(i).get_attribute("data-kind") for i in range(groups.count())] == [
        "customers",
        "contacts",
        "entitlements",
        "orders",
        "tickets",
    ]
    customers = page.locator("[data-kind=customers] [data-testid=search-hit] a")
    assert customers.all_inner_texts() == ["<script>alert(1)</script> Acme twin", "Acme Corp"]
    assert page.locator("[data-kind=customers] [data-testid=search-count]").inner_text() == (
        "2 found"
    )
    assert dialogs == []
    shoot(page, "search-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the narrow search page scrolls sideways ({width} px)"
    shoot(page, "search-390")
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.emulate_media(color_scheme="dark")  # the admin's theme follows the system's
    page.reload()
    shoot(page, "search-dark")
    page.emulate_media(color_scheme="light")

    # The page's own box: a code typed any case without dashes opens its entitlement.
    box = page.get_by_test_id("search-box")
    box.fill("k7qp4xmd9rtw")
    with page.expect_navigation():
        box.press("Enter")
    assert page.url == f"{live_server.url}/admin/customers/entitlement/{records.pk}/change/"
    assert "K7QP-4XMD-9RTW" in page.content()


def test_an_empty_and_a_too_short_search_say_what_to_type(page, live_server, agent):
    sign_in(page, live_server, agent.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/search/")
    assert page.get_by_test_id("search-examples").is_visible()
    shoot(page, "search-empty-1440")
    page.emulate_media(color_scheme="dark")
    page.reload()
    shoot(page, "search-empty-dark")
    page.emulate_media(color_scheme="light")
    box = page.get_by_test_id("search-box")
    box.fill("ab")
    with page.expect_navigation():
        box.press("Enter")
    assert (
        page.get_by_test_id("search-refusal")
        .inner_text()
        .startswith("Type at least 3 letters or digits in a row")
    )
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "search-refused-390")


def test_the_command_palette_lists_records(page, live_server, agent, records):
    sign_in(page, live_server, agent.username, PASSWORD)
    page.keyboard.press("Control+k")
    palette = page.locator("#search-input-command")
    palette.press_sequentially("K7QP4XMD", delay=30)  # the palette asks on key-up
    link = page.locator("#command-results a", has_text="K7QP-4XMD-9RTW")
    link.wait_for()
    assert link.get_attribute("href") == f"/admin/customers/entitlement/{records.pk}/change/"
    shoot(page, "search-palette")
