"""Account migration from the customer page: pick the target, preview exactly what moves,
confirm with a reason; ops leads only; a problem blocks it and nothing moves."""

from __future__ import annotations

import pytest

from audit.context import acting_as
from customers.models import Contact, Entitlement, Product
from support.models import Ticket
from tests import builders
from tests.opsdesk.account_migration.accounts import REASON, migrate_url, owners, seat, world
from tests.pages import messages_of

pytestmark = pytest.mark.django_db


def confirm(client, url: str, data: dict):
    """POST the migration as a person does: from its preview, with the preview's token."""
    form = client.get(url).context["form"]
    return client.post(url, {**data, "previewed": form["previewed"].value()})


# --- Who is offered it ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "offered"),
    [
        ("agent", ["Audit timeline", "As of a date…"]),
        ("manager", ["Audit timeline", "As of a date…"]),
        ("ops_lead", ["Migrate account…", "Audit timeline", "As of a date…"]),
        ("superuser", ["Migrate account…", "Audit timeline", "As of a date…"]),
    ],
)
def test_the_customer_page_offers_migration_only_to_ops_leads(client, request, acme, role, offered):
    client.force_login(request.getfixturevalue(role))
    response = client.get(f"/admin/customers/customer/{acme.pk}/change/")
    assert response.status_code == 200
    assert "overview" in response.context  # still the registered overview page
    assert [a["title"] for a in response.context["actions_detail"]] == offered


@pytest.mark.parametrize("role", ["agent", "manager"])
def test_who_is_not_an_ops_lead_gets_403_and_nothing_moves(client, request, acme, globex, role):
    client.force_login(request.getfixturevalue(role))
    before = world()
    assert client.get(migrate_url(acme)).status_code == 403
    assert client.get(migrate_url(acme, target=globex.pk)).status_code == 403
    response = client.post(
        migrate_url(acme, target=globex.pk), {"target": globex.pk, "reason": REASON}
    )
    assert response.status_code == 403
    assert world() == before


# --- Pick, preview ------------------------------------------------------------------------


def test_the_first_step_asks_for_the_target_with_a_searchable_select(client, ops_lead, acme):
    client.force_login(ops_lead)
    response = client.get(migrate_url(acme))
    assert response.status_code == 200
    assert response.context["preview"] is None
    body = response.content.decode()
    assert 'class="admin-autocomplete"' in body and "Migrate into" in body
    assert 'data-testid="migration-form"' not in body


def test_the_preview_lists_exactly_what_moves(client, ops_lead, acme, globex):
    client.force_login(ops_lead)
    response = client.get(migrate_url(acme, target=globex.pk))

    assert response.status_code == 200
    preview = response.context["preview"]
    assert [c.email for c in preview.contacts] == ["pat@acme.com", "kim@acme.com"]
    assert [e.code for e in preview.entitlements] == ["PRO-1", "PRO-2", "PRO-3", "VIEW-1"]
    assert [t.subject for t in preview.open_tickets] == ["Export stuck", "SSO"]
    assert preview.demoted_primary.email == "pat@acme.com"
    assert [(c.product, c.by_state, c.total) for c in response.context["counts"]] == [
        # issued, assigned, redeemed, revoked, expired
        ("Pro seat", [1, 1, 0, 1, 0], 3),
        ("Viewer seat", [1, 0, 0, 0, 0], 1),
    ]
    body = response.content.decode()
    for shown in [
        'data-testid="count-contacts">2<',
        'data-testid="count-entitlements">4<',
        'data-testid="count-tickets">2<',
        "moves; no longer the primary contact (Globex has one)",
        "Export stuck",
        "PRO-3",
        "Migrate Acme Corp into Globex",
    ]:
        assert shown in body
    assert "Old" not in body.split('data-testid="migration-tickets"')[1].split("</section>")[0]
    assert world()[0][0] == ("kim@acme.com", acme.pk, False)  # the preview moved nothing


def test_the_preview_costs_the_same_for_a_small_or_a_big_customer(
    client, ops_lead, acme, globex, django_assert_num_queries
):
    client.force_login(ops_lead)
    client.get(migrate_url(acme, target=globex.pk))  # warm the session and permissions
    with django_assert_num_queries(12):
        client.get(migrate_url(acme, target=globex.pk))
    product = Product.objects.get(sku="SEAT-VIEW")
    with acting_as("test:fixture"):
        for n in range(30):
            seat(acme, product, f"MORE-{n}")
            builders.ticket(customer=acme, subject=f"More {n}")
            builders.contact(customer=acme, name=f"P{n}", email=f"p{n}@acme.com")
    with django_assert_num_queries(12):
        response = client.get(migrate_url(acme, target=globex.pk))
    assert len(response.context["preview"].entitlements) == 34


def test_a_conflict_blocks_the_migration_with_its_message(client, ops_lead, acme, globex):
    builders.contact(customer=globex, name="Kim G", email="KIM@acme.com")
    client.force_login(ops_lead)
    response = client.get(migrate_url(acme, target=globex.pk))
    problem = "Globex already has a contact kim@acme.com; merge or remove one first."
    assert response.context["preview"].problems == [problem]
    body = response.content.decode()
    assert problem in body
    assert "blocks the migration: Globex already has kim@acme.com" in body
    assert 'data-testid="migration-form"' not in body

    before = world()
    response = client.post(
        migrate_url(acme, target=globex.pk), {"target": globex.pk, "reason": REASON}
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [f"Nothing moved. {problem}"]
    assert world() == before


def test_migrating_a_customer_into_itself_is_refused(client, ops_lead, acme):
    client.force_login(ops_lead)
    response = client.get(migrate_url(acme, target=acme.pk))
    assert response.context["target_form"].errors == {
        "target": ["Pick another customer than the one migrated."]
    }
    assert response.context["preview"] is None
    before = world()
    response = client.post(migrate_url(acme, target=acme.pk), {"target": acme.pk, "reason": "x"})
    assert (
        response.context["form"]
        .non_field_errors()[0]
        .startswith("Nothing moved. A customer cannot be migrated into itself.")
    )
    assert world() == before


def test_an_unknown_target_says_so(client, ops_lead, acme):
    client.force_login(ops_lead)
    response = client.get(migrate_url(acme, target=999999))
    assert response.status_code == 200
    assert response.context["target_form"].errors == {
        "target": ["That customer does not exist; pick another."]
    }
    assert response.context["preview"] is None


# --- Run ----------------------------------------------------------------------------------


def test_without_a_reason_nothing_moves_and_the_form_says_why(client, ops_lead, acme, globex):
    client.force_login(ops_lead)
    before = world()
    response = client.post(migrate_url(acme, target=globex.pk), {"target": globex.pk})
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "reason": ["Give a reason: it is kept in the history of every record that moves."]
    }
    assert world() == before


def test_an_ops_lead_migrates_everything_the_preview_listed(client, ops_lead, acme, globex):
    case = builders.case(customer=acme, summary="Merge accounts")
    client.force_login(ops_lead)
    response = confirm(
        client,
        migrate_url(acme, target=globex.pk),
        {"target": globex.pk, "reason": REASON, "done_for": f"case {case.pk}"},
    )

    assert response.status_code == 302
    assert response.url == f"/admin/customers/customer/{globex.pk}/change/"
    assert messages_of(response) == [
        "Migrated Acme Corp into Globex: 2 contacts, 4 entitlements and 2 open tickets "
        f"moved. Pat stays a contact but is no longer the primary one. (for case #{case.pk})"
    ]
    assert owners(globex) == (3, 4, 2)
    assert owners(acme) == (0, 0, 1)  # the solved ticket stays
    assert not Contact.objects.get(email="pat@acme.com").is_primary
    why = f"account migration from Acme Corp to Globex: {REASON}"
    for record in [
        Entitlement.objects.get(code="PRO-1").history.latest(),
        Contact.objects.get(email="kim@acme.com").history.latest(),
        Ticket.objects.get(subject="SSO").history.latest(),
    ]:
        assert (record.history_actor, record.history_change_reason, record.history_for) == (
            "olga",
            why,
            f"support.case:{case.pk}",
        )
