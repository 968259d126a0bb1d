"""Headless Chromium (Debian's package) driven by Playwright against a live server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audit.context import acting_as
from customers.models import Entitlement
from tests import builders
from tests.browser.session import SCREENSHOTS

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls from
# fixtures in that thread are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("OPSDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}; install it with: sudo apt-get install -y chromium"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def seats(customer):
    """Acme's seat assigned to Ann (returned) and an issued one, Pat its primary contact,
    and a ticket: what the entitlement workflows walk through."""
    with acting_as("test:fixture"):
        product = builders.product(sku="SEAT-PRO-1Y", name="Pro seat, 1 year")
        assigned = builders.entitlement(
            customer=customer,
            product=product,
            code="7T3W-GQRW-TS2H",
            state=Entitlement.State.ASSIGNED,
            assignee_email="ann@acme.com",
        )
        builders.entitlement(customer=customer, product=product, code="9CGH-4E9Z-EVWQ")
        builders.contact(customer=customer, name="Pat", email="pat@acme.com", is_primary=True)
        builders.ticket(customer=customer, subject="Seats for the new team")
    return assigned
