"""Rules of customers/ that other apps use, each kept in one place: the current contract,
the states each entitlement and order action starts from, and the customer search.

Each had copies (support's queue, triage and ticket page; the entitlement services, the
admin's workflows and the ops inbox's resolutions; three "name or tenant id" filters).
These tests pin the rule itself and, by changing the one table, that every user follows it.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.context import acting_as
from customers import entitlements, orders
from customers.admin_workflows import WORKFLOWS
from customers.models import Customer, Entitlement, Order, Product
from customers.selectors import contract_current, customer_match_q, renewal_is_soon
from opsdesk.casework.resolutions import resolutions_for
from support.models import Case
from tests import builders
from tests.records import active_contract

pytestmark = pytest.mark.django_db

State = Entitlement.State


# --- The current contract ------------------------------------------------------------


@pytest.fixture
def initech(db) -> Customer:
    with acting_as("test:fixture"):
        return builders.customer(external_id="initech-9", name="Initech")


@pytest.mark.parametrize(
    ("contracts", "current"),
    [
        pytest.param(
            [("growth", "active", 2025), ("enterprise", "draft", 2027), ("starter", "ended", 2026)],
            "growth",
            id="the active one even when a later one exists",
        ),
        pytest.param(
            [("growth", "active", 2025), ("starter", "active", 2026)],
            "starter",
            id="of two active ones the one that started last",
        ),
        pytest.param(
            [("growth", "ended", 2024), ("starter", "ended", 2025)],
            "starter",
            id="without an active one the latest",
        ),
        pytest.param(
            [("growth", "ended", 2025), ("enterprise", "cancelled", 2026)],
            "enterprise",
            id="the latest whatever its status",
        ),
        pytest.param(
            [("growth", "ended", 2025), ("starter", "ended", 2025)],
            "starter",
            id="a tie on the start date goes to the one made last",
        ),
    ],
)
def test_the_current_contract_is_the_active_one_else_the_latest(initech, contracts, current):
    for plan, status, year in contracts:
        active_contract(initech, plan=plan, status=status, start_date=dt.date(year, 1, 1))
    assert contract_current(customer=initech).plan == current


def test_a_customer_without_contracts_has_no_current_contract(initech, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert contract_current(customer=initech) is None


# --- Customer by name or tenant id ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme", ["Acme Corp"]),
        ("  CORP ", ["Acme Corp"]),
        ("ACME-7F3A", ["Acme Corp"]),
        ("acme-7f", []),  # a tenant id matches whole, not in part
        ("globex-1", ["Globex"]),
        ("o", ["Acme Corp", "Globex"]),
        ("nobody", []),
    ],
)
def test_a_customer_matches_by_part_of_its_name_or_its_whole_tenant_id(customer, text, expected):
    with acting_as("test:fixture"):
        globex = builders.customer(external_id="globex-1", name="Globex")
        for who in (customer, globex):
            builders.case(kind=Case.Kind.MISSING_INVOICE, customer=who, summary=who.name)
    found = Customer.objects.filter(customer_match_q(text)).order_by("name")
    assert [c.name for c in found] == expected
    # The same rule through a relation (the inbox's and the audit log's filters).
    cases = Case.objects.filter(customer_match_q(text, prefix="customer__")).order_by("summary")
    assert [c.summary for c in cases] == expected


# --- Which states allow which entitlement action -------------------------------------

# docs/product.md "Entitlement workflows" and "Entitlements".
DOCUMENTED = {
    "assign": {"issued"},
    "reassign": {"assigned"},
    "redeem": {"issued", "assigned"},
    "revoke": {"issued", "assigned", "redeemed"},
    "reissue": {"issued", "assigned"},
    "transfer": {"issued", "assigned", "redeemed"},
    "expire": {"issued", "assigned", "redeemed"},
}


def test_the_entitlement_action_table_is_the_documented_one():
    assert {k: set(v) for k, v in entitlements.ENTITLEMENT_ACTIONS.items()} == DOCUMENTED
    # Every workflow of the admin is an action of the table, under the same key.
    assert {key: w.states for key, w in WORKFLOWS.items()} == {
        key: entitlements.ENTITLEMENT_ACTIONS[key] for key in WORKFLOWS
    }


@pytest.fixture
def product(db) -> Product:
    with acting_as("test:fixture"):
        return builders.product(sku="SEAT-PRO-1Y", name="Pro seat", term_days=365)


def seat(customer: Customer, product: Product, state: str) -> Entitlement:
    """Ann's seat in ``state`` (the builder fills what the state needs: redeemed or
    revoked now, revoked as "refunded"); a redeemed seat was assigned to Ann first."""
    fields = {}
    if state in (State.ASSIGNED, State.REDEEMED):
        fields.update(assignee_email="ann@acme.com", assigned_at=timezone.now())
    if state == State.REDEEMED:
        fields.update(redeemed_by_email="ann@acme.com")
    with acting_as("test:fixture"):
        return builders.entitlement(
            customer=customer,
            product=product,
            code=f"{state[:4].upper()}-0000-0001",
            state=state,
            **fields,
        )


def redemption_case(entitlement: Entitlement) -> Case:
    with acting_as("test:fixture"):
        return builders.case(
            kind=Case.Kind.PROBLEM_REDEMPTION,
            customer=entitlement.customer,
            subject=entitlement,
            summary=f"{entitlement.code} redeemed by bob@acme.com",
            details={
                "tenant_id": entitlement.customer.external_id,
                "email": "bob@acme.com",
                "redeemed_at": timezone.now().isoformat(),
            },
        )


def offered(client, entitlement: Entitlement) -> list[str]:
    response = client.get(f"/admin/customers/entitlement/{entitlement.pk}/change/")
    return [a["title"] for a in response.context["actions_detail"]]


def test_the_services_the_admin_and_the_inbox_all_follow_the_one_table(
    client, ops_lead, customer, product, monkeypatch
):
    """Narrowing "revoke" to issued and assigned in the table alone: a redeemed seat's
    page stops offering revoke, the service refuses it, and the inbox's revoke and reissue
    is unavailable; widening "reissue" to redeemed offers it there."""
    client.force_login(ops_lead)
    redeemed = seat(customer, product, State.REDEEMED)
    case = redemption_case(redeemed)
    assert offered(client, redeemed) == ["Revoke…", "Transfer…"]
    why = {entry.key: why_not for entry, why_not in resolutions_for(case)}
    assert why["revoke_reissue"] == ""

    monkeypatch.setitem(entitlements.ENTITLEMENT_ACTIONS, "revoke", (State.ISSUED, State.ASSIGNED))
    monkeypatch.setitem(entitlements.ENTITLEMENT_ACTIONS, "reissue", entitlements.LIVE)

    assert offered(client, redeemed) == ["Reissue code…", "Transfer…"]
    why = {entry.key: why_not for entry, why_not in resolutions_for(case)}
    assert why["revoke_reissue"] == "REDE-0000-0001 is redeemed already."
    with pytest.raises(entitlements.EntitlementError) as refused:
        entitlements.entitlement_revoke(entitlement=redeemed, reason="leaked")
    assert str(refused.value) == (
        "REDE-0000-0001 is redeemed; only issued or assigned entitlements can be revoked."
    )
    redeemed.refresh_from_db()
    assert redeemed.state == State.REDEEMED


@pytest.mark.parametrize("state", [s.value for s in State])
def test_the_inbox_offers_accept_and_replace_by_the_redeem_and_revoke_rows(
    customer, product, state
):
    case = redemption_case(seat(customer, product, state))
    why = {entry.key: why_not for entry, why_not in resolutions_for(case)}
    assert (why["accept"] == "") == (state in DOCUMENTED["redeem"])
    assert (why["revoke_reissue"] == "") == (state in DOCUMENTED["revoke"])


# --- Which fulfilment states allow which order action --------------------------------


def failed_order_case(customer: Customer, fulfilment: str) -> Case:
    with acting_as("test:fixture"):
        # Of SEAT-PRO-1Y, no product in opsdesk; a refunded order is refunded now.
        order = builders.order(
            external_id="ord_1", customer=customer, sku="SEAT-PRO-1Y", fulfilment=fulfilment
        )
        return builders.case(
            kind=Case.Kind.FAILED_FULFILMENT,
            customer=customer,
            subject=order,
            summary="ord_1 could not be fulfilled",
        )


def test_the_order_action_table_is_pending_or_failed_for_both_actions():
    assert {k: set(v) for k, v in orders.ORDER_ACTIONS.items()} == {
        "fulfil": {"pending", "failed"},
        "refund": {"pending", "failed"},
    }


@pytest.mark.parametrize("fulfilment", [f.value for f in Order.Fulfilment])
def test_the_inbox_offers_fulfil_and_refund_by_the_order_table(customer, fulfilment):
    case = failed_order_case(customer, fulfilment)
    why = {entry.key: why_not for entry, why_not in resolutions_for(case)}
    allowed = fulfilment in ("pending", "failed")
    label = Order.Fulfilment(fulfilment).label.lower()
    expected = "" if allowed else f"Order ord_1 is {label} already."
    assert why == {"fulfil": expected, "refund": expected}


def test_the_order_services_and_the_inbox_follow_the_one_table(
    customer, product, ops_lead, monkeypatch
):
    case = failed_order_case(customer, Order.Fulfilment.FAILED)
    monkeypatch.setitem(orders.ORDER_ACTIONS, "refund", (Order.Fulfilment.PENDING,))
    why = {entry.key: why_not for entry, why_not in resolutions_for(case)}
    assert why == {"fulfil": "", "refund": "Order ord_1 is failed already."}
    with pytest.raises(orders.OrderError):
        orders.order_record_refund(order=case.subject, reference="cn_1", reason="refunded")
    case.subject.refresh_from_db()
    assert case.subject.fulfilment == Order.Fulfilment.FAILED


@pytest.mark.parametrize(
    ("days_left", "window", "soon"),
    [(None, 30, False), (-1, 30, False), (0, 30, True), (30, 30, True), (31, 30, False),
     (45, 45, True), (0, 0, True), (1, 0, False)],
)  # fmt: skip
def test_renewal_is_soon_within_the_window_that_day_included(settings, days_left, window, soon):
    settings.OPSDESK_HEALTH_RENEWAL_DAYS = window
    assert renewal_is_soon(days_left) is soon
