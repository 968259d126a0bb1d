"""Every query of the global search reads an index, whatever the table's size: each is
EXPLAINed with sequential and whole-index scans off (an empty test table is always
scanned otherwise; where no index serves a predicate, PostgreSQL still has to scan); and a
search costs a fixed number of queries."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from customers.models import Entitlement
from opsdesk.search.selectors import exact_hit, query_parse, search
from tests import builders

pytestmark = pytest.mark.django_db

QUERIES = [
    "acme",  # a name, tenant id, part of emails, codes, subjects, ids
    "jane.roe@acme.example",  # a whole email address
    "K7QP-4XMD-9RTW",  # a whole code
    "k7qp4xmd",  # part of a code without dashes
    "ord_8f3k2m",  # an order id
    "OPS-2026-0042",  # an invoice number
    "#42",  # a ticket number only
    "1234",  # a ticket number, and a substring of everything
]


@pytest.fixture
def records(customer):
    builders.contact(customer=customer, email="jane.roe@acme.example")
    builders.entitlement(
        customer=customer,
        code="K7QP-4XMD-9RTW",
        state=Entitlement.State.ASSIGNED,
        assignee_email="pat@acme.example",
    )
    builders.order(customer=customer, external_id="ord_8f3k2m")
    builders.invoice(customer=customer, number="OPS-2026-0042")
    builders.ticket(customer=customer, subject="Acme login", requester_email="sam@acme.example")


def plan(sql: str) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        # An empty test table is always scanned; leave PostgreSQL no such choice. Nor a
        # whole read of another index (the primary key's, filtering every row): with
        # plain index scans off, a row is found through a bitmap of an index condition
        # or by a Seq Scan, when no index serves the predicate.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_indexonlyscan = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def run(superuser, text: str) -> list[str]:
    query = query_parse(text)
    with CaptureQueriesContext(connection) as captured:
        exact_hit(user=superuser, query=query)
        search(user=superuser, query=query)
    return [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]


@pytest.mark.parametrize("text", QUERIES)
def test_every_query_of_a_search_reads_an_index(superuser, records, text):
    queries = run(superuser, text)
    assert queries, text
    for sql in queries:
        explained = plan(sql)
        assert "Seq Scan" not in explained, f"{sql}\n{explained}"


def test_each_kind_reads_its_own_indexes(superuser, records):
    """The indexes a search reads, by name: a whole email its LOWER() index, a part of one
    the trigram index; a code the code's bare trigram index; ids their trigram index."""
    read = set()
    for text in ("acme", "jane.roe@acme.example", "ord_8f3k2m", "OPS-2026-0042", "#42"):
        for sql in run(superuser, text):
            read |= set(
                re.findall(
                    r"(?:Index Only Scan|Index Scan|Bitmap Index Scan) (?:using|on) (\w+)",
                    plan(sql),
                )
            )
    assert {
        "customer_name_trgm",
        "customer_external_id_trgm",
        "customer_crm_id_trgm",
        "contact_email_trgm",
        "entitlement_code_bare_trgm",
        "entitlement_assignee_trgm",
        "entitlement_assignee_lower",
        "order_external_id_trgm",
        "invoice_number_trgm",
        "ticket_subject_trgm",
        "ticket_requester_email_trgm",
        "ticket_requester_email_lower",
    } <= read, sorted(read)
    # Where two indexes hold the column, an empty table's costs tie and the planner reads
    # either (seen both ways on fresh databases): a whole contact address, LOWER(email) or
    # (customer, LOWER(email)); a ticket number, the primary key or the newest-first
    # index that ends with it. At scale it reads the first (``bench search``).
    assert read & {"contact_email_lower", "contact_email_unique_per_customer"}, sorted(read)
    assert read & {"support_ticket_pkey", "ticket_newest"}, sorted(read)


def test_a_search_costs_one_query_per_kind_one_per_kind_found_and_one_for_exact_hits(
    superuser, records, django_assert_num_queries
):
    query = query_parse("acme")
    with django_assert_num_queries(1):
        exact_hit(user=superuser, query=query)
    with django_assert_num_queries(6 + 4):  # each kind's rows, each found kind's count
        groups = search(user=superuser, query=query)
    assert [group.kind.key for group in groups] == [
        "customers",
        "contacts",
        "entitlements",
        "tickets",
    ]


def test_the_page_costs_the_same_for_1_match_and_30(
    client, agent, customer, django_assert_num_queries
):
    builders.ticket(subject="Export fails", customer=customer)
    client.force_login(agent)
    client.get("/admin/search/", {"q": "export"})  # the session's first read

    def page():
        response = client.get("/admin/search/", {"q": "export"})
        assert response.status_code == 200

    with django_assert_num_queries(QUERIES_PER_PAGE):
        page()
    for n in range(29):
        builders.ticket(subject=f"Export fails {n}", customer=customer)
    with django_assert_num_queries(QUERIES_PER_PAGE):
        page()


# The session and user (2), their permissions (2: the user's and the groups'), the exact
# hits (1), the six kinds (6) and the count of the one found (1).
QUERIES_PER_PAGE = 12
