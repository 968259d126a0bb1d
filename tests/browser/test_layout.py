"""Every page of the sidebar fits a phone's width (tables scroll inside their card, long
ids wrap), and the exceptions inbox shows every column whole on a laptop's screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from audit.context import acting_as
from customers.models import Customer, Order
from opsdesk.shell.admin_site import SIDEBAR
from support.models import Case, Ticket
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.records import populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots/f")
PHONE = 390
TOLERANCE = 2  # sub-pixel rounding
LONG_ID = "ord_" + "f961a502" * 12  # one unbroken token, as an external id can be

# Which elements reach past the screen, not inside a box that scrolls or clips them: the
# innermost ones, with their classes (what to fix when the page is too wide).
OVERFLOWING = """(width) => {
  const clipped = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(p).overflowX)) {
        return true; } }
    return false; };
  const wide = el => el.getBoundingClientRect().right > width + 2;
  return [...document.querySelectorAll('body *')]
    .filter(el => wide(el) && !clipped(el) && ![...el.children].some(wide))
    .slice(0, 5)
    .map(el => `${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`);
}"""


def sidebar_pages() -> list[tuple[str, str]]:
    return [
        (
            title,
            reverse(
                view[0]
                if view and ":" in view[0]
                else f"admin:{app}_{model}_{view[0] if view else 'changelist'}"
            ),
        )
        for _section, entries in SIDEBAR
        for title, _icon, app, model, *view in entries
    ]


@pytest.fixture
def seeded(superuser, customer):
    populate(3)
    with acting_as("test:fixture"):
        builders.order(customer=customer, external_id=LONG_ID)
        builders.ticket(customer=customer, subject=f"Where is {LONG_ID}?")
        builders.case(
            customer=customer,
            kind=Case.Kind.FAILED_FULFILMENT,
            summary=f"Order {LONG_ID} could not be fulfilled",
        )
    return superuser


def test_every_sidebar_page_fits_a_phone(browser, live_server, seeded):
    context = browser.new_context(viewport={"width": PHONE, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, live_server, seeded.username, PASSWORD)
    customer = Customer.objects.get(external_id="acme-7f3a")
    records = [
        ("Customer page", reverse("admin:customers_customer_change", args=[customer.pk])),
        ("Ticket page", reverse("admin:support_ticket_change", args=[Ticket.objects.first().pk])),
        (
            "Order page",
            reverse(
                "admin:customers_order_change", args=[Order.objects.get(external_id=LONG_ID).pk]
            ),
        ),
        ("Customer timeline", reverse("admin:customers_customer_audit", args=[customer.pk])),
    ]
    too_wide = {}
    for title, url in [*sidebar_pages(), *records]:
        page.goto(live_server.url + url)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE + TOLERANCE:
            too_wide[title] = (width, page.evaluate(OVERFLOWING, PHONE))
        page.screenshot(path=str(SHOTS / f"phone-{title.replace(' ', '-')}.png"), full_page=True)
    context.close()
    assert too_wide == {}


def test_the_inbox_shows_every_column_whole_at_1440(page, live_server, seeded):
    sign_in(page, live_server, seeded.username, PASSWORD)
    page.goto(live_server.url + reverse("admin:support_case_inbox"))
    cut = page.evaluate(
        """() => [...document.querySelectorAll('table')].flatMap(table => {
            const box = table.parentElement.getBoundingClientRect();
            return [...table.querySelectorAll('th, td')]
              .filter(cell =>
                cell.getBoundingClientRect().right > Math.min(box.right, innerWidth) + 1
                || cell.scrollWidth > cell.clientWidth + 1)
              .map(cell => cell.textContent.trim().slice(0, 40));
        })"""
    )
    page.screenshot(path=str(SHOTS / "inbox-1440.png"), full_page=True)
    assert cut == []


DARK_PAGES = ["support_case_inbox", "support_ticket_queue", "customers_customer_audit_log"]


def test_filter_forms_follow_the_dark_theme(browser, live_server, seeded):
    # unfold's theme is "auto" until chosen: the browser's preference puts "dark" on <html>.
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, color_scheme="dark")
    page = context.new_page()
    sign_in(page, live_server, seeded.username, PASSWORD)
    backgrounds = {}
    for name in DARK_PAGES:
        page.goto(live_server.url + reverse(f"admin:{name}"))
        assert "dark" in page.evaluate("document.documentElement.className")
        backgrounds[name] = page.evaluate(
            """() => [...new Set([...document.querySelectorAll(
                '.od-filters select, .od-filters input:not([type=hidden]),'
                + '.od-bulk select, .od-card'
              )].map(el => getComputedStyle(el).backgroundColor))]"""
        )
        page.screenshot(path=str(SHOTS / f"dark-{name}.png"))
    context.close()
    white = "rgb(255, 255, 255)"
    whites = {name: white in colours for name, colours in backgrounds.items()}
    assert whites == dict.fromkeys(DARK_PAGES, False)
    assert all(backgrounds.values())
