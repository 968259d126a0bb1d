"""Support's home: my open tickets, unassigned, about to breach, breached, waiting on the
customer and the failed inputs, each count linked to the page listing exactly its rows."""

from __future__ import annotations

import pytest
from django.utils import timezone

from audit.context import acting_as
from opsdesk.home.selectors import failed_input_tallies, support_queue_tallies
from support.models import InboundEmail, Ticket, WebhookEvent
from support.ticket_sla import tickets_at_risk, tickets_breached
from tests import builders
from tests.opsdesk.home.records import listed
from tests.support.queue_pages import make_ticket

pytestmark = pytest.mark.django_db


def seed_tickets(agent, manager, n: int = 1) -> None:
    """``n`` of each: mine open, mine waiting, unassigned open (4 h left), about to breach
    (1 h left, warned 2 h before), breached, someone else's; and one solved of mine."""
    for i in range(n):
        make_ticket(f"mine {i}", assignee=agent)
        make_ticket(f"mine waiting {i}", assignee=agent, status=Ticket.Status.PENDING)
        make_ticket(f"nobody's {i}")
        make_ticket(f"at risk {i}", due_in_hours=1, assignee=manager)
        make_ticket(f"breached {i}", due_in_hours=-1, assignee=manager)
    make_ticket("solved", assignee=agent, status=Ticket.Status.SOLVED)


def counts(tallies) -> dict:
    return {t.key: t.count for t in tallies}


def test_the_queue_counts_are_exact(agent, manager):
    seed_tickets(agent, manager)
    now = timezone.now()
    tallies = support_queue_tallies(user=agent, now=now)
    assert counts(tallies) == {
        "mine": 2,
        "unassigned": 1,
        "at_risk": 1,
        "breached": 1,
        "waiting": 1,
    }
    assert [t.label for t in tallies] == [
        "My open tickets",
        "Unassigned",
        "About to breach",
        "Breached",
        "Waiting on customer",
    ]
    # The service levels' own reads agree.
    assert counts(tallies)["at_risk"] == tickets_at_risk(now=now).count()
    assert counts(tallies)["breached"] == tickets_breached(now=now).count()
    assert {t.key: t.tone for t in tallies}["breached"] == "danger"


def test_each_queue_count_links_to_exactly_its_tickets(client, agent, manager):
    seed_tickets(agent, manager, n=3)
    client.force_login(agent)
    tallies = support_queue_tallies(user=agent, now=timezone.now())
    assert counts(tallies) == {
        "mine": 6,
        "unassigned": 3,
        "at_risk": 3,
        "breached": 3,
        "waiting": 3,
    }
    for tally in tallies:
        assert listed(client, tally.url) == tally.count, tally.key


@pytest.mark.parametrize("n", [1, 20])
def test_the_queue_counts_take_one_query_whatever_the_rows(
    agent, manager, n, django_assert_num_queries
):
    seed_tickets(agent, manager, n=n)
    with django_assert_num_queries(1):
        tallies = support_queue_tallies(user=agent, now=timezone.now())
    assert counts(tallies)["unassigned"] == n


def seed_failed(n: int) -> None:
    with acting_as("test:fixture"):
        for i in range(n):
            WebhookEvent.objects.create(webhook_id=f"wh-failed-{i}", status="failed")
            builders.inbound_email(status=InboundEmail.Status.FAILED)
        WebhookEvent.objects.create(webhook_id="wh-ok", status="processed")
        builders.inbound_email(status=InboundEmail.Status.PROCESSED)


@pytest.mark.parametrize("n", [1, 20])
def test_failed_inputs_are_counted_and_linked_exactly(client, agent, n, django_assert_num_queries):
    seed_failed(n)
    with django_assert_num_queries(2):
        tallies = failed_input_tallies()
    assert counts(tallies) == {"webhooks": n, "emails": n}
    client.force_login(agent)
    for tally in tallies:
        assert listed(client, tally.url) == n, tally.key


def test_only_the_inputs_asked_for_are_counted(django_assert_num_queries):
    seed_failed(2)
    with django_assert_num_queries(1):
        assert counts(failed_input_tallies(emails=False)) == {"webhooks": 2}


def test_a_tally_past_its_cap_counts_no_further_and_says_so(monkeypatch):
    """The failed inputs pile up with the data: the count stops at the cap + 1 (a LIMITed
    subquery, never a whole table's COUNT(*)) and reads "2+"."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from opsdesk.home import selectors

    monkeypatch.setattr(selectors, "TALLY_CAP", 2)
    seed_failed(5)
    with CaptureQueriesContext(connection) as ctx:
        (tally,) = failed_input_tallies(emails=False)
    assert (tally.count, tally.figure) == (3, "2+")
    assert "LIMIT 3" in ctx.captured_queries[0]["sql"]
    assert selectors.Tally("x", "X", 2).figure == "2"
