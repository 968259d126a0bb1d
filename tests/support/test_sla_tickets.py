"""A ticket's service levels kept current (support.ticket_sla): the policy its customer's
active contract picks, and the stored clocks after every event that changes them
(opening by hand, by webhook, by email; priority; status; reply; customer message;
customer), each in the event's one history entry (docs/product.md#service-levels).

Times are fixed with time_machine; 23 November 2026 is a Monday."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from audit.context import acting_as
from customers.models import Contract
from support import sla, tickets
from support.models import SlaPolicy, SlaTarget, Ticket
from support.ticket_sla import (
    sla_policy_book,
    ticket_sla_apply,
    ticket_sla_refresh,
    tickets_at_risk,
    tickets_breached,
    tickets_sla_fill,
)
from tests import builders
from tests.records import active_contract
from tests.support.raw_emails import plain_email, processed, received

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def enterprise(db, sla_policies):
    customer = builders.customer(external_id="initech-1", name="Initech")
    active_contract(customer, plan=Contract.Plan.ENTERPRISE)
    return customer


def opened(by, *, when: dt.datetime, **fields) -> Ticket:
    with time_machine.travel(when, tick=False):
        return tickets.ticket_create(by=by, subject="Export stuck", **fields)


def clocks(ticket: Ticket) -> tuple:
    ticket.refresh_from_db()
    return (
        ticket.first_response_due_at,
        ticket.next_response_due_at,
        ticket.resolution_due_at,
        ticket.sla_due_at,
        ticket.sla_paused_at,
    )


# --- the policy ---------------------------------------------------------------------------


def test_the_active_contracts_plan_picks_the_policy(agent, customer, enterprise, sla_policies):
    growth = opened(agent, when=at(21, 10), customer=customer)
    initech = opened(agent, when=at(21, 10), customer=enterprise, priority="urgent")
    nobody = opened(agent, when=at(21, 10))

    assert (growth.sla_policy, initech.sla_policy, nobody.sla_policy) == (
        sla_policies["Growth"],
        sla_policies["Enterprise"],
        sla_policies["Default"],
    )
    # Growth in business hours: Monday 17:00. Enterprise urgent around the clock: 11:00.
    assert (growth.first_response_due_at, initech.first_response_due_at) == (
        at(23, 17),
        at(21, 11),
    )


def test_a_customer_without_an_active_contract_gets_the_default(agent, sla_policies):
    lapsed = builders.customer(name="Lapsed")
    active_contract(lapsed, plan=Contract.Plan.ENTERPRISE, status=Contract.Status.ENDED)
    ticket = opened(agent, when=at(21, 10), customer=lapsed, priority="urgent")
    assert (ticket.sla_policy, ticket.first_response_due_at) == (
        sla_policies["Default"],
        at(23, 10),
    )


def test_every_plan_has_a_policy_or_the_default_with_a_target_for_every_priority(sla_policies):
    """By construction: whatever the table holds, a plan (or none) finds a policy with
    every priority's targets."""
    with acting_as("test:fixture"):
        SlaTarget.objects.filter(policy=sla_policies["Growth"], priority="low").delete()
        starter = sla_policies["Starter"]
        starter.plans = []  # the starter plan now names no policy
        starter.save()
    book = sla_policy_book()
    for plan in [*Contract.Plan.values, None, "no-such-plan"]:
        policy = book.for_plan(plan)
        assert set(policy.targets) == set(Ticket.Priority.values), plan
    assert book.for_plan("starter").name == "Default"
    assert book.for_plan("growth").targets["low"] == sla.default_targets()["low"]
    assert book.for_plan("enterprise").name == "Enterprise"


def test_without_any_stored_policy_the_builtin_default_applies(agent):
    SlaTarget.objects.all().delete()
    SlaPolicy.objects.all().delete()
    ticket = opened(agent, when=at(21, 10))
    assert (ticket.sla_policy, ticket.first_response_due_at) == (None, at(23, 17))


def test_without_a_default_the_policy_naming_no_plan_stands_in(sla_policies):
    default = sla_policies["Default"]
    with acting_as("test:fixture"):
        default.is_default, default.name = False, "Fallback"
        default.save()
    assert sla_policy_book().for_plan(None).name == "Fallback"
    with acting_as("test:fixture"):
        default.plans = ["growth"]
        default.save()
    assert sla_policy_book().for_plan(None).pk is None  # the built-in one


def test_a_customer_changed_on_the_ticket_page_brings_its_policy(
    agent, customer, enterprise, sla_policies
):
    ticket = opened(agent, when=at(21, 10), customer=customer, priority="urgent")
    assert ticket.first_response_due_at == at(23, 10)

    with time_machine.travel(at(21, 10, 30), tick=False):
        tickets.ticket_update(ticket=ticket, by=agent, changes={"customer": enterprise})

    ticket.refresh_from_db()
    # Saturday 10:00-10:30 counted as Growth said (nothing), the rest around the clock.
    assert (ticket.sla_policy, ticket.first_response_due_at) == (
        sla_policies["Enterprise"],
        at(21, 11, 30),
    )
    assert ticket.history.latest().first_response_due_at == at(21, 11, 30)


# --- the events -----------------------------------------------------------------------------


def test_opening_by_hand_stores_every_clock(agent, sla_policies):
    ticket = opened(agent, when=at(23, 9))
    assert clocks(ticket) == (at(23, 17), None, at(27, 17), at(23, 17), None)
    assert (ticket.first_response_warn_at, ticket.sla_warn_at) == (at(23, 15), at(23, 15))
    assert ticket.history.count() == 1


def test_an_email_opens_a_ticket_with_the_default_service_levels(sla_policies):
    with time_machine.travel(at(23, 9), tick=False):
        inbound = processed(received(plain_email("Help", sender="someone@example.org")))
    ticket = inbound.ticket
    assert (ticket.sla_policy, ticket.first_response_due_at) == (
        sla_policies["Default"],
        at(23, 17),
    )


def test_a_priority_change_moves_the_running_clocks(agent, sla_policies):
    ticket = opened(agent, when=at(23, 9), priority="low")
    with time_machine.travel(at(23, 9, 30), tick=False):
        tickets.ticket_set_priority(ticket=ticket, priority="urgent", by=agent)
    assert clocks(ticket) == (at(23, 10), None, at(23, 14), at(23, 10), None)
    latest = ticket.history.latest()
    assert (latest.priority, latest.first_response_due_at, latest.history_date) == (
        "urgent",
        at(23, 10),
        at(23, 9, 30),
    )


def test_waiting_on_the_customer_pauses_and_opening_again_resumes(agent, sla_policies):
    ticket = opened(agent, when=at(23, 9))
    with time_machine.travel(at(23, 11), tick=False):
        tickets.ticket_set_status(ticket=ticket, status="pending", by=agent)
    assert clocks(ticket) == (None, None, None, None, at(23, 11))

    with time_machine.travel(at(24, 10), tick=False):
        tickets.ticket_set_status(ticket=ticket, status="open", by=agent)
    # 2 of 8 hours counted on Monday, 6 more from Tuesday 10:00; the resolution's other
    # 38 of its 40 hours likewise, to Monday 30 November 16:00.
    assert clocks(ticket) == (at(24, 16), None, at(30, 16), at(24, 16), None)


def test_a_reply_stops_the_first_response_and_solving_stops_the_rest(agent, sla_policies):
    ticket = opened(agent, when=at(23, 9), requester_email="pat@acme.com")
    with time_machine.travel(at(23, 10), tick=False):
        tickets.ticket_comment(ticket=ticket, author=agent, kind="reply", body="On it.")
    ticket.refresh_from_db()
    assert ticket.first_responded_at == at(23, 10)
    assert (ticket.first_response_due_at, ticket.first_response_warn_at) == (at(23, 17), None)
    assert (ticket.sla_due_at, ticket.sla_warn_at) == (at(27, 17), at(26, 15))  # resolution

    with time_machine.travel(at(24, 12), tick=False):
        tickets.ticket_resolve(ticket=ticket, by=agent)
    assert clocks(ticket) == (at(23, 17), None, at(27, 17), None, None)
    assert ticket.resolution_warn_at is None


def test_an_internal_note_changes_no_clock(agent, sla_policies):
    ticket = opened(agent, when=at(23, 9))
    before = clocks(ticket)
    with time_machine.travel(at(23, 10), tick=False):
        tickets.ticket_comment(ticket=ticket, author=agent, kind="note", body="Looking.")
    assert clocks(ticket) == before
    assert ticket.history.count() == 1


def test_refreshing_twice_writes_once(agent, sla_policies):
    ticket = opened(agent, when=at(23, 9))
    with time_machine.travel(at(23, 12), tick=False), acting_as("test:refresh"):
        assert ticket_sla_refresh(ticket=ticket) == []
    assert ticket.history.count() == 1


def test_a_refresh_after_a_contract_change_follows_the_new_plan(agent, customer, sla_policies):
    ticket = opened(agent, when=at(21, 10), customer=customer, priority="high")
    with acting_as("test:fixture"):
        for contract in customer.contracts.all():
            contract.status = Contract.Status.ENDED
            contract.save()
        active_contract(customer, plan=Contract.Plan.ENTERPRISE, start_date=dt.date(2026, 11, 1))
    with time_machine.travel(at(22, 10), tick=False), acting_as("task:sla"):
        changed = ticket_sla_refresh(ticket=ticket)
    assert "sla_policy" in changed
    assert (ticket.sla_policy_id, ticket.first_response_due_at) == (
        sla_policies["Enterprise"].pk,
        at(22, 14),
    )
    assert ticket.history.latest().history_change_reason == "service levels"


def test_the_apply_of_an_unsaved_ticket_reads_nothing_but_the_policies(
    sla_policies, django_assert_num_queries
):
    ticket = Ticket(subject="New", created_at=at(23, 9), priority="urgent")
    with django_assert_num_queries(3):  # policies, targets, holidays
        changed = ticket_sla_apply(ticket=ticket, now=at(23, 9))
    assert ticket.first_response_due_at == at(23, 10)
    assert set(changed) == {
        "sla_policy",
        "first_response_due_at",
        "first_response_warn_at",
        "resolution_due_at",
        "resolution_warn_at",
        "sla_due_at",
        "sla_warn_at",
    }


def test_bulk_writers_get_the_same_service_levels_in_four_queries(
    customer, enterprise, sla_policies, django_assert_num_queries
):
    planned = [
        Ticket(subject="a", customer=customer, created_at=at(21, 10), priority="urgent"),
        Ticket(subject="b", customer=enterprise, created_at=at(21, 10), priority="urgent"),
        Ticket(
            subject="c",
            created_at=at(23, 9),
            status="pending",
            first_responded_at=at(23, 9, 30),
        ),
    ]
    with django_assert_num_queries(4):
        tickets_sla_fill(tickets=planned, now=at(23, 12))
    assert [(t.sla_policy_id, t.first_response_due_at, t.sla_due_at) for t in planned] == [
        (sla_policies["Growth"].pk, at(23, 10), at(23, 10)),
        (sla_policies["Enterprise"].pk, at(21, 11), at(21, 11)),
        # Its status is all a bulk writer knows of its past: waiting since it was opened,
        # so its first response counted nothing before it came (due 8 h after it).
        (sla_policies["Default"].pk, at(24, 9, 30), None),
    ]
    assert planned[2].sla_paused_at == at(23, 9)


# --- the reads the queue and the warnings share ---------------------------------------------


def test_at_risk_and_breached_tickets_are_found_by_their_stored_clocks(agent, sla_policies):
    fine = opened(agent, when=at(23, 9))  # first response warns 15:00, due 17:00
    rushed = opened(agent, when=at(23, 9), priority="urgent")  # warns 09:45, due 10:00
    waiting = opened(agent, when=at(23, 9), priority="urgent")
    with time_machine.travel(at(23, 9, 10), tick=False):
        tickets.ticket_set_status(ticket=waiting, status="pending", by=agent)

    def found(now):
        return (
            sorted(t.pk for t in tickets_at_risk(now=now)),
            sorted(t.pk for t in tickets_breached(now=now)),
        )

    assert found(at(23, 9, 44)) == ([], [])
    assert found(at(23, 9, 45)) == ([rushed.pk], [])
    assert found(at(23, 10)) == ([], [rushed.pk])
    assert found(at(23, 15)) == ([fine.pk], [rushed.pk])
    assert found(at(23, 17)) == ([], [fine.pk, rushed.pk])


def test_the_command_brings_every_open_ticket_up_to_date_once(sla_policies):
    with acting_as("test:fixture"), time_machine.travel(at(23, 9), tick=False):
        before = builders.ticket(subject="From before service levels")  # nothing stored
        done = builders.ticket(subject="Solved", status="solved")
    out = StringIO()
    with time_machine.travel(at(23, 10), tick=False):
        call_command("sla_refresh", stdout=out)
        call_command("sla_refresh", stdout=out)
    assert out.getvalue().splitlines() == [
        "sla_refresh: 1 open tickets, 1 updated",
        "sla_refresh: 1 open tickets, 0 updated",
    ]
    before.refresh_from_db()
    assert (before.sla_policy, before.first_response_due_at) == (
        sla_policies["Default"],
        at(23, 17),
    )
    assert before.history.latest().history_actor == "command:sla_refresh"
    assert done.history.count() == 1
