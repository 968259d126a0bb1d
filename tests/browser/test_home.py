"""Each person's home at /admin/ in a real browser: the widgets of their role, wide,
narrow (a phone) and dark."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.context import acting_as
from billing.models import ReconciliationRun
from support.models import Case, Ticket, WebhookEvent
from tests.browser.session import sign_in
from tests.opsdesk.casework.cases import make_case
from tests.personas import PASSWORD
from tests.support.queue_pages import make_ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def work(agent, manager, ops_lead, customer):
    """A bit of everything: Sam's tickets, one about to breach, one breached, one waiting;
    Acme's cases of several ages; a failed webhook event; May reconciled."""
    make_ticket("Login broken", assignee=agent, customer=customer)
    make_ticket("Export slow", due_in_hours=1, customer=customer)
    make_ticket("SSO down", due_in_hours=-2, priority="urgent", customer=customer)
    make_ticket("Waiting on logs", assignee=agent, status=Ticket.Status.PENDING)
    make_case("Order 1 not fulfilled", customer=customer, days_old=0.2)
    make_case("Order 2 not fulfilled", customer=customer, days_old=9, owner=ops_lead)
    make_case(
        "Acme: no invoice",
        customer=customer,
        days_old=2,
        kind=Case.Kind.MISSING_INVOICE,
        period=dt.date(2026, 5, 1),
    )
    with acting_as("test:fixture"):
        WebhookEvent.objects.create(webhook_id="wh-broken", status="failed", error="bad")
        ReconciliationRun.objects.create(month=dt.date(2026, 5, 1), status="succeeded")


def shots(page, screenshot, name: str) -> None:
    screenshot(f"home-{name}")
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the narrow home scrolls sideways ({width} px)"
    screenshot(f"home-{name}-390")
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.emulate_media(color_scheme="dark")  # the admin's theme follows the system's
    page.reload()
    screenshot(f"home-{name}-dark")
    page.emulate_media(color_scheme="light")
    page.reload()


def count(page, key: str) -> int:
    return int(page.get_by_test_id(f"tally-{key}").first.get_attribute("data-count"))


def test_support_starts_the_day_on_the_queue_counts(live_server, page, screenshot, agent, work):
    sign_in(page, live_server, agent.username, PASSWORD)
    assert page.get_by_test_id("home-support").is_visible()
    assert page.get_by_test_id("home-ops").count() == 0
    assert (count(page, "mine"), count(page, "at_risk"), count(page, "breached")) == (2, 1, 1)
    assert page.get_by_placeholder("Search customers, tickets, cases, orders…").is_visible()
    shots(page, screenshot, "support")
    page.get_by_test_id("card-breached").get_by_role("link").click()
    assert page.url.endswith("/admin/support/ticket/queue/?overdue=true")
    assert page.get_by_text("SSO down").is_visible()


def test_an_account_manager_sees_their_customers(live_server, page, screenshot, manager, work):
    sign_in(page, live_server, manager.username, PASSWORD)
    assert page.get_by_test_id("home-accounts").is_visible()
    assert page.get_by_test_id("home-support").count() == 0
    attention = page.get_by_test_id("widget-attention")
    assert attention.get_by_role("link", name="Acme Corp").is_visible()
    assert count(page, "cases") == 3
    shots(page, screenshot, "manager")


def test_an_ops_lead_sees_exceptions_by_age(live_server, page, screenshot, ops_lead, work):
    sign_in(page, live_server, ops_lead.username, PASSWORD)
    exceptions = page.get_by_test_id("widget-exceptions")
    assert exceptions.get_by_text("Failed fulfilment").is_visible()
    assert count(page, "all-all") == 3
    assert count(page, "webhooks") == 1
    shots(page, screenshot, "ops")
    exceptions.get_by_role("link", name="#").first.is_visible()
    page.get_by_test_id("tally-failed_fulfilment-3").click()
    assert page.get_by_text("Order 2 not fulfilled").is_visible()
    assert page.get_by_text("Order 1 not fulfilled").count() == 0


def test_a_superuser_sees_every_section(live_server, page, screenshot, superuser, work):
    sign_in(page, live_server, superuser.username, PASSWORD)
    for section in ("home-support", "home-accounts", "home-ops"):
        assert page.get_by_test_id(section).is_visible()
    screenshot("home-superuser")
