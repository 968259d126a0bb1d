"""Account migration applies only to what its preview showed: a ticket opened, a contact
added or a seat changed after the page was opened refuses the migration with what
changed, and nothing moves; a double click migrates once; two migrations of one
customer at the same time into two customers move it once."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.context import acting_as
from customers.entitlements import entitlement_assign
from customers.models import Contact, Customer, Entitlement
from opsdesk.account_migration.services import account_migrate
from tests import builders
from tests.concurrency import at_once, signed_in
from tests.opsdesk.account_migration.accounts import REASON, migrate_url, owners, world

STALE = "Nothing moved. This changed since you opened the preview: "


def previewed(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200 and response.context["preview"] is not None
    form = response.context["form"]
    # What the page's form carries (as a browser posts it back).
    return form["previewed"].value() if "previewed" in form.fields else ""


def change_open_ticket(acme):
    builders.ticket(customer=acme, subject="New one", status="open")


def change_contact(acme):
    builders.contact(customer=acme, name="Max", email="max@acme.com")


def change_seat(acme):
    entitlement_assign(
        entitlement=acme.entitlements.get(code="PRO-1"), email="lee@acme.com", reason="hire"
    )


def change_target_primary(acme):
    # Globex's primary contact leaves: Acme's primary would now stay primary.
    lou = Contact.objects.get(email="lou@globex.com")
    lou.is_primary = False
    lou.save()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "what"),
    [
        (change_open_ticket, "the open tickets of Acme Corp"),
        (change_contact, "the contacts of Acme Corp"),
        (change_seat, "the entitlements of Acme Corp"),
        (change_target_primary, "the contacts Globex already has"),
    ],
)
def test_a_migration_confirmed_after_what_moves_changed_is_refused(
    client, ops_lead, acme, globex, change, what
):
    client.force_login(ops_lead)
    url = migrate_url(acme, target=globex.pk)
    token = previewed(client, url)
    with acting_as("test:other person"):
        change(acme)
    before = world()

    response = client.post(url, {"target": globex.pk, "reason": REASON, "previewed": token})

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [f"{STALE}{what}; review it again."]
    assert world() == before
    assert "This changed since you opened the preview: " in response.content.decode()
    # The page shows what would move now; confirming that migrates it.
    fresh = response.context["form"]["previewed"].value()
    assert fresh != token
    again = client.post(url, {"target": globex.pk, "reason": REASON, "previewed": fresh})
    assert again.status_code == 302
    assert owners(acme)[:2] == (0, 0)


@pytest.mark.django_db
def test_a_migration_without_its_previews_token_moves_nothing(client, ops_lead, acme, globex):
    client.force_login(ops_lead)
    before = world()
    response = client.post(
        migrate_url(acme, target=globex.pk), {"target": globex.pk, "reason": REASON}
    )
    assert response.context["form"].non_field_errors() == [
        f"{STALE}the page does not say what it previewed; review it again."
    ]
    assert world() == before


@pytest.mark.django_db
def test_the_same_confirmation_posted_twice_migrates_once(client, ops_lead, acme, globex):
    client.force_login(ops_lead)
    url = migrate_url(acme, target=globex.pk)
    data = {"target": globex.pk, "reason": REASON, "previewed": previewed(client, url)}
    assert client.post(url, data).status_code == 302
    after_first = world()

    again = client.post(url, data)

    assert again.status_code == 200
    [error] = again.context["form"].non_field_errors()
    assert error.startswith(STALE + "the contacts of Acme Corp; the entitlements of Acme Corp")
    assert world() == after_first


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_migrations_of_one_customer_move_it_once(ops_lead, acme, globex):
    with acting_as("test:fixture"):
        initech = builders.customer(
            external_id="initech-1", name="Initech", status=Customer.Status.ACTIVE
        )
    targets = [globex, initech]
    clients = [signed_in(ops_lead) for _ in targets]
    urls = [migrate_url(acme, target=t.pk) for t in targets]
    tokens = [previewed(c, u) for c, u in zip(clients, urls, strict=True)]

    responses = at_once(
        2,
        lambda i: clients[i].post(
            urls[i], {"target": targets[i].pk, "reason": REASON, "previewed": tokens[i]}
        ),
    )

    assert sorted(r.status_code for r in responses) == [200, 302]
    [winner] = [t for t, r in zip(targets, responses, strict=True) if r.status_code == 302]
    assert set(Entitlement.objects.values_list("customer_id", flat=True)) == {winner.pk}
    # Every moved entitlement has exactly one move in its history.
    for entitlement in Entitlement.objects.all():
        assert entitlement.history.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_migrations_from_one_preview_apply_once(ops_lead, acme, globex):
    """The service on its own: both callers confirm the same preview's token."""
    from audit.previews import preview_token
    from opsdesk.account_migration.services import (
        account_migration_preview,
        migration_preview_state,
    )

    token = preview_token(
        migration_preview_state(account_migration_preview(source=acme, target=globex))
    )

    def migrate(i):
        with acting_as(f"test:thread {i}"):
            return account_migrate(
                source=acme, target=globex, reason=REASON, by=ops_lead, previewed=token
            )

    results = at_once(2, migrate)

    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and str(errors[0]).startswith(STALE)
    assert owners(acme)[:2] == (0, 0)
    assert Entitlement.history.filter(customer_id=globex.pk).count() == 4
