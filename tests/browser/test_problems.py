"""Support works a problem in a real browser: one error at three customers (real product
events), a customer's own ticket about it linked by hand, one update to the requesters
through its preview, then the problem solved with its tickets."""

import datetime as dt
from decimal import Decimal

import pytest

from audit.context import acting_as
from customers.models import Contract
from support.models import Problem, Ticket, TicketComment
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.support.sender import SECRET, deliver, support_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


def error_spike(tenant_id: str) -> dict:
    return {
        "type": "incident.error_spike",
        "timestamp": "2026-11-21T09:30:00Z",
        "data": {
            "tenant_id": tenant_id,
            "fingerprint": "export-timeout-7c1e",
            "error_rate": 0.18,
            "window_minutes": 15,
            "sample_message": "TimeoutError: export worker did not answer in 30 s",
        },
    }


@pytest.fixture
def outage(customer):
    """The export error at Acme (growth, 500 EUR a month, open-ended), Globex (enterprise,
    2,400 EUR, renewing soon) and Initech (starter, 150 EUR); Jo of Acme wrote in about it."""
    with acting_as("test:fixture"):
        globex = builders.customer(external_id="globex-1", name="Globex")
        builders.contract(
            customer=globex,
            plan=Contract.Plan.ENTERPRISE,
            monthly_fee=Decimal("2400.00"),
            end_date=dt.date.today() + dt.timedelta(days=20),
        )
        initech = builders.customer(external_id="initech-9", name="Initech")
        builders.contract(
            customer=initech, plan=Contract.Plan.STARTER, monthly_fee=Decimal("150.00")
        )
    for n, tenant in enumerate(["acme-7f3a", "globex-1", "initech-9"]):
        deliver(error_spike(tenant), webhook_id=f"msg_spike_{n}")
    deliver(support_request(subject="Exports time out"), webhook_id="msg_jo")
    return Problem.objects.get(), Ticket.objects.get(requester_email="jo@acme.com")


def test_support_sends_an_update_to_a_problems_requesters_and_solves_it(
    live_server, page, screenshot, agent, outage, monkeypatch
):
    monkeypatch.setattr("kit.publish._publish", lambda name, args: None)
    problem, jo = outage
    sign_in(page, live_server, agent.username, PASSWORD)
    with page.expect_navigation():
        page.get_by_role("link", name="Problems").first.click()  # the sidebar
    with page.expect_navigation():
        page.get_by_role("link", name=problem.title).click()

    panel = page.get_by_test_id("problem-panel")
    assert panel.get_by_test_id("problem-fingerprint").inner_text() == "export-timeout-7c1e"
    customers = page.get_by_test_id("problem-customer")
    assert [customers.nth(i).locator("a").inner_text() for i in range(3)] == [
        "Globex",
        "Acme Corp",
        "Initech",
    ]
    assert customers.nth(0).get_by_text("Enterprise").is_visible()
    assert customers.nth(0).get_by_text("soon").is_visible()
    assert page.get_by_test_id("problem-ticket").count() == 3

    # Jo's own ticket joins the problem.
    page.get_by_label("Link ticket #").fill(str(jo.pk))
    with page.expect_navigation():
        page.get_by_role("button", name="Link", exact=True).click()
    assert page.get_by_text(f"Ticket #{jo.pk} is now part of problem #{problem.pk}.").is_visible()
    assert page.get_by_test_id("problem-ticket").count() == 4
    screenshot("problem")
    page.emulate_media(color_scheme="dark")  # the admin's theme follows the system's
    page.reload()
    screenshot("problem-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    screenshot("problem-390")
    page.set_viewport_size({"width": 1440, "height": 1000})

    # The update: its preview names Jo, the only requester; the spikes have none.
    with page.expect_navigation():
        page.get_by_role("link", name="Send an update…").click()
    recipients = page.get_by_test_id("update-recipient")
    assert recipients.count() == 1
    assert recipients.get_by_text("jo@acme.com").is_visible()
    assert page.get_by_test_id("update-unreachable").get_by_text("Globex").is_visible()
    page.get_by_label("The update").fill(
        "We found the cause of the export timeouts; a fix ships today."
    )
    screenshot("problem-update")
    with page.expect_navigation():
        page.get_by_role("button", name="Send to 1 requester").click()
    assert page.get_by_text(
        f"Update of problem #{problem.pk} recorded on 1 ticket; it is being sent to jo@acme.com."
    ).is_visible()
    reply = TicketComment.objects.get()
    assert (reply.ticket, reply.kind, reply.sent_to) == (jo, "reply", "jo@acme.com")

    # Solved, with its four tickets.
    with page.expect_navigation():
        page.get_by_role("link", name="Solve…").click()
    assert page.get_by_test_id("solve-ticket").count() == 4
    screenshot("problem-solve")
    with page.expect_navigation():
        page.get_by_role("button", name="Solve the problem and 4 tickets").click()
    assert page.get_by_text(
        f"Problem #{problem.pk} is solved, and with it 4 open tickets."
    ).is_visible()
    assert page.get_by_test_id("problem-status").inner_text().lower() == "solved"
    assert not page.get_by_test_id("problem-actions").is_visible()
    screenshot("problem-solved")
    assert set(problem.tickets.values_list("status", flat=True)) == {"solved"}

    # The ticket names its problem.
    page.goto(f"{live_server.url}/admin/support/ticket/{jo.pk}/change/")
    assert page.get_by_test_id("ticket-problem").inner_text() == (
        f"part of problem #{problem.pk} (solved)"
    )
