"""The global search (docs/product.md#search): what each kind matches, groups and caps,
exact hits, who searches what, hostile input, the palette."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from customers.models import Entitlement
from opsdesk.search.selectors import GROUP_CAP, query_parse, search
from opsdesk.search.views import palette_results
from tests import builders
from tests.personas import staff_user

pytestmark = pytest.mark.django_db

URL = "/admin/search/"


def shown(response) -> dict[str, list[str]]:
    """The page's groups: kind -> the titles of its hits, in order."""
    html = response.content.decode()
    groups = {}
    for kind, body in re.findall(r'data-kind="(\w+)">(.*?)</section>', html, flags=re.DOTALL):
        groups[kind] = [
            html_lib.unescape(re.sub(r"<[^>]+>", "", title)).strip()
            for title in re.findall(r'data-testid="search-hit"><a href="[^"]*">(.*?)</a>', body)
        ]
    return groups


def counts(response) -> dict[str, int]:
    html = response.content.decode()
    return {
        kind: int(count)
        for kind, count in re.findall(
            r'data-kind="(\w+)">.*?data-testid="search-count">(\d+) found', html, re.DOTALL
        )
    }


@pytest.fixture
def records(customer):
    """Acme (tenant acme-7f3a, CRM-1001) with a contact, an assigned entitlement, an
    order, an invoice and a ticket; and Globex with nothing of the sort."""
    builders.contact(customer=customer, name="Jane Roe", email="jane.roe@acme.example")
    entitlement = builders.entitlement(
        customer=customer,
        code="K7QP-4XMD-9RTW",
        state=Entitlement.State.ASSIGNED,
        assignee_email="pat.lee@acme.example",
    )
    order = builders.order(customer=customer, external_id="ord_8f3k2m")
    invoice = builders.invoice(customer=customer, number="OPS-2026-0042")
    ticket = builders.ticket(
        customer=customer, subject="Login page times out", requester_email="sam.poe@acme.example"
    )
    builders.customer(name="Globex", external_id="globex-01")
    return {"entitlement": entitlement, "order": order, "invoice": invoice, "ticket": ticket}


def get(client, q, **extra):
    return client.get(URL, {"q": q, **extra})


# --- What each kind matches ----------------------------------------------------------


@pytest.mark.parametrize(
    "q", ["Acme Corp", "acme", "CME CO", "acme-7f3a", "7F3A", "crm-1001", "1001"]
)
def test_customers_match_by_name_tenant_id_or_crm_id(client, agent, records, q):
    client.force_login(agent)
    assert shown(get(client, q))["customers"] == ["Acme Corp"]


@pytest.mark.parametrize(
    "q", ["jane.roe@acme.example", "JANE.ROE@ACME.EXAMPLE", "jane.roe", "ROE@AC"]
)
def test_contacts_match_by_email_whole_or_part(client, agent, records, q):
    client.force_login(agent)
    assert shown(get(client, q))["contacts"] == ["Jane Roe <jane.roe@acme.example>"]


@pytest.mark.parametrize("q", ["pat.lee@acme.example", "Pat.Lee", "lee@acme"])
def test_entitlements_match_by_assignee_email(client, agent, records, q):
    client.force_login(agent)
    assert shown(get(client, q))["entitlements"] == ["K7QP-4XMD-9RTW"]


@pytest.mark.parametrize("q", ["4xmd", "4XMD-9R", "p4xmd9", "QP 4XM", "k7qp-4xmd"])
def test_entitlements_match_by_part_of_a_code_any_case_with_or_without_dashes(
    client, agent, records, q
):
    client.force_login(agent)
    assert shown(get(client, q)) == {"entitlements": ["K7QP-4XMD-9RTW"]}


@pytest.mark.parametrize("q", ["sam.poe@acme.example", "SAM.POE", "login page", "TIMES OUT"])
def test_tickets_match_by_requester_email_or_subject(client, agent, records, q):
    client.force_login(agent)
    ticket = records["ticket"]
    assert shown(get(client, q))["tickets"] == [f"#{ticket.pk} Login page times out"]


def test_orders_and_invoices_match_by_part_of_their_id_and_number(client, agent, records):
    client.force_login(agent)
    assert shown(get(client, "8F3K")) == {"orders": ["ord_8f3k2m"]}
    assert shown(get(client, "2026-00")) == {"invoices": ["OPS-2026-0042"]}


def test_a_term_in_several_kinds_is_shown_in_each_group_in_a_fixed_order(client, agent, records):
    client.force_login(agent)
    assert list(shown(get(client, "acme"))) == ["customers", "contacts", "entitlements", "tickets"]


def test_nothing_matching_says_so(client, agent, records):
    client.force_login(agent)
    response = get(client, "zzyzx")
    assert response.status_code == 200
    assert shown(response) == {}
    assert (
        "Nothing matches “zzyzx” in customers, contacts, entitlements, orders, invoices or tickets."
        in response.content.decode()
    )


# --- Exact hits ----------------------------------------------------------------------


@pytest.mark.parametrize("q", ["K7QP-4XMD-9RTW", "k7qp4xmd9rtw", " k7qp 4xmd 9rtw "])
def test_a_whole_code_opens_its_entitlement(client, agent, records, q):
    client.force_login(agent)
    response = get(client, q)
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "admin:customers_entitlement_change", args=[records["entitlement"].pk]
    )


def test_an_order_id_an_invoice_number_and_a_ticket_number_open_their_record(
    client, agent, records
):
    client.force_login(agent)
    ticket = records["ticket"]
    expected = {
        "ORD_8F3K2M": reverse("admin:customers_order_change", args=[records["order"].pk]),
        "ops-2026-0042": reverse("admin:billing_invoice_change", args=[records["invoice"].pk]),
        f"#{ticket.pk}": reverse("admin:support_ticket_change", args=[ticket.pk]),
        f"{ticket.pk}": reverse("admin:support_ticket_change", args=[ticket.pk]),
    }
    for q, url in expected.items():
        response = get(client, q)
        assert (response.status_code, response["Location"]) == (302, url), q


def test_a_number_two_records_answer_to_lists_both(client, agent, records):
    ticket = records["ticket"]
    builders.invoice(number=str(ticket.pk))
    client.force_login(agent)
    response = get(client, str(ticket.pk))
    assert response.status_code == 200
    assert shown(response)["tickets"] == [f"#{ticket.pk} Login page times out"]


def test_a_ticket_number_that_does_not_exist_lists_nothing(client, agent, records):
    client.force_login(agent)
    response = get(client, "#99999999")
    assert response.status_code == 200
    assert shown(response) == {}


# --- Groups and caps -----------------------------------------------------------------


def test_a_group_shows_its_first_20_and_how_many_matched_with_a_link_to_the_list(
    client, agent, customer
):
    for n in range(GROUP_CAP + 3):
        builders.ticket(subject=f"Export fails {n:02}", customer=customer)
    client.force_login(agent)
    response = get(client, "export fails")
    assert counts(response) == {"tickets": 23}
    titles = shown(response)["tickets"]
    assert len(titles) == GROUP_CAP
    assert titles[0].endswith("Export fails 22")  # newest first
    html = response.content.decode()
    assert (
        '<a href="/admin/support/ticket/?q=%22export+fails%22" data-testid="search-more">'
        "Show all 23 in tickets</a>"
    ) in html


def test_a_group_is_the_newest_matches_of_every_field_and_counts_to_its_cap(
    client, agent, customer, monkeypatch
):
    """Each field's SELECT gives its first rows in the kind's order and the group the first
    of their union: the newest of all matches, whichever field matched. The count stops
    past COUNT_CAP and reads "5+"."""
    from opsdesk.search import selectors

    monkeypatch.setattr(selectors, "COUNT_CAP", 5)

    def by_subject(n):
        return builders.ticket(subject=f"Quota {n}", customer=customer)

    def by_email(n):
        return builders.ticket(
            subject="Hello", requester_email=f"quota{n}@x.example", customer=customer
        )

    # Created interleaved (created_at ascending): email 0, subject 0 and 1, email 1, ...
    made = [by_email(0), by_subject(0), by_subject(1), by_email(1), by_subject(2)]
    made += [by_subject(3), by_email(2), by_subject(4), by_subject(5)]
    assert [t.created_at for t in made] == sorted(t.created_at for t in made)
    newest = [t.pk for t in reversed(made)]

    (group,) = search(user=agent, query=query_parse("quota"), cap=4)
    assert [hit.url for hit in group.hits] == [
        reverse("admin:support_ticket_change", args=[pk]) for pk in newest[:4]
    ]
    assert (group.count, group.count_text) == (6, "5+")
    client.force_login(agent)
    response = get(client, "quota")
    html = response.content.decode()
    assert '<span class="od-chip">5+</span>' in html
    assert 'data-testid="search-count">5+ found' in html

    monkeypatch.setattr(selectors, "COUNT_CAP", 9)
    (group,) = search(user=agent, query=query_parse("quota"), cap=4)
    assert (group.count, group.count_text) == (9, "9")


def test_the_list_link_searches_the_changelist_for_the_same_rows(client, agent, records):
    client.force_login(agent)
    response = get(client, "jane.roe")
    [link] = re.findall(r'href="([^"]+)" data-testid="search-more"', response.content.decode())
    assert link == "/admin/customers/contact/?q=jane.roe"
    listed = client.get(link)
    assert listed.status_code == 200
    assert "jane.roe@acme.example" in listed.content.decode()


# --- Who searches what ---------------------------------------------------------------


@pytest.mark.parametrize("persona", ["agent", "manager", "ops_lead", "superuser"])
def test_every_role_searches_every_kind(client, records, persona, request):
    client.force_login(request.getfixturevalue(persona))
    assert list(shown(get(client, "acme"))) == ["customers", "contacts", "entitlements", "tickets"]


def test_an_account_manager_finds_customers_they_do_not_manage_as_the_list_shows_them(
    client, manager, other_manager, records
):
    client.force_login(other_manager)  # Bob does not manage Acme; the list shows it to him
    assert shown(get(client, "acme corp"))["customers"] == ["Acme Corp"]


def test_a_kind_the_person_may_not_view_is_not_searched(client, records, django_assert_num_queries):
    clerk = staff_user("carla")
    clerk.user_permissions.add(
        Permission.objects.get(codename="view_customer"),
        Permission.objects.get(codename="view_invoice"),
    )
    client.force_login(clerk)
    assert shown(get(client, "acme")) == {"customers": ["Acme Corp"]}
    # No order, ticket, entitlement nor contact is read: one query per kind viewed.
    query = query_parse("acme")
    # The permission checks (2), then the 2 kinds: the customers' rows and their count,
    # the invoices' rows (none match).
    with django_assert_num_queries(5):
        search(user=clerk, query=query)
    # Nor an exact hit of a kind it may not open.
    response = get(client, "ord_8f3k2m")
    assert response.status_code == 200 and shown(response) == {}


def test_staff_who_may_view_no_kind_are_refused(client):
    client.force_login(staff_user("nobody"))
    assert get(client, "acme").status_code == 403


def test_outsiders_are_sent_to_sign_in(client, outsider):
    client.force_login(outsider)
    response = get(client, "acme")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- The box, refusals and hostile input ---------------------------------------------


def test_an_empty_box_shows_examples(client, agent):
    client.force_login(agent)
    for params in ({}, {"q": ""}, {"q": "   "}):
        response = client.get(URL, params)
        assert response.status_code == 200
        html = response.content.decode()
        assert 'data-testid="search-examples"' in html
        assert '<a href="?q=K7QP-4XMD-9RTW">K7QP-4XMD-9RTW</a>' in html
        assert "search-refusal" not in html


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("ab", "Type at least 3 letters or digits in a row"),
        ("%", "Type at least 3 letters or digits in a row"),
        ("a_b%c", "Type at least 3 letters or digits in a row"),
        ("x" * 201, "That is too long to search for: up to 200 characters."),
        ("x" * 10_000, "That is too long to search for: up to 200 characters."),
        ("acme\x00", "control characters"),
        ("ac\x07me", "control characters"),
    ],
)
def test_a_query_it_cannot_look_up_is_refused_with_a_reason(client, agent, q, message):
    client.force_login(agent)
    response = get(client, q)
    assert response.status_code == 400
    [refusal] = re.findall(r'data-testid="search-refusal">(.*?)</p>', response.content.decode())
    assert message in refusal


@pytest.mark.parametrize(
    "q", ["100%", "abc_def", "back\\slash", "it's mine", '"quoted"', "%%%abc", "___abc"]
)
def test_like_wildcards_and_quotes_are_plain_text(client, agent, customer, q):
    builders.customer(name=f"Odd {q} name")
    builders.customer(name="Odd plain name")
    client.force_login(agent)
    response = get(client, q)
    assert response.status_code == 200
    assert shown(response)["customers"] == [f"Odd {q} name"]


def test_outside_text_is_escaped(client, agent):
    builders.customer(name="<script>alert(1)</script>", external_id="evil-1")
    client.force_login(agent)
    response = get(client, "<script>")
    html = response.content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'value="&lt;script&gt;"' in html


# --- The theme's search at the same address, and the palette --------------------------


def test_the_themes_menu_search_still_answers_at_the_address(client, agent):
    client.force_login(agent)
    response = client.get(URL, {"s": "triage"})
    assert response.status_code == 200
    assert "Triage" in response.content.decode()


def test_the_palette_lists_records_from_the_same_search(client, agent, records, rf):
    request = rf.get("/")
    request.user = agent
    results = palette_results(request, "acme corp")
    assert [(r.title, r.description, r.link, r.icon) for r in results] == [
        (
            "Acme Corp",
            "Customers · tenant acme-7f3a · CRM CRM-1001",
            reverse("admin:customers_customer_change", args=[records["ticket"].customer_id]),
            "apartment",
        ),
        (
            "Search everything for “acme corp”",
            "All matches, grouped by kind",
            "/admin/search/?q=acme+corp",
            "search",
        ),
    ]
    assert palette_results(request, "ab") == []


def test_the_palette_answers_through_the_theme(client, agent, records):
    client.force_login(agent)
    response = client.get(URL, {"s": "K7QP4XMD", "extended": "1"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "K7QP-4XMD-9RTW" in html
    assert reverse("admin:customers_entitlement_change", args=[records["entitlement"].pk]) in html


def test_the_palette_repeats_the_search_as_typed_not_lowercased(client, agent, records):
    """The theme lowercases the term before asking; the last entry quotes it as typed."""
    client.force_login(agent)
    response = client.get(URL, {"s": "Acme Corp", "extended": "1"})
    html = response.content.decode()
    assert "Search everything for “Acme Corp”" in html
    assert "/admin/search/?q=Acme+Corp" in html
