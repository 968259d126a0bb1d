"""An ops lead reads the freshness of outside data in a real browser: opened from the
sidebar, the silent source said at the top and edged, a failed count followed to the list
of exactly those events; light, dark and a 390 px phone, none wider than the screen."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from audit.context import acting_as
from billing.models import InvoiceImport
from support.models import WebhookEvent
from tests.browser.session import sign_in
from tests.browser.test_layout import OVERFLOWING, PHONE, TOLERANCE
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots/e")
LONG_TOKEN = "acct_" + "9f8e7d6c" * 12  # an unbroken id in an error, as a source sends one


@pytest.fixture
def shot(page):
    def take(name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def deliveries(ops_lead):
    """The product sends every few minutes (one event failed 10 minutes ago, one waits for
    a retry); the CRM sent hourly until a day ago; no email yet; the billing export was
    imported every day until a refused file this morning."""
    now = timezone.now()
    made = []
    with acting_as("test:fixture"):
        for n, minutes in enumerate([5, 10, 15, 20, 25, 30, 35]):
            status = {10: "failed", 5: "pending"}.get(minutes, "processed")
            made.append(
                WebhookEvent.objects.create(
                    webhook_id=f"msg_p{n}",
                    source="product",
                    type="usage.daily",
                    status=status,
                    error=f"KeyError: 'plan' in tenant {LONG_TOKEN}" if status == "failed" else "",
                    next_attempt_at=now if status == "pending" else None,
                    received_at=now - dt.timedelta(minutes=minutes),
                )
            )
        for n, hours in enumerate([24, 25, 26, 27]):
            WebhookEvent.objects.create(
                webhook_id=f"msg_c{n}",
                source="crm",
                type="crm.account.upserted",
                status="processed",
                received_at=now - dt.timedelta(hours=hours),
            )
        for days in (4, 3, 2, 1):
            InvoiceImport.objects.create(
                received_at=now - dt.timedelta(days=days),
                file_name="invoices.csv",
                status="succeeded",
                created=12,
            )
        InvoiceImport.objects.create(
            received_at=now - dt.timedelta(hours=3),
            file_name="invoices-dec.csv",
            status="failed",
            error="The header lacks the column(s) due_at; expected invoice_id, tenant_id, "
            "number, status, currency, amount_due, amount_paid, period_start, period_end, "
            "issued_at, due_at (any order, extra columns ignored).",
        )
    return made


def test_an_ops_lead_sees_the_silent_source_and_follows_the_failures_to_their_list(
    live_server, page, shot, ops_lead, deliveries
):
    sign_in(page, live_server, ops_lead.username, PASSWORD)
    page.get_by_role("link", name="Data freshness").click()
    page.wait_for_load_state("networkidle")

    alert = page.get_by_test_id("freshness-alert")
    assert alert.inner_text() == ("Silent longer than usual: CRM. Never delivered: Inbound email.")
    cards = page.get_by_test_id("freshness-source")
    assert [cards.nth(n).get_attribute("data-state") for n in range(4)] == [
        "ok",
        "silent",
        "never",
        "ok",
    ]
    crm = page.locator("[data-source=crm]")
    assert crm.get_by_test_id("freshness-state").inner_text().lower() == "silent"
    # Hourly gaps are shorter than the CRM's floor (16 h): a day without an event is not.
    assert crm.get_by_test_id("freshness-warning").inner_text() == (
        "Nothing for 1 d, longer than its usual gap of 16 h."
    )
    product = page.locator("[data-source=product]")
    assert product.get_by_test_id("freshness-day").inner_text() == "7"
    assert product.get_by_test_id("freshness-failed").inner_text() == "1"
    shot("freshness")

    page.emulate_media(color_scheme="dark")
    page.reload()
    page.wait_for_load_state("networkidle")
    shot("freshness-dark")
    page.set_viewport_size({"width": PHONE, "height": 844})
    page.reload()
    page.wait_for_load_state("networkidle")
    shot("freshness-390-dark")
    page.emulate_media(color_scheme="light")
    page.reload()
    page.wait_for_load_state("networkidle")
    shot("freshness-390")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE + TOLERANCE, page.evaluate(OVERFLOWING, PHONE)
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.reload()
    page.wait_for_load_state("networkidle")

    page.locator("[data-source=product]").get_by_test_id("freshness-failed").get_by_role(
        "link"
    ).click()
    page.wait_for_load_state("networkidle")
    assert "source__exact=product" in page.url and "status__exact=failed" in page.url
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "msg_p1" in rows.first.inner_text()


def test_a_support_agent_has_no_freshness_panel(live_server, page, agent):
    sign_in(page, live_server, agent.username, PASSWORD)
    assert page.get_by_role("link", name="Data freshness").count() == 0
    response = page.goto(f"{live_server.url}/admin/freshness/")
    assert response.status == 403
