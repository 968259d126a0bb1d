"""An ops lead reads the operations scorecard in a real browser: opened from the sidebar,
the chart drawn (Chart.js as shipped with the admin theme), a figure followed to its rows
and on to its record; light, dark and a 390 px phone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from audit.context import acting_as, acting_as_user
from billing.models import ReconciliationRun
from onboarding.models import Checklist
from support.models import Case
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots/c")


@pytest.fixture
def shot(page):
    def take(name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    return take


@pytest.fixture(autouse=True)
def granted(ops_lead):
    """The groups as kit.roles grants them today (the scorecard's permission included,
    before the roles-sync migration that writes it)."""
    from kit import roles

    roles.roles_sync()


@pytest.fixture
def worked(ops_lead):
    """Last week: two customers onboarded (3 and 9 days), a billing finding resolved by a
    run, another acknowledged by Olga then resolved by a run, their month reconciled by a
    run on Saturday (its invoices due by then), a failed fulfilment Olga resolved."""
    monday = timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday())
    zone = timezone.get_current_timezone()

    def at(days: int, hour: int) -> dt.datetime:
        return dt.datetime.combine(monday + dt.timedelta(days=days), dt.time(hour), tzinfo=zone)

    made = {}
    with time_machine.travel(at(-20, 8), tick=False), acting_as("test:fixture"):
        acme = builders.customer(name="Acme")
        globex = builders.customer(name="Globex")
    for customer, activated, done in [
        (acme, at(-10, 9), at(-7, 9)),
        (globex, at(-14, 9), at(-5, 9)),
    ]:
        with time_machine.travel(activated, tick=False), acting_as("task:onboarding_generate"):
            checklist = Checklist.objects.create(
                contract=builders.contract(customer=customer), customer=customer,
                activated_at=activated,
            )  # fmt: skip
        with time_machine.travel(done, tick=False), acting_as("task:onboarding_sync"):
            checklist.completed_at = done
            checklist.save()
        made[customer.name] = checklist
    month = (monday - dt.timedelta(days=40)).replace(day=1)
    for customer, human in [(acme, False), (globex, True)]:
        with time_machine.travel(at(-7, 6), tick=False), acting_as("task:reconcile_month"):
            case = builders.case(
                kind=Case.Kind.MISSING_INVOICE, customer=customer, period=month,
                summary=f"{customer.name}: no invoice", opened_at=at(-7, 6),
            )  # fmt: skip
        if human:
            with time_machine.travel(at(-6, 10), tick=False), acting_as_user(ops_lead):
                case.state, case.acknowledged_at = Case.State.ACKNOWLEDGED, at(-6, 10)
                case.save()
        with time_machine.travel(at(-4, 6), tick=False), acting_as("task:reconcile_month"):
            case.state, case.closed_at, case.closing_note = Case.State.RESOLVED, at(-4, 6), "fixed"
            case.save()
    with time_machine.travel(at(-2, 6), tick=False), acting_as("task:reconcile_month"):
        run = ReconciliationRun.objects.create(month=month, started_at=at(-2, 6))
        run.status, run.finished_at = ReconciliationRun.Status.SUCCEEDED, at(-2, 6)
        run.save()
    with time_machine.travel(at(-5, 11), tick=False), acting_as_user(ops_lead):
        builders.case(summary="Order ord_1 not fulfilled", customer=acme, opened_at=at(-5, 11))
    return made


def test_an_ops_lead_reads_the_scorecard_and_follows_a_figure_to_its_records(
    live_server, page, shot, ops_lead, worked
):
    sign_in(page, live_server, ops_lead.username, PASSWORD)
    page.get_by_role("link", name="Operations scorecard").click()
    page.wait_for_load_state("networkidle")

    assert (
        page.get_by_test_id("scorecard")
        .get_by_role("heading", name="Operations scorecard")
        .is_visible()
    )
    canvas = page.locator("[data-testid=scorecard-chart] canvas.chart")
    assert canvas.is_visible() and canvas.bounding_box()["height"] > 200
    assert page.evaluate(
        "() => { const c = Chart.getChart(document.querySelector('canvas.chart'));"
        " return c ? c.data.datasets.map(d => d.label) : null; }"
    ) == [
        "Median time to onboard (days)",
        "First response within target (%)",
        "Billing months without a touch (%)",
    ]
    # Twelve weeks, last week the 11th column of figures.
    rows = page.get_by_test_id("scorecard-row")
    onboarded = rows.filter(has_text="Customers onboarded")
    assert onboarded.locator("td").count() == 12
    assert onboarded.locator("td").nth(10).inner_text() == "2"
    median = rows.filter(has_text="Time to onboard, median").locator("td").nth(10)
    assert median.inner_text() == "6 d"
    share = rows.filter(has_text="Settled without a human touch").locator("td").nth(10)
    assert share.inner_text() == "50%"
    shot("scorecard")

    page.emulate_media(color_scheme="dark")
    page.reload()
    page.wait_for_load_state("networkidle")
    shot("scorecard-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-testid=scorecard-chart] canvas.chart").is_visible()
    # The table opens at its latest week, its right end, not at the oldest.
    table = page.get_by_test_id("scorecard-table")
    assert table.evaluate("box => box.scrollWidth > box.clientWidth")
    assert table.evaluate("box => box.scrollLeft + box.clientWidth >= box.scrollWidth - 1")
    shot("scorecard-390")
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.reload()
    page.wait_for_load_state("networkidle")

    share = page.get_by_test_id("scorecard-row").filter(has_text="Settled without a human touch")
    share.locator("td").nth(10).get_by_role("link").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("rows-total").inner_text() == "2"
    assert page.get_by_test_id("rows-row").count() == 2
    assert "touched by Olga" in page.get_by_test_id("rows-table").inner_text()
    shot("scorecard-rows")
    page.get_by_test_id("rows-back").click()
    page.wait_for_load_state("networkidle")
    onboarded = page.get_by_test_id("scorecard-row").filter(has_text="Customers onboarded")
    onboarded.locator("td").nth(10).get_by_role("link").click()
    page.wait_for_load_state("networkidle")
    page.get_by_role("link", name="Onboarding of Acme").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/admin/onboarding/checklist/{worked['Acme'].pk}/change/")


def test_a_support_agent_has_no_scorecard(live_server, page, agent):
    sign_in(page, live_server, agent.username, PASSWORD)
    assert page.get_by_role("link", name="Operations scorecard").count() == 0
    response = page.goto(f"{live_server.url}/admin/scorecard/")
    assert response.status == 403
