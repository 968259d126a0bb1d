"""A confirmation page's POST applies only to the state its preview showed: a stale preview
(the entitlement changed after the page was opened) is refused with what changed, and
nothing changes; ten simultaneous clicks on one "Reissue code" confirmation reissue once;
two simultaneous transfers of one entitlement move it once. The services are safe on
their own too: two concurrent reissues from one reading apply once."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.context import acting_as
from customers.entitlements import (
    EntitlementError,
    entitlement_assign,
    entitlement_reissue_code,
    entitlements_transfer,
)
from customers.models import Entitlement
from tests import builders
from tests.concurrency import at_once, signed_in
from tests.customers.seats import REASON, make, page, world

STALE = "Nothing changed. This changed since you opened the preview: "


def previewed(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    form = response.context["form"]
    # What the page's form carries (as a browser posts it back).
    return form["previewed"].value() if "previewed" in form.fields else ""


def history_rows(entitlement: Entitlement) -> list[tuple]:
    return list(
        entitlement.history.order_by("history_id").values_list(
            "history_type", "code", "customer_id", "state"
        )
    )


# --- A stale preview ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reissue_confirmed_after_the_code_changed_is_refused_and_changes_nothing(
    client, ops_lead, seats
):
    client.force_login(ops_lead)
    seat = seats["issued"]
    url = page("reissue", seat)
    token = previewed(client, url)
    with acting_as("test:other person"):
        entitlement_reissue_code(entitlement=seat, reason="code leaked")
    seat.refresh_from_db()
    before = world()

    response = client.post(url, {"reason": REASON, "previewed": token})

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        f"{STALE}ISSU-ED00-0001: its code; review it again."
    ]
    assert world() == before
    body = response.content.decode()
    assert "This changed since you opened the preview: ISSU-ED00-0001: its code" in body
    # The page now shows the entitlement as it is, and confirming that works.
    assert [row.entitlement.code for row in response.context["rows"]] == [seat.code]
    fresh = response.context["form"]["previewed"].value()
    assert fresh != token
    again = client.post(url, {"reason": REASON, "previewed": fresh})
    assert again.status_code == 302
    assert Entitlement.history.filter(id=seat.pk, history_type="~").count() == 2


@pytest.mark.django_db
def test_a_transfer_previewed_from_one_customer_is_refused_once_it_moved(
    client, ops_lead, seats, globex
):
    client.force_login(ops_lead)
    seat = seats["assigned"]
    initech = builders.customer(external_id="initech-1", name="Initech")
    url = page("transfer", seat, target=initech.pk)
    token = previewed(client, url)
    with acting_as("test:other person"):
        entitlements_transfer(entitlements=[seat], target=globex, reason="sold")
    before = world()

    response = client.post(url, {"target": initech.pk, "reason": REASON, "previewed": token})

    assert response.context["form"].non_field_errors() == [
        f"{STALE}ASSI-GNED-0001: its customer; review it again."
    ]
    assert world() == before
    assert Entitlement.objects.get(pk=seat.pk).customer == globex


@pytest.mark.django_db
def test_an_assignment_after_the_preview_refuses_a_revoke_of_what_was_shown(
    client, ops_lead, seats
):
    client.force_login(ops_lead)
    chosen = [seats["issued"], seats["issued2"]]
    url = page("revoke", *chosen)
    token = previewed(client, url)
    with acting_as("test:other person"):
        entitlement_assign(entitlement=seats["issued2"], email="lee@acme.com", reason="hire")
    before = world()

    response = client.post(url, {"reason": REASON, "previewed": token})

    assert response.context["form"].non_field_errors() == [
        f"{STALE}ISSU-ED00-0002: its state and assignee email; review it again."
    ]
    assert world() == before


@pytest.mark.django_db
@pytest.mark.parametrize("token", [None, "", "not-a-token", "e30:1vbad:signature"])
def test_a_confirmation_without_a_valid_token_is_refused(client, ops_lead, seats, token):
    client.force_login(ops_lead)
    before = world()
    data = {"reason": REASON} if token is None else {"reason": REASON, "previewed": token}
    response = client.post(page("reissue", seats["issued"]), data)
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        f"{STALE}the page does not say what it previewed; review it again."
    ]
    assert world() == before


@pytest.mark.django_db
def test_a_token_of_another_selection_is_refused(client, ops_lead, seats):
    client.force_login(ops_lead)
    token = previewed(client, page("revoke", seats["issued"]))
    before = world()
    response = client.post(
        page("revoke", seats["issued"], seats["issued2"]), {"reason": REASON, "previewed": token}
    )
    assert response.context["form"].non_field_errors() == [
        f"{STALE}ISSU-ED00-0002 is new; review it again."
    ]
    assert world() == before


# --- At the same time ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_reissue_confirmations_reissue_once(ops_lead, customer, product):
    seat = make(customer, product, "ISSU-ED00-0001")
    url = page("reissue", seat)
    clients = [signed_in(ops_lead) for _ in range(10)]
    token = previewed(clients[0], url)

    responses = at_once(10, lambda i: clients[i].post(url, {"reason": REASON, "previewed": token}))

    assert sorted(r.status_code for r in responses) == [200] * 9 + [302]
    refusals = {r.context["form"].non_field_errors()[0] for r in responses if r.status_code == 200}
    assert refusals == {f"{STALE}ISSU-ED00-0001: its code; review it again."}
    seat.refresh_from_db()
    assert seat.code != "ISSU-ED00-0001"
    assert [(kind, code) for kind, code, *_ in history_rows(seat)] == [
        ("+", "ISSU-ED00-0001"),
        ("~", seat.code),
    ]


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_transfers_of_one_entitlement_move_it_once(ops_lead, customer, product):
    seat = make(customer, product, "ISSU-ED00-0001")
    with acting_as("test:fixture"):
        targets = [
            builders.customer(external_id="globex-1", name="Globex"),
            builders.customer(external_id="initech-1", name="Initech"),
        ]
    clients = [signed_in(ops_lead) for _ in targets]
    urls = [page("transfer", seat, target=t.pk) for t in targets]
    tokens = [previewed(c, u) for c, u in zip(clients, urls, strict=True)]

    responses = at_once(
        2,
        lambda i: clients[i].post(
            urls[i], {"target": targets[i].pk, "reason": REASON, "previewed": tokens[i]}
        ),
    )

    assert sorted(r.status_code for r in responses) == [200, 302]
    [moved_to] = [t for t, r in zip(targets, responses, strict=True) if r.status_code == 302]
    [refused] = [r for r in responses if r.status_code == 200]
    assert refused.context["form"].non_field_errors() == [
        f"{STALE}ISSU-ED00-0001: its customer; review it again."
    ]
    seat.refresh_from_db()
    assert seat.customer == moved_to
    assert [customer_id for _, _, customer_id, _ in history_rows(seat)] == [
        customer.pk,
        moved_to.pk,
    ]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_reissues_from_one_reading_apply_once(customer, product):
    seat = make(customer, product, "ISSU-ED00-0001")
    readings = [Entitlement.objects.get(pk=seat.pk) for _ in range(2)]

    def reissue(i):
        with acting_as(f"test:thread {i}"):
            return entitlement_reissue_code(entitlement=readings[i], reason="code leaked").code

    results = at_once(2, reissue)

    [new_code] = [r for r in results if isinstance(r, str)]
    [error] = [r for r in results if isinstance(r, EntitlementError)]
    assert str(error) == ("ISSU-ED00-0001 changed since it was read (its code); look at it again.")
    seat.refresh_from_db()
    assert seat.code == new_code
    assert len(history_rows(seat)) == 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_transfers_from_one_reading_move_once(customer, product):
    seat = make(customer, product, "ISSU-ED00-0001")
    with acting_as("test:fixture"):
        targets = [
            builders.customer(external_id="globex-1", name="Globex"),
            builders.customer(external_id="initech-1", name="Initech"),
        ]
    readings = [Entitlement.objects.get(pk=seat.pk) for _ in targets]

    def transfer(i):
        with acting_as(f"test:thread {i}"):
            return entitlements_transfer(
                entitlements=[readings[i]], target=targets[i], reason="sold"
            )

    results = at_once(2, transfer)

    assert results.count(1) == 1
    [error] = [r for r in results if isinstance(r, EntitlementError)]
    seat.refresh_from_db()
    assert str(error) == (
        f"Nothing moved: ISSU-ED00-0001 has moved to {seat.customer} since it was read; "
        "look at it again."
    )
    assert len(history_rows(seat)) == 2
