"""Answers in two page loads: from the home page (/admin/), each everyday question is
answered on the screen within two page loads, following only what a person would (the
home's links, or what they type into the home's search box), for the persona who asks it:

(a) support: does user Y of customer X have access, and if not why;
(b) support: what happened to order O;
(c) an ops lead: who changed contract C's seats, and when;
(d) an account manager: which of my customers need attention today;
(e) an ops lead: what is ops' backlog, and how old is it.

Page loads are the main frame's navigations after the home page (Playwright's
``framenavigated``; a redirect is one). Each answer page is shot 1440 px and 390 px wide
and dark, in /tmp/shots/g/ (``OPSDESK_SHOTS`` elsewhere)."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest

from audit.context import acting_as, acting_as_user
from customers.entitlements import entitlement_assign, entitlement_replace
from support.cases import case_dedupe_key, case_open
from support.models import Case
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.support.sender import deliver, order_completed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("OPSDESK_SHOTS", "/tmp/shots/g"))
MOST = 2


class PageLoads:
    """The main frame's navigations from now on: each URL a page load ended on."""

    def __init__(self, page):
        self.urls: list[str] = []
        page.on("framenavigated", lambda frame: self._seen(page, frame))

    def _seen(self, page, frame) -> None:
        if frame == page.main_frame:
            self.urls.append(frame.url)

    def __len__(self) -> int:
        return len(self.urls)


def from_home(page, live_server, user) -> PageLoads:
    """Signed in as ``user``, on the home page; counting the page loads from there."""
    sign_in(page, live_server, user.username, PASSWORD)
    assert page.url == f"{live_server.url}/admin/"
    assert page.get_by_test_id("home").is_visible()
    return PageLoads(page)


def search_from_home(page, text: str) -> None:
    """Type ``text`` into the search box the home page shows, and press Enter."""
    box = page.get_by_test_id("home-search").locator("input[name=q]")
    box.fill(text)
    with page.expect_navigation():
        box.press("Enter")


def shots(page, name: str, element=None) -> None:
    """The page (or ``element``) as it is: 1440 px, 390 px wide, and dark."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = element or page
    full = {} if element else {"full_page": True}
    target.screenshot(path=str(SHOTS / f"{name}-1440.png"), **full)
    page.set_viewport_size({"width": 390, "height": 844})
    target.screenshot(path=str(SHOTS / f"{name}-390.png"), **full)
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.emulate_media(color_scheme="dark")  # the admin's theme follows the system's
    target.screenshot(path=str(SHOTS / f"{name}-dark.png"), **full)
    page.emulate_media(color_scheme="light")


@pytest.fixture
def kims_seat(customer, ops_lead):
    """Kim's Pro seat at Acme: assigned, then revoked and reissued (the new code assigned
    to Kim), and the redemption of the old code by Kim still an open case."""
    with acting_as("test:fixture"):
        product = builders.product(sku="SEAT-PRO-1Y", name="Pro seat", term_days=365)
        seat = builders.entitlement(customer=customer, product=product, code="K7QP-4XMD-9RTW")
    with acting_as_user(ops_lead):
        entitlement_assign(entitlement=seat, email="kim@acme.com", reason="new hire", by=ops_lead)
        new = entitlement_replace(
            entitlement=seat, reason="Code posted in a public channel", by=ops_lead
        )
    with acting_as("webhook:msg_redeem"):
        case = case_open(
            kind=Case.Kind.PROBLEM_REDEMPTION,
            customer=customer,
            subject=seat,
            summary="Code K7QP-4XMD-9RTW redeemed by kim@acme.com: it was revoked",
            dedupe_key=case_dedupe_key(Case.Kind.PROBLEM_REDEMPTION, "entitlement", seat.code),
        )
    return seat, new, case


def test_a_support_agent_finds_whether_a_user_has_access_and_why_not(
    live_server, page, agent, kims_seat
):
    seat, new, case = kims_seat
    loads = from_home(page, live_server, agent)

    search_from_home(page, "kim@acme.com")
    group = page.locator('[data-testid="search-group"][data-kind="entitlements"]')
    with page.expect_navigation():
        group.get_by_role("link", name=seat.code).click()

    assert len(loads) <= MOST, loads.urls
    answer = page.get_by_test_id("answer")
    assert answer.get_by_test_id("answer-headline").inner_text() == "No access"
    why = answer.get_by_test_id("answer-why")
    assert why.is_visible()
    assert re.fullmatch(
        r"Revoked on \d{1,2} \w{3} \d{4} \d\d:\d\d UTC by Olga, because: "
        r"Code posted in a public channel",
        why.inner_text(),
    )
    replacement = answer.get_by_test_id("answer-replacement").get_by_role("link", name=new.code)
    assert replacement.is_visible()
    case_link = answer.get_by_role("link", name=f"Case #{case.pk}")
    assert case_link.is_visible()
    assert (
        answer.get_by_test_id("answer-contract")
        .get_by_role("link", name="Growth, 50 seats, 1 Jan 2026 to 31 Dec 2026, active")
        .is_visible()
    )
    shots(page, "a-entitlement")

    # Both links lead where they say.
    with page.expect_navigation():
        replacement.click()
    assert page.get_by_test_id("answer-headline").inner_text() == "No access yet"
    page.go_back()
    with page.expect_navigation():
        page.get_by_test_id("answer").get_by_role("link", name=f"Case #{case.pk}").click()
    assert page.url.endswith(f"/admin/support/case/{case.pk}/change/")


def test_a_support_agent_finds_what_happened_to_an_order(live_server, page, agent, customer):
    deliver(order_completed(sku="SEAT-GONE-1Y", order_id="ord_4471"), webhook_id="msg_4471")
    case = Case.objects.get()
    loads = from_home(page, live_server, agent)

    search_from_home(page, "ord_4471")  # a whole order id opens its order

    assert len(loads) <= MOST, loads.urls
    answer = page.get_by_test_id("answer")
    assert answer.get_by_test_id("answer-headline").inner_text() == "Not fulfilled"
    assert (
        answer.get_by_test_id("answer-failure").inner_text() == "no product with SKU SEAT-GONE-1Y"
    )
    assert (
        answer.get_by_test_id("answer-why")
        .inner_text()
        .startswith(
            "The product's order event could not be fulfilled: no product with SKU SEAT-GONE-1Y. "
            "Nothing was issued; recorded on "
        )
    )
    assert answer.get_by_role("link", name=f"Case #{case.pk}").is_visible()
    assert answer.get_by_role("link", name="Acme Corp").is_visible()
    shots(page, "b-order")


def test_an_ops_lead_finds_who_changed_a_contracts_seats(
    live_server, page, ops_lead, manager, customer
):
    contract = customer.contracts.get()
    with acting_as_user(manager):
        contract.seats = 60
        contract._change_reason = "Hired a support team"
        contract.save()
    loads = from_home(page, live_server, ops_lead)

    search_from_home(page, "Acme")
    group = page.locator('[data-testid="search-group"][data-kind="customers"]')
    with page.expect_navigation():
        group.get_by_role("link", name="Acme Corp").click()

    assert len(loads) <= MOST, loads.urls
    today = dt.datetime.now(dt.UTC)
    last = page.get_by_test_id("last-seat-change")
    assert last.inner_text() == f"50 → 60 by Alice, {today.day} {today:%b %Y}"
    assert last.is_visible()
    shots(page, "c-customer-contracts", page.get_by_test_id("overview-contracts"))

    # Every change, with its reason, is one click further, on the contract's page.
    with page.expect_navigation():
        last.click()
    changes = page.get_by_test_id("seat-change")
    assert changes.count() == 2
    latest = " ".join(changes.first.inner_text().split())
    assert latest.startswith("50 → 60 seats by Alice on ")
    assert latest.endswith(" Hired a support team")
    shots(page, "c-contract")


def test_an_account_manager_sees_which_customers_need_attention_today(
    live_server, page, manager, customer
):
    loads = from_home(page, live_server, manager)

    attention = page.get_by_test_id("widget-attention")
    acme = attention.get_by_role("row").filter(has=page.get_by_role("link", name="Acme Corp"))
    assert acme.is_visible()
    assert "NO USAGE DATA" in acme.inner_text().upper()
    assert len(loads) == 0  # the home page itself answers
    shots(page, "d-home-manager")

    with page.expect_navigation():
        acme.get_by_role("link", name="Acme Corp").click()
    assert len(loads) <= MOST, loads.urls
    assert page.get_by_test_id("customer-overview").is_visible()


def test_an_ops_lead_sees_the_backlog_and_its_age(live_server, page, ops_lead, customer):
    with acting_as("test:fixture"):
        for summary, days in (("Order 1 not fulfilled", 0), ("Order 2 not fulfilled", 9)):
            builders.case(
                customer=customer,
                summary=summary,
                opened_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days, hours=1),
            )
    loads = from_home(page, live_server, ops_lead)

    exceptions = page.get_by_test_id("widget-exceptions")
    assert exceptions.get_by_text("Failed fulfilment").first.is_visible()
    assert page.get_by_test_id("tally-all-all").first.get_attribute("data-count") == "2"
    assert len(loads) == 0  # the home page itself answers
    shots(page, "e-home-ops", exceptions)

    # The oldest ones, one click away.
    with page.expect_navigation():
        page.get_by_test_id("tally-failed_fulfilment-3").click()
    assert len(loads) <= MOST, loads.urls
    assert page.get_by_text("Order 2 not fulfilled").is_visible()
    assert page.get_by_text("Order 1 not fulfilled").count() == 0
