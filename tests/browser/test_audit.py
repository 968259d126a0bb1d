"""Someone auditing a customer reads its timeline, asks who held a seat on a date, and
filters the global audit log, in a real browser."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from audit.context import acting_as, acting_as_user
from customers.entitlements import entitlement_assign, entitlement_reassign, entitlement_revoke
from tests import builders
from tests.browser.session import SCREENSHOTS, sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def on(month: int, day: int) -> dt.datetime:
    return dt.datetime(2026, month, day, 10, tzinfo=dt.UTC)


@pytest.fixture
def acme(manager, ops_lead):
    """Signed on 1 Feb for 50 seats, 75 from 5 May; its seat Ann's from 1 Mar, Bob's from
    10 Mar, revoked on 20 Jun; a ticket opened on 2 Jun."""
    with time_machine.travel(on(2, 1), tick=False), acting_as("command:import_crm"):
        acme = builders.customer(external_id="acme-7f3a", name="Acme Corp", account_manager=manager)
    with time_machine.travel(on(2, 2), tick=False), acting_as("command:import_crm"):
        # Growth, active, in EUR: the contract builder's defaults.
        contract = builders.contract(
            customer=acme,
            seats=50,
            monthly_fee=Decimal("1450.00"),
            price_per_extra_seat=Decimal("25.00"),
            start_date=dt.date(2026, 2, 1),
        )
        product = builders.product(sku="SEAT-PRO-1Y", name="Pro seat", term_days=365)
    with time_machine.travel(on(2, 28), tick=False), acting_as("webhook:msg_order"):
        seat = builders.entitlement(
            customer=acme,
            product=product,
            code="SEAT-0001",
            valid_from=dt.date(2026, 2, 28),
            issued_at=on(2, 28),
        )
    with acting_as_user(ops_lead):
        with time_machine.travel(on(3, 1), tick=False):
            entitlement_assign(entitlement=seat, email="ann@acme.com", reason="new hire")
        with time_machine.travel(on(3, 10), tick=False):
            entitlement_reassign(entitlement=seat, email="bob@acme.com", reason="Ann moved team")
    with time_machine.travel(on(5, 5), tick=False), acting_as_user(manager, reason="upsell"):
        contract.seats = 75
        contract.save()
    with time_machine.travel(on(6, 2), tick=False), acting_as("webhook:msg_ticket"):
        builders.ticket(customer=acme, subject="SSO broken")
    with time_machine.travel(on(6, 20), tick=False), acting_as_user(ops_lead):
        entitlement_revoke(entitlement=seat, reason="left the company")
    return acme


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_an_auditor_reads_the_timeline_and_who_held_a_seat_on_a_date(
    live_server, page, agent, acme
):
    sign_in(page, live_server, agent.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/customers/customer/{acme.pk}/change/")

    page.get_by_role("link", name="Audit timeline").click()
    page.wait_for_load_state("networkidle")
    timeline = page.get_by_test_id("trace")
    assert [h.inner_text() for h in timeline.get_by_test_id("trace-headline").all()] == [
        "Entitlement SEAT-0001 revoked",
        "Ticket SSO broken opened",
        "Contract Acme Corp · Growth · 75 seats changed",
        "Entitlement SEAT-0001 reassigned",
        "Entitlement SEAT-0001 assigned",
        "Entitlement SEAT-0001 issued",
        "Contract Acme Corp · Growth · 50 seats created",
        "Created",
    ]
    revoked = timeline.get_by_test_id("trace-entry").first
    assert revoked.get_by_test_id("trace-actor").inner_text() == "Olga"
    assert revoked.get_by_test_id("trace-reason").inner_text() == "left the company"
    assert revoked.get_by_text("state: Assigned → Revoked").is_visible()
    assert timeline.get_by_text("seats: 50 → 75").is_visible()
    shoot(page, "audit-timeline")

    page.get_by_role("link", name="As of a date…").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Date", exact=True).fill("2026-03-05")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name="Acme Corp as of 5 Mar 2026", exact=True).is_visible()
    assert page.get_by_test_id("as-of-holder").all_inner_texts() == ["ann@acme.com"]
    contract = page.get_by_test_id("as-of-contract")
    assert contract.get_by_role("cell").nth(2).inner_text() == "50"
    shoot(page, "audit-as-of")

    page.get_by_label("Date", exact=True).fill("2026-05-05")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("as-of-holder").all_inner_texts() == ["bob@acme.com"]
    assert page.get_by_test_id("as-of-contract").get_by_role("cell").nth(2).inner_text() == "75"


def test_an_auditor_filters_the_audit_log_and_exports_it(live_server, page, agent, acme):
    sign_in(page, live_server, agent.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Audit log").click()
    page.wait_for_load_state("networkidle")

    page.get_by_label("Actor", exact=True).fill("olga")
    page.get_by_label("Customer", exact=True).fill("acme")
    page.get_by_label("From", exact=True).fill("2026-03-01")
    page.get_by_label("To", exact=True).fill("2026-03-31")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state("networkidle")
    rows = page.get_by_test_id("audit-row")
    assert rows.count() == 2
    assert rows.get_by_test_id("audit-reason").all_inner_texts() == ["Ann moved team", "new hire"]
    shoot(page, "audit-log")

    with page.expect_download() as download:
        page.get_by_test_id("audit-export").click()
    lines = download.value.path().read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert lines[1].startswith('"2026-03-10T')  # every cell quoted (kit.csv_export)
    assert ',"Olga",' in lines[1] and "Ann moved team" in lines[1]
