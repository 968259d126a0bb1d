"""One current contract (customers.selectors.contract_current) behind the queue's plan
column, its plan filter, the ticket page and the triage rules' contract facts.

Before, the queue read only active contracts while the ticket page and the triage rules
took the active one, else the latest: for a lapsed customer (only ended contracts) the
queue said "no active contract" and its plan filter left the ticket out, while a triage
rule on the plan matched it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.context import acting_as
from customers.models import Contract, Customer
from support.models import Ticket
from support.selectors import ticket_context
from support.triage import ticket_facts
from tests import builders
from tests.records import active_contract

pytestmark = pytest.mark.django_db

QUEUE = "/admin/support/ticket/queue/"
TODAY = dt.date(2026, 11, 21)


def ticket_of(customer: Customer, subject: str) -> Ticket:
    with acting_as("test:fixture"):
        return builders.ticket(
            subject=subject,
            customer=customer,
            first_response_due_at=timezone.now() + dt.timedelta(hours=4),
        )


@pytest.fixture
def lapsed(db) -> Customer:
    """Initech: a starter contract that ended in 2025, after an older growth one."""
    with acting_as("test:fixture"):
        initech = builders.customer(external_id="initech-9", name="Initech")
    active_contract(
        initech,
        plan=Contract.Plan.GROWTH,
        status=Contract.Status.ENDED,
        start_date=dt.date(2023, 1, 1),
        end_date=dt.date(2023, 12, 31),
    )
    active_contract(
        initech,
        plan=Contract.Plan.STARTER,
        seats=5,
        status=Contract.Status.ENDED,
        start_date=dt.date(2025, 1, 1),
        end_date=dt.date(2025, 12, 31),
    )
    return initech


def queue_contracts(response) -> dict[str, tuple[str | None, str | None]]:
    return {t.subject: (t.plan, t.contract_status) for t, _, _ in response.context["rows"]}


def test_a_lapsed_customer_has_the_same_contract_in_the_queue_its_filter_page_and_rules(
    client, agent, lapsed
):
    client.force_login(agent)
    ticket = ticket_of(lapsed, "initech's")

    response = client.get(QUEUE)
    assert queue_contracts(response) == {"initech's": ("starter", "ended")}
    assert 'Starter <span class="od-pill od-ended">ended</span>' in response.content.decode()
    assert queue_contracts(client.get(QUEUE, {"plan": "starter"})) == {
        "initech's": ("starter", "ended")
    }
    assert queue_contracts(client.get(QUEUE, {"plan": "growth"})) == {}

    facts = ticket_facts(ticket=ticket, today=TODAY)
    assert (facts["plan"], facts["contract_status"], facts["seats"]) == ("starter", "ended", 5)
    assert facts["days_to_renewal"] == -325  # ended 31 Dec 2025
    context = ticket_context(ticket=ticket, today=TODAY)
    assert (context.contract.plan, context.days_since_end) == ("starter", 325)


def test_with_two_active_contracts_the_filter_matches_only_the_one_the_column_shows(client, agent):
    """Before, the filter matched any active contract's plan and the column showed the
    latest one's: a ticket listed under "growth" showed "starter"."""
    client.force_login(agent)
    with acting_as("test:fixture"):
        hooli = builders.customer(external_id="hooli-1", name="Hooli")
    active_contract(hooli, plan=Contract.Plan.GROWTH, start_date=dt.date(2025, 1, 1))
    active_contract(hooli, plan=Contract.Plan.STARTER, start_date=dt.date(2026, 1, 1))
    ticket = ticket_of(hooli, "hooli's")

    assert queue_contracts(client.get(QUEUE)) == {"hooli's": ("starter", "active")}
    assert queue_contracts(client.get(QUEUE, {"plan": "growth"})) == {}
    assert queue_contracts(client.get(QUEUE, {"plan": "starter"})) == {
        "hooli's": ("starter", "active")
    }
    assert ticket_facts(ticket=ticket, today=TODAY)["plan"] == "starter"


def test_a_customer_without_contracts_shows_no_contract_and_matches_no_plan(client, agent):
    client.force_login(agent)
    with acting_as("test:fixture"):
        newco = builders.customer(external_id="newco-1", name="Newco")
    ticket = ticket_of(newco, "newco's")

    response = client.get(QUEUE)
    assert queue_contracts(response) == {"newco's": (None, None)}
    assert "No contract" in response.content.decode()
    for plan in Contract.Plan.values:
        assert queue_contracts(client.get(QUEUE, {"plan": plan})) == {}
    assert ticket_facts(ticket=ticket, today=TODAY)["plan"] is None
