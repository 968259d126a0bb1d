"""An account manager snoozes a customer's signal from the customer page in a real
browser: the page's Snooze leads to the confirmation page, whose form does it; opening
that page (a GET) changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.context import acting_as
from opsdesk.health.models import HealthSignal, HealthSweep
from opsdesk.health.signals import signal_acknowledge
from tests.browser.session import SCREENSHOTS, sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def signal(customer, kind: str, label: str, reason: str, *, days_ago: int, **fields):
    today = timezone.now().date()
    with acting_as("task:send_digests", reason="flag appeared"):
        return HealthSignal.objects.create(
            customer=customer,
            kind=kind,
            label=label,
            opened_on=today - dt.timedelta(days=days_ago),
            opened_reason=reason,
            reason=reason,
            **fields,
        )


@pytest.fixture
def signals(customer, manager):
    """Acme's signals: dormant for 16 days, urgent tickets new today, a billing finding
    Alice handles, an overdue invoice resolved last week; today's sweep has run."""
    today = timezone.now().date()
    dormant = signal(customer, "dormant", "Dormant", "no login for 16 days", days_ago=2)
    signal(customer, "urgent_tickets", "Urgent tickets", "1 open urgent ticket", days_ago=0)
    finding = signal(
        customer,
        "billing_finding",
        "Billing finding",
        "1 open billing finding, oldest 9 days ago (amount mismatch)",
        days_ago=9,
    )
    signal_acknowledge(signal=finding, by=manager, note="credit note on its way")
    signal(
        customer,
        "overdue_invoice",
        "Overdue invoice",
        "1 overdue invoice",
        days_ago=30,
        state=HealthSignal.State.RESOLVED,
        resolved_on=today - dt.timedelta(days=6),
        resolved_reason="no longer raised by its rule",
    )
    with acting_as("test:fixture"):
        HealthSweep.objects.create(
            date=today, status=HealthSweep.Status.FINISHED, claimed_at=timezone.now()
        )
    return {"dormant": dormant}


def shot(locator, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_a_manager_snoozes_a_signal_from_the_customer_page(
    live_server, page, screenshot, manager, customer, signals
):
    dormant = signals["dormant"]
    customer_page = f"{live_server.url}/admin/customers/customer/{customer.pk}/change/"
    sign_in(page, live_server, manager.username, PASSWORD)
    # The home lists the signals, new first, each customer linked to its #signals.
    attention = page.get_by_test_id("widget-attention")
    assert attention.get_by_text("new today").is_visible()
    assert attention.get_by_text("being handled by Alice").is_visible()
    assert attention.get_by_test_id("attention-live").count() == 0
    screenshot("signals-home-manager")
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the narrow home scrolls sideways ({width} px)"
    screenshot("signals-home-manager-390")
    page.set_viewport_size({"width": 1440, "height": 1000})

    page.goto(customer_page + "#signals")
    section = page.get_by_test_id("overview-signals")
    assert section.is_visible()
    blocks = section.get_by_test_id("signal")
    assert blocks.count() == 3
    resolved = section.get_by_test_id("signals-resolved")
    assert not resolved.get_by_text("no longer raised by its rule").is_visible()  # collapsed
    resolved.locator("summary").click()
    assert resolved.get_by_text("no longer raised by its rule").is_visible()
    shot(section, "signals-section-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the narrow customer page scrolls sideways ({width} px)"
    shot(section, "signals-section-390")
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.emulate_media(color_scheme="dark")
    page.reload()
    shot(page.get_by_test_id("overview-signals"), "signals-section-dark")
    page.emulate_media(color_scheme="light")
    page.reload()

    block = page.locator(f'[data-testid="signal"][data-signal="{dormant.pk}"]')
    assert block.get_attribute("data-state") == "open"
    block.get_by_role("link", name="Snooze").click()
    page.wait_for_url(f"**/admin/opsdesk/healthsignal/{dormant.pk}/snooze/?next=*")
    assert page.get_by_test_id("signal-confirm").is_visible()
    screenshot("signals-snooze-confirm")

    until = timezone.now().date() + dt.timedelta(days=7)
    page.get_by_label("Hide from the digest until").fill(until.isoformat())
    page.get_by_label("Why").fill("Customer on holiday until next week")
    with page.expect_navigation():
        page.get_by_role("button", name="Snooze").click()
    # Back where the Snooze link was, told what was done.
    assert page.url == customer_page + "#signals"
    day = f"{until.day} {until:%b %Y}"
    assert page.get_by_text(f"Dormant of Acme Corp: snoozed until {day}.").is_visible()

    block = page.locator(f'[data-testid="signal"][data-signal="{dormant.pk}"]')
    assert block.get_attribute("data-state") == "snoozed"
    state = block.get_by_test_id("signal-state").inner_text()
    assert state.lower() == f"snoozed until {day}".lower()  # shown in capitals
    assert (
        f"snoozed until {day} by Alice: Customer on holiday until next week"
        in block.get_by_test_id("signal-status").inner_text()
    )
    assert "signal snoozed: Customer on holiday until next week" in (
        block.get_by_test_id("signal-history").inner_text()
    )
    dormant.refresh_from_db()
    assert (dormant.state, dormant.snoozed_until, dormant.snoozed_by) == ("snoozed", until, manager)


def test_opening_the_snooze_page_changes_nothing(
    live_server, page, screenshot, manager, customer, signals
):
    dormant = signals["dormant"]
    history = dormant.history.count()
    with acting_as("test:fixture"):
        HealthSweep.objects.get().delete()  # today's not run yet: the home says so
    sign_in(page, live_server, manager.username, PASSWORD)
    assert page.get_by_test_id("attention-live").is_visible()
    screenshot("signals-home-manager-live")
    page.goto(f"{live_server.url}/admin/opsdesk/healthsignal/{dormant.pk}/snooze/")
    assert page.get_by_test_id("signal-form").is_visible()
    page.goto(f"{live_server.url}/admin/customers/customer/{customer.pk}/change/#signals")
    block = page.locator(f'[data-testid="signal"][data-signal="{dormant.pk}"]')
    assert block.get_attribute("data-state") == "open"
    dormant.refresh_from_db()
    assert (dormant.state, dormant.snoozed_until, dormant.history.count()) == (
        "open",
        None,
        history,
    )
