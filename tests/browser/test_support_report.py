"""A support agent reads the support report in a real browser: the figures of the last
weeks, the chart drawn (Chart.js as shipped with the admin theme, nothing downloaded), a
figure followed to its tickets and on to a ticket; light, dark and a 390 px phone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from audit.context import acting_as
from customers.models import Contract
from support import tickets
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.records import active_contract

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots/r")


@pytest.fixture
def shot(page):
    def take(name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def worked(agent, sla_policies):
    """Tickets of the last three weeks, answered by Sam at chosen times (the history of
    each written at the time it happened): the week before last, two answered in 30 min
    and 3 h; last week, one in 1 h, solved the next day; this week, one still waiting."""
    monday = timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday())
    zone = timezone.get_current_timezone()

    def at(days: int, hour: int, minute: int = 0) -> dt.datetime:
        day = monday + dt.timedelta(days=days)
        return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)

    with time_machine.travel(at(-15, 8), tick=False), acting_as("test:fixture"):
        customer = builders.customer(name="Globex", external_id="globex-1")
        active_contract(customer, plan=Contract.Plan.GROWTH)
    made = []
    for opened, answered, solved in [
        (at(-14, 9), at(-14, 9, 30), None),
        (at(-13, 10), at(-13, 13), None),
        (at(-7, 10), at(-7, 11), at(-6, 10)),
        (timezone.now() - dt.timedelta(minutes=5), None, None),
    ]:
        with time_machine.travel(opened, tick=False):
            ticket = tickets.ticket_create(
                by=agent,
                subject=f"Export stuck {len(made) + 1}",
                requester_email="pat@globex.test",
                customer=customer,
            )
            tickets.ticket_assign(ticket=ticket, assignee=agent, by=agent)
        if answered:
            with time_machine.travel(answered, tick=False):
                tickets.ticket_comment(ticket=ticket, author=agent, kind="reply", body="On it.")
        if solved:
            with time_machine.travel(solved, tick=False):
                tickets.ticket_set_status(ticket=ticket, status="solved", by=agent)
        made.append(ticket)
    return made


def test_an_agent_reads_the_report_and_follows_a_figure_to_its_tickets(
    live_server, page, shot, agent, worked
):
    sign_in(page, live_server, agent.username, PASSWORD)
    page.get_by_role("link", name="Support report").click()
    page.wait_for_load_state("networkidle")

    assert page.get_by_role("heading", name="Support report", exact=True).is_visible()
    # The chart is drawn by the theme's Chart.js, from the page's own data.
    canvas = page.locator("[data-testid=report-chart] canvas.chart")
    assert canvas.is_visible()
    assert page.evaluate(
        "() => { const c = Chart.getChart(document.querySelector('canvas.chart'));"
        " return c ? c.data.datasets.map(d => d.label) : null; }"
    ) == [
        "Median first response (h)",
        "First response within target (%)",
        "Resolution within target (%)",
    ]
    assert canvas.bounding_box()["height"] > 200
    kpi = page.get_by_test_id("kpi-first_response")
    assert kpi.locator("strong").inner_text() == "1 h"  # of 30 min, 1 h, 3 h
    shot("report")

    page.emulate_media(color_scheme="dark")  # the admin's theme follows the system's
    page.reload()
    page.wait_for_load_state("networkidle")
    shot("report-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-testid=report-chart] canvas.chart").is_visible()
    shot("report-390")
    page.set_viewport_size({"width": 1440, "height": 1000})

    # The week before last: two first responses, 30 min and 3 h, median 1 h 45 min.
    weeks = page.get_by_test_id("report-week")
    row = weeks.get_by_test_id("report-row").nth(9)
    median = row.get_by_test_id("first_response-median")
    assert median.inner_text() == "1 h 45 min"
    median.get_by_role("link").click()
    page.wait_for_load_state("networkidle")

    assert page.get_by_test_id("drill-median").inner_text() == "1 h 45 min"
    lines = page.get_by_test_id("drill-row")
    assert lines.count() == 2
    assert [t.inner_text() for t in page.get_by_test_id("drill-time").all()] == [
        "30 min",
        "3 h",
    ]
    shot("report-drill")
    page.get_by_role("link", name="Export stuck 1").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/admin/support/ticket/{worked[0].pk}/change/")
