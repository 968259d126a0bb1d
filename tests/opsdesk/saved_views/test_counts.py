"""The sidebar's saved views and their counts: what each view's page lists, counted up to
100 rows ("99+" beyond), all views in one query through the pages' own indexes, in a
fixed number of queries whatever the number of views."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.context import acting_as
from opsdesk.saved_views.selectors import SIDEBAR_VIEWS_MAX
from support.models import Case, Tag, Ticket
from tests import builders
from tests.opsdesk.casework.cases import make_case
from tests.opsdesk.casework.cases import shown as inbox_shown
from tests.opsdesk.saved_views.records import (
    INBOX,
    QUEUE,
    SIDEBAR,
    saved_view,
    sidebar_counts,
    sidebar_entries,
)
from tests.support.queue_pages import make_ticket
from tests.support.queue_pages import shown as queue_shown

pytestmark = pytest.mark.django_db

UNBOUNDED_COUNT = re.compile(r"count\(\*\)(?!.*LIMIT)", re.IGNORECASE | re.DOTALL)


@pytest.fixture
def tickets(agent, manager, customer):
    vip = Tag.objects.create(name="vip")
    make_ticket("urgent, mine", priority="urgent", assignee=agent)
    make_ticket("urgent, alice's", priority="urgent", assignee=manager)
    make_ticket("urgent, nobody's", priority="urgent", customer=customer)
    make_ticket("low, vip", priority="low", tags=[vip], customer=customer)
    make_ticket("urgent, solved", priority="urgent", status=Ticket.Status.SOLVED)
    make_ticket("overdue", due_in_hours=-1)
    return vip


def sidebar(client, **params):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(SIDEBAR, params)
    assert response.status_code == 200
    return response, [q["sql"] for q in captured.captured_queries]


def test_each_count_is_what_the_views_page_lists(client, agent, tickets):
    queries = {
        "Urgent": "priority=urgent",
        "Urgent, any status": "status=all&priority=urgent",
        "Mine": "assignee=me",
        "Unassigned": "assignee=none",
        "VIP": "tag=vip",
        "Acme": "customer=acme",
        "Growth": "plan=growth",
        "Overdue": "overdue=true",
    }
    for name, query in queries.items():
        saved_view(agent, name, query)
    client.force_login(agent)
    counts = sidebar_counts(sidebar(client)[0])
    listed = {
        name: str(len(queue_shown(client.get(f"{QUEUE}?{q}")))) for name, q in queries.items()
    }
    assert counts == listed
    assert counts == {
        "Urgent": "3",
        "Urgent, any status": "4",
        "Mine": "1",
        "Unassigned": "3",
        "VIP": "1",
        "Acme": "2",
        "Growth": "2",
        "Overdue": "1",
    }


def test_me_is_whoever_looks_at_a_shared_view(client, agent, manager, tickets):
    saved_view(agent, "Mine", "assignee=me", shared=True)
    client.force_login(agent)
    assert sidebar_counts(sidebar(client)[0]) == {"Mine": "1"}
    client.force_login(manager)  # Alice has one urgent ticket too, and no view of her own
    assert sidebar_counts(sidebar(client)[0]) == {"Mine": "1"}
    make_ticket("another of alice's", assignee=manager)
    assert sidebar_counts(sidebar(client)[0]) == {"Mine": "2"}


def test_inbox_counts_are_what_the_inbox_lists(client, ops_lead, customer):
    make_case("billing, open", kind=Case.Kind.MISSING_INVOICE, customer=customer)
    make_case("billing, old", kind=Case.Kind.MISSING_INVOICE, days_old=10)
    make_case("billing, done", kind=Case.Kind.MISSING_INVOICE, state=Case.State.RESOLVED)
    make_case("fulfilment, mine", owner=ops_lead, days_old=3)
    queries = {
        "Billing": "kind=missing_invoice",
        "Mine": "owner=me",
        "Week old": "age=7",
        "Acme": "customer=acme",
        "Closed": "state=resolved",
    }
    for name, query in queries.items():
        saved_view(ops_lead, name, query, page="inbox")
    client.force_login(ops_lead)
    counts = sidebar_counts(sidebar(client)[0])
    listed = {
        name: str(len(inbox_shown(client.get(f"{INBOX}?{q}")))) for name, q in queries.items()
    }
    assert (
        counts
        == listed
        == {"Billing": "2", "Mine": "1", "Week old": "1", "Acme": "1", "Closed": "1"}
    )


def test_a_count_stops_at_100_rows_and_says_99_plus(client, agent):
    with acting_as("test:fixture"):
        for _ in range(120):
            builders.ticket(priority="urgent")
        for _ in range(99):
            builders.ticket(priority="high")
    saved_view(agent, "Urgent", "priority=urgent")
    saved_view(agent, "High", "priority=high")
    saved_view(agent, "Low", "priority=low")
    client.force_login(agent)
    response, queries = sidebar(client)
    assert sidebar_counts(response) == {"Urgent": "99+", "High": "99", "Low": "0"}
    [counting] = [sql for sql in queries if "count(*)" in sql.lower()]
    assert counting.count("LIMIT 100") == 3
    assert not any(UNBOUNDED_COUNT.search(sql) for sql in queries if sql is not counting)


def test_the_counts_read_the_pages_indexes(client, agent, ops_lead, tickets):
    """Each view's rows are its page's: PostgreSQL finds them through the indexes the
    pages use (the queue's indexes of tickets, the inbox's of cases), never by reading
    a whole table."""
    saved_view(agent, "Urgent", "priority=urgent")
    saved_view(agent, "Unassigned", "assignee=none")
    saved_view(agent, "Open cases", "kind=missing_invoice", page="inbox")
    client.force_login(agent)
    [counting] = [sql for sql in sidebar(client)[1] if "count(*)" in sql.lower()]
    with transaction.atomic(), connection.cursor() as cursor:
        # An empty test table is always scanned; leave PostgreSQL no such choice.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + counting)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    # One index read per view: plain, index-only or bitmap, and on whichever of the
    # table's indexes the planner prefers on the day (on a near-empty table it has
    # chosen case_open_queue on one run and case_state_opened on the next).
    reads = re.findall(r"(?:Index Only Scan|Index Scan|Bitmap Index Scan) (?:using|on) (\w+)", plan)
    assert len(reads) == 3, plan
    tables = sorted(
        "case" if name.startswith(("case_", "support_case_")) else "ticket" for name in reads
    )
    assert tables == ["case", "ticket", "ticket"], plan


def make_views(owner, number: int, *, start: int = 0, page: str = "queue") -> None:
    """``number`` views of ``page`` with plain filters (no tag nor customer to look up)."""
    query, every = ("priority=urgent", "status=all")
    if page == "inbox":
        query, every = ("kind=missing_invoice", "state=all")
    for i in range(start, start + number):
        saved_view(owner, f"{page} {i}", query + (f"&{every}" if i % 2 else ""), page=page)


def test_the_sidebar_costs_the_same_for_1_view_and_10(client, agent, tickets):
    client.force_login(agent)
    client.get(SIDEBAR)  # warm per-process caches (content types)
    make_views(agent, 1)
    one = sidebar(client)[1]
    make_views(agent, 9, start=1)
    ten_response, ten = sidebar(client)
    assert len(sidebar_entries(ten_response)) == 10
    # Session, user, permissions (2), the views, the assignee choices, the counts.
    assert len(one) == len(ten) == 7, "\n".join(ten)


def test_the_sidebar_costs_the_same_for_views_of_both_pages(client, ops_lead, tickets):
    client.force_login(ops_lead)
    client.get(SIDEBAR)
    make_views(ops_lead, 1)
    make_views(ops_lead, 1, page="inbox")
    two = sidebar(client)[1]
    make_views(ops_lead, 9, start=1)
    make_views(ops_lead, 9, start=1, page="inbox")
    response, twenty = sidebar(client)
    assert len(sidebar_entries(response)) == 20
    # ... and the case owner choices.
    assert len(two) == len(twenty) == 8, "\n".join(twenty)


def test_a_view_by_tag_or_customer_looks_it_up_first_as_the_page_does(client, agent, tickets):
    client.force_login(agent)
    client.get(SIDEBAR)
    make_views(agent, 1)
    plain = len(sidebar(client)[1])
    saved_view(agent, "VIP", "tag=vip")
    saved_view(agent, "Acme", "customer=acme")
    assert len(sidebar(client)[1]) == plain + 2


def test_the_sidebar_shows_at_most_10_views_of_a_page_own_first(client, agent, ops_lead, tickets):
    for i in range(SIDEBAR_VIEWS_MAX):
        saved_view(ops_lead, f"Team {i}", "priority=urgent", shared=True, position=i)
    saved_view(agent, "Mine", "assignee=me", position=5)
    client.force_login(agent)
    names = [name for _, name, _ in sidebar_entries(sidebar(client)[0])]
    assert names == ["Mine", *(f"Team {i}" for i in range(SIDEBAR_VIEWS_MAX - 1))]


def test_a_view_whose_filters_are_no_longer_understood_counts_as_unknown(client, agent, tickets):
    saved_view(agent, "VIP", "tag=vip")
    with acting_as("test:fixture"):
        tickets.delete()
    client.force_login(agent)
    assert sidebar_counts(sidebar(client)[0]) == {"VIP": "?"}


def test_the_view_of_the_current_page_is_marked_current(client, agent, tickets):
    urgent = saved_view(agent, "Urgent", "priority=urgent&tag=vip")
    saved_view(agent, "Low", "priority=low")
    client.force_login(agent)
    here = f"{QUEUE}?status=active&priority=urgent&tag=vip&assignee=&page=2"
    html = sidebar(client, here=here)[0].content.decode()
    assert html.count('aria-current="page"') == 1
    assert re.search(
        rf'od-sidebar-view-current" href="{QUEUE}\?priority=urgent&amp;tag=vip"', html
    ), html
    # On another page, none is.
    assert (
        'aria-current="page"'
        not in sidebar(client, here=INBOX + "?priority=urgent&tag=vip")[0].content.decode()
    )
    assert urgent.query == "priority=urgent&tag=vip"


def test_the_sidebar_is_empty_for_who_has_no_views(client, manager, tickets):
    client.force_login(manager)
    response, queries = sidebar(client)
    assert response.content.decode().strip() == ""
    assert not any("count(*)" in sql.lower() for sql in queries)
