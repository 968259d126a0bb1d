"""The changelist searches find what Django's would, in queries whose number does not
grow with the rows, each able to read a trigram index (``IndexedSearchMixin``)."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.context import acting_as
from support.models import Ticket
from tests import builders
from tests.records import populate

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/customers/customer/"
CONTACTS = "/admin/customers/contact/"
ENTITLEMENTS = "/admin/customers/entitlement/"
TICKETS = "/admin/support/ticket/"


def listed(client, url: str, q: str) -> str:
    response = client.get(url, {"q": q})
    assert response.status_code == 200
    return response.content.decode()


def count_queries(client, url: str, q: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, {"q": q}).status_code == 200
    return len(captured)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def test_customers_are_found_by_name_tenant_crm_id_and_contact_email(admin_client):
    populate(3)
    one = populate(1, start=3)[0]
    one.crm_id = "crm-4711"
    with acting_as("test:search"):
        one.save()
        builders.contact(customer=one, name="Second", email="second@example.com")
    assert "Customer 3" in listed(admin_client, CUSTOMERS, "customer 3")
    assert "Customer 3" in listed(admin_client, CUSTOMERS, "TENANT-3")
    assert "Customer 3" in listed(admin_client, CUSTOMERS, "4711")
    page = listed(admin_client, CUSTOMERS, "c3@EXAMPLE")
    assert "Customer 3" in page and "Customer 1" not in page
    # Two of its contacts match: still listed once.
    page = listed(admin_client, CUSTOMERS, "example.com")
    assert page.count("tenant-3") == 1


def test_every_word_must_match_and_a_quoted_phrase_is_one_term(admin_client):
    populate(3)
    assert "Customer 2" not in listed(admin_client, CUSTOMERS, "customer nobody")
    page = listed(admin_client, CUSTOMERS, '"Customer 2"')
    assert "tenant-2" in page and "tenant-1" not in page


def test_tickets_are_found_by_subject_requester_customer_name_and_tenant(admin_client):
    populate(3)
    ticket = Ticket.objects.get(subject="Help 1")
    ticket.requester_email = "jo@requester.example"
    with acting_as("test:search"):
        ticket.save()
    assert "Help 2" in listed(admin_client, TICKETS, "help 2")
    page = listed(admin_client, TICKETS, "jo@requester")
    assert "Help 1" in page and "Help 2" not in page
    page = listed(admin_client, TICKETS, '"customer 2"')
    assert "Help 2" in page and "Help 1" not in page
    page = listed(admin_client, TICKETS, "tenant-0")
    assert "Help 0" in page and "Help 1" not in page


def test_contacts_and_entitlements_are_found_by_their_customer_name(admin_client):
    populate(2)
    page = listed(admin_client, CONTACTS, '"customer 1"')
    assert "c1@example.com" in page and "c0@example.com" not in page
    page = listed(admin_client, ENTITLEMENTS, '"customer 1"')
    assert "CODE-1-0" in page and "CODE-0-0" not in page
    assert "CODE-0-1" in listed(admin_client, ENTITLEMENTS, "code-0-1")


@pytest.mark.parametrize("url", [CUSTOMERS, CONTACTS, ENTITLEMENTS, TICKETS])
def test_a_search_costs_the_same_for_2_matches_and_8(admin_client, url):
    populate(2)
    admin_client.get(url, {"q": "customer"})  # warm per-process caches
    small = count_queries(admin_client, url, "customer")
    populate(6, start=2)
    assert count_queries(admin_client, url, "customer") == small


def test_the_ticket_list_reads_assignees_with_the_rows(admin_client, agent):
    def assign_all():
        with acting_as("test:search"):
            for ticket in Ticket.objects.filter(assignee=None):
                ticket.assignee = agent
                ticket.save()

    populate(2)
    assign_all()
    admin_client.get(TICKETS)
    small = count_queries(admin_client, TICKETS, "")
    populate(6, start=2)
    assign_all()
    assert count_queries(admin_client, TICKETS, "") == small


@pytest.mark.parametrize(
    ("url", "q", "indexes"),
    [
        (CUSTOMERS, "acme", {"customer_name_trgm", "customer_external_id_trgm"}),
        (CUSTOMERS, "jo@acme", {"contact_email_trgm"}),
        (CONTACTS, "acme", {"contact_name_trgm", "contact_email_trgm", "customer_name_trgm"}),
        (ENTITLEMENTS, "abcd-efgh", {"entitlement_code_trgm", "entitlement_assignee_trgm"}),
        (TICKETS, "export", {"ticket_subject_trgm", "ticket_requester_email_trgm"}),
    ],
)
def test_every_text_match_of_a_search_can_read_a_trigram_index(admin_client, url, q, indexes):
    with CaptureQueriesContext(connection) as captured:
        admin_client.get(url, {"q": q})
    likes = [query["sql"] for query in captured if " LIKE " in query["sql"].upper()]
    assert likes
    used = set()
    for sql in likes:
        with transaction.atomic(), connection.cursor() as cursor:
            # An empty test table is always scanned; leave PostgreSQL only bitmap scans
            # (they need an index condition) to see which index can serve the match.
            for scan in ("seqscan", "indexscan", "indexonlyscan"):
                cursor.execute(f"SET LOCAL enable_{scan} = off")
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "_trgm" in plan, plan
        used |= {name for name in indexes if name in plan}
    assert used == indexes


def test_a_whole_address_finds_that_address_in_any_case_and_a_part_finds_every_one(
    admin_client,
):
    populate(2)
    with acting_as("test:search"):
        for subject, email in (
            ("Help 0", "jo@requester.example"),
            ("Help 1", "bojo@requester.example"),
        ):
            ticket = Ticket.objects.get(subject=subject)
            ticket.requester_email = email
            ticket.save()
    page = listed(admin_client, TICKETS, "JO@Requester.example")
    assert "Help 0" in page and "Help 1" not in page
    page = listed(admin_client, TICKETS, "jo@requester")
    assert "Help 0" in page and "Help 1" in page
    # The customer of a contact, by the contact's whole address.
    page = listed(admin_client, CUSTOMERS, "C1@EXAMPLE.COM")
    assert "tenant-1" in page and "tenant-0" not in page


def plan_of(sql: str) -> str:
    """The plan PostgreSQL would choose for ``sql`` if scanning a table were out of the
    question (an empty test table is always scanned)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for scan in ("seqscan", "indexscan", "indexonlyscan"):
            cursor.execute(f"SET LOCAL enable_{scan} = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


# Each field's lowercased indexes: either serves ``lower(email) = ...`` (the per-customer
# unique one through its second column), and the planner picks either on a near-empty table.
CONTACT_EMAIL = ("contact_email_lower", "contact_email_unique_per_customer")


@pytest.mark.parametrize(
    ("url", "indexes"),
    [
        (TICKETS, [("ticket_requester_email_lower",)]),
        (CUSTOMERS, [CONTACT_EMAIL]),
        (CONTACTS, [CONTACT_EMAIL]),
        (ENTITLEMENTS, [("entitlement_assignee_lower",), ("entitlement_redeemed_by_lower",)]),
    ],
)
def test_a_whole_address_is_looked_up_in_the_lowercased_index_not_the_trigrams(
    admin_client, url, indexes
):
    with CaptureQueriesContext(connection) as captured:
        admin_client.get(url, {"q": "Jo@Acme.example"})
    searches = [q["sql"] for q in captured if "jo@acme.example" in q["sql"]]
    assert searches
    plans = "\n".join(plan_of(sql) for sql in searches)
    for either in indexes:
        assert any(name in plans for name in either), (either, plans)
    assert "requester_email_trgm" not in plans and "contact_email_trgm" not in plans


def test_an_admin_with_no_field_it_can_search_itself_leaves_the_rows_as_they_are():
    from customers.admin import IndexedSearchMixin

    class RelatedOnly(IndexedSearchMixin):
        search_fields = ["customer__name"]

        def get_search_fields(self, request):
            return self.search_fields

    populate(2)
    tickets = Ticket.objects.all()
    found, may_have_duplicates = RelatedOnly().get_search_results(None, tickets, "customer")
    assert (list(found), may_have_duplicates) == (list(tickets), False)
