"""Resolving cases raised by real product events, through the resolution registry.

A resolution fixes the problem through the owning app's service and closes the case with
the note, in one transaction: every history row it writes names the person and the case.
A refusal raises ``ResolutionError`` and changes nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import Permission, User

from audit.context import acting_as, acting_as_user, record_label
from customers.entitlements import entitlement_reassign, entitlement_revoke
from customers.models import Customer, Entitlement, Order, Product
from opsdesk.casework.resolutions import (
    RESOLUTIONS,
    FulfilForm,
    NoFields,
    RefundForm,
    ResolutionError,
    case_resolve,
    resolutions_for,
)
from support.models import Case
from tests import builders
from tests.opsdesk.casework.cases import redemption_case
from tests.support.sender import REDEEMED_AT, deliver, order_completed

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
NOTE = "Checked with the customer's admin."
HISTORIES = (Order, Entitlement, Case)


@pytest.fixture
def unknown_tenant_case(product) -> Case:
    """ord_1001 (3 × SEAT-PRO-1Y) from a tenant opsdesk does not know: failed, a case."""  # noqa: RUF002
    deliver(order_completed(tenant_id="nobody-0000"), "msg_order")
    return Case.objects.get(kind=Case.Kind.FAILED_FULFILMENT)


def everything() -> tuple:
    """Orders, entitlements and cases as stored, with their history counts."""
    return (
        list(
            Order.objects.order_by("pk").values_list(
                "pk", "customer_id", "product_id", "fulfilment", "refunded_at", "refund_reference"
            )
        ),
        list(
            Entitlement.objects.order_by("pk").values_list(
                "pk",
                "code",
                "customer_id",
                "state",
                "assignee_email",
                "redeemed_by_email",
                "redeemed_at",
                "revoked_at",
            )
        ),
        list(
            Case.objects.order_by("pk").values_list(
                "pk", "state", "owner_id", "closed_at", "closing_note"
            )
        ),
        [model.history.count() for model in HISTORIES],
    )


def marks() -> dict:
    """Where each history table ends now, to find the rows a resolution writes."""
    return {
        model: model.history.order_by("-history_id").values_list("history_id", flat=True).first()
        or 0
        for model in HISTORIES
    }


def written_since(mark: dict) -> dict[str, list]:
    return {
        model.__name__: list(
            model.history.filter(history_id__gt=mark[model]).order_by("history_id")
        )
        for model in HISTORIES
    }


def attribution(rows) -> set[tuple]:
    return {(r.history_actor, r.history_user_id, r.history_for) for r in rows}


def run(case: Case, key: str, by: User, note: str = NOTE, **data) -> tuple[Case, str]:
    with time_machine.travel(NOW, tick=False), acting_as_user(by):
        return case_resolve(case=case, key=key, data=data, note=note, by=by)


def refused(case: Case, key: str, by: User, note: str = NOTE, **data) -> str:
    """Run a resolution that must be refused; returns why, after checking nothing changed."""
    before = everything()
    with pytest.raises(ResolutionError) as error:
        run(case, key, by, note, **data)
    assert everything() == before
    return str(error.value)


# --- The registry -------------------------------------------------------------------------


def test_each_kind_names_its_own_resolutions():
    entries = {(kind, key): entry.label for (kind, key), entry in RESOLUTIONS.items()}
    assert {
        k: v for k, v in entries.items() if k[0] in {"failed_fulfilment", "problem_redemption"}
    } == {
        ("failed_fulfilment", "fulfil"): "Fulfil now",
        ("failed_fulfilment", "refund"): "Record refund",
        ("problem_redemption", "accept"): "Accept redemption",
        ("problem_redemption", "revoke_reissue"): "Revoke and reissue",
    }
    assert {
        key: (entry.permission, entry.form_class)
        for (_, key), entry in RESOLUTIONS.items()
        if key in {"fulfil", "refund", "accept", "revoke_reissue"}
    } == {
        "fulfil": ("customers.change_order", FulfilForm),
        "refund": ("customers.change_order", RefundForm),
        "accept": ("customers.change_entitlement", NoFields),
        "revoke_reissue": ("customers.change_entitlement", NoFields),
    }


def test_a_failed_fulfilment_offers_fulfil_and_refund(unknown_tenant_case):
    assert [(entry.key, why) for entry, why in resolutions_for(unknown_tenant_case)] == [
        ("fulfil", ""),
        ("refund", ""),
    ]


def test_a_kind_without_actions_of_its_own_offers_none(customer):
    # Billing findings close with a note or are waived until billing registers its own.
    case = builders.case(kind=Case.Kind.MISSING_INVOICE, customer=customer, summary="x")
    assert resolutions_for(case) == []


# --- Failed fulfilment: fulfil now --------------------------------------------------------


def test_fulfil_now_issues_the_order_to_the_customer_chosen_and_resolves_the_case(
    unknown_tenant_case, customer, product, ops_lead
):
    case = unknown_tenant_case
    order = Order.objects.get()
    assert (order.fulfilment, case.owner) == ("failed", None)
    mark = marks()

    closed, done = run(case, "fulfil", ops_lead, customer=customer, product=product)

    assert done == "Fulfilled: 3 × SEAT-PRO-1Y issued to Acme Corp."  # noqa: RUF001
    order.refresh_from_db()
    assert (order.fulfilment, order.customer, order.product) == ("fulfilled", customer, product)
    assert [
        (e.order, e.customer, e.product, e.state, e.valid_from, e.valid_until)
        for e in Entitlement.objects.all()
    ] == [(order, customer, product, "issued", dt.date(2026, 11, 21), dt.date(2027, 11, 21))] * 3
    case.refresh_from_db()
    assert closed == case
    assert (case.state, case.owner, case.closed_at, case.closing_note) == (
        "resolved",
        ops_lead,
        NOW,
        f"{done} {NOTE}",
    )

    rows = written_since(mark)
    reason = f"fulfilled by hand (case #{case.pk})"
    assert [(r.history_type, r.fulfilment, r.history_change_reason) for r in rows["Order"]] == [
        ("~", "fulfilled", reason)
    ]
    assert [(r.history_type, r.history_change_reason) for r in rows["Entitlement"]] == [
        ("+", reason)
    ] * 3
    # The case had no customer (the tenant was unknown): now it has the one chosen.
    assert [
        (r.history_type, r.state, r.customer_id, r.history_change_reason) for r in rows["Case"]
    ] == [
        ("~", "open", customer.pk, "the order's customer was chosen"),
        ("~", "resolved", customer.pk, f"{done} {NOTE}"),
    ]
    every_row = [row for model_rows in rows.values() for row in model_rows]
    assert attribution(every_row) == {("olga", ops_lead.pk, f"support.case:{case.pk}")}
    assert record_label(case) == f"support.case:{case.pk}"


def test_fulfil_now_proposes_what_the_order_named_when_opsdesk_knows_it(
    unknown_tenant_case, customer, product
):
    [fulfil, _] = [entry for entry, _ in resolutions_for(unknown_tenant_case)]
    # An unknown tenant: ops picks the customer; the SKU's product is proposed.
    assert fulfil.initial(unknown_tenant_case) == {"customer": None, "product": product}


def test_fulfil_now_proposes_no_retired_product(customer, product):
    with acting_as("test:fixture"):
        product.status = Product.Status.RETIRED
        product.save()
    deliver(order_completed())
    case = Case.objects.get()
    assert RESOLUTIONS["failed_fulfilment", "fulfil"].initial(case) == {
        "customer": customer,
        "product": None,
    }


def test_fulfil_now_to_a_churned_customer_is_refused(
    unknown_tenant_case, customer, product, ops_lead
):
    with acting_as("test:fixture"):
        customer.status = Customer.Status.CHURNED
        customer.save()

    why = refused(unknown_tenant_case, "fulfil", ops_lead, customer=customer, product=product)

    assert why == "Acme Corp has churned; pick a live customer."


def test_an_order_fulfilled_meanwhile_offers_no_fulfil_or_refund(
    unknown_tenant_case, customer, product, ops_lead
):
    from customers.orders import order_fulfil

    with acting_as_user(ops_lead):
        order_fulfil(
            order=Order.objects.get(),
            customer=customer,
            product=product,
            reason="by hand",
            by=ops_lead,
        )

    why_not = "Order ord_1001 is fulfilled already."
    assert [(e.key, why) for e, why in resolutions_for(unknown_tenant_case)] == [
        ("fulfil", why_not),
        ("refund", why_not),
    ]
    assert (
        refused(unknown_tenant_case, "fulfil", ops_lead, customer=customer, product=product)
        == why_not
    )
    assert refused(unknown_tenant_case, "refund", ops_lead, reference="cn_1") == why_not


# --- Failed fulfilment: record refund -----------------------------------------------------


def test_record_refund_closes_the_order_as_refunded_and_resolves_the_case(
    unknown_tenant_case, ops_lead
):
    case = unknown_tenant_case
    mark = marks()

    closed, done = run(case, "refund", ops_lead, reference="cn_2026_0042")

    assert done == "Refund cn_2026_0042 recorded for order ord_1001."
    order = Order.objects.get()
    assert (order.fulfilment, order.refunded_at, order.refund_reference, order.customer) == (
        "refunded",
        NOW,
        "cn_2026_0042",
        None,
    )
    assert not Entitlement.objects.exists()
    assert (closed.state, closed.owner, closed.closing_note) == (
        "resolved",
        ops_lead,
        f"{done} {NOTE}",
    )
    rows = written_since(mark)
    assert [(r.fulfilment, r.history_change_reason) for r in rows["Order"]] == [
        ("refunded", f"refunded (case #{case.pk})")
    ]
    assert rows["Entitlement"] == []
    assert [r.state for r in rows["Case"]] == ["resolved"]
    assert attribution([*rows["Order"], *rows["Case"]]) == {
        ("olga", ops_lead.pk, f"support.case:{case.pk}")
    }


# --- Problem redemption: accept -----------------------------------------------------------


def test_a_wrong_user_redemption_opens_a_case_recording_who_and_when(wrong_user_case, assigned):
    assert (wrong_user_case.subject, wrong_user_case.details) == (
        assigned,
        {
            "code": assigned.code,
            "email": "bob@acme.com",
            "redeemed_at": "2026-11-21T09:30:00+00:00",
            "tenant_id": "acme-7f3a",
        },
    )
    assert [(e.key, why) for e, why in resolutions_for(wrong_user_case)] == [
        ("accept", ""),
        ("revoke_reissue", ""),
    ]


def test_accept_moves_the_seat_to_who_redeemed_it_and_redeems_it_as_the_product_said(
    wrong_user_case, assigned, ops_lead
):
    case = wrong_user_case
    mark = marks()

    closed, done = run(case, "accept", ops_lead)

    code = assigned.code
    assert done == f"{code} moved from ann@acme.com to bob@acme.com and redeemed."
    assigned.refresh_from_db()
    assert (
        assigned.code,
        assigned.state,
        assigned.assignee_email,
        assigned.redeemed_by_email,
        assigned.redeemed_at,
    ) == (code, "redeemed", "bob@acme.com", "bob@acme.com", REDEEMED_AT)
    assert (closed.state, closed.owner, closed.closing_note) == (
        "resolved",
        ops_lead,
        f"{done} {NOTE}",
    )
    rows = written_since(mark)
    reason = f"redemption by bob@acme.com accepted (case #{case.pk})"
    assert [
        (r.history_type, r.state, r.assignee_email, r.redeemed_by_email, r.history_change_reason)
        for r in rows["Entitlement"]
    ] == [
        ("~", "assigned", "bob@acme.com", "", reason),
        ("~", "redeemed", "bob@acme.com", "bob@acme.com", reason),
    ]
    assert rows["Order"] == []
    assert [r.state for r in rows["Case"]] == ["resolved"]
    assert attribution([*rows["Entitlement"], *rows["Case"]]) == {
        ("olga", ops_lead.pk, f"support.case:{case.pk}")
    }


def test_accept_only_redeems_a_seat_already_reassigned_to_who_redeemed_it(
    wrong_user_case, assigned, ops_lead
):
    with acting_as_user(ops_lead):
        entitlement_reassign(entitlement=assigned, email="bob@acme.com", reason="typo", by=ops_lead)
    mark = marks()

    _, done = run(wrong_user_case, "accept", ops_lead)

    assert done == f"{assigned.code} redeemed by bob@acme.com."
    assigned.refresh_from_db()
    assert (assigned.state, assigned.redeemed_by_email, assigned.redeemed_at) == (
        "redeemed",
        "bob@acme.com",
        REDEEMED_AT,
    )
    assert [r.state for r in written_since(mark)["Entitlement"]] == ["redeemed"]


def test_an_unknown_code_can_be_neither_accepted_nor_replaced(customer, ops_lead):
    case = redemption_case("K7QP-4XMD-9RTW", user_email="bob@acme.com")

    assert [(e.key, why) for e, why in resolutions_for(case)] == [
        ("accept", "The code matches no entitlement, so there is no seat to give."),
        ("revoke_reissue", "The code matches no entitlement, so there is nothing to revoke."),
    ]
    assert refused(case, "accept", ops_lead) == (
        "The code matches no entitlement, so there is no seat to give."
    )
    assert refused(case, "revoke_reissue", ops_lead) == (
        "The code matches no entitlement, so there is nothing to revoke."
    )


def test_a_revoked_seat_can_be_neither_accepted_nor_replaced(assigned, ops_lead):
    with acting_as("test:fixture"):
        entitlement_revoke(entitlement=assigned, reason="refunded")
    case = redemption_case(assigned.code)
    code = assigned.code

    assert [(e.key, why) for e, why in resolutions_for(case)] == [
        ("accept", f"{code} is revoked: it cannot be redeemed again."),
        ("revoke_reissue", f"{code} is revoked already."),
    ]
    assert refused(case, "accept", ops_lead) == f"{code} is revoked: it cannot be redeemed again."
    assert refused(case, "revoke_reissue", ops_lead) == f"{code} is revoked already."


def test_another_tenants_code_is_not_accepted(assigned, ops_lead):
    builders.customer(external_id="globex-1", name="Globex")
    case = redemption_case(assigned.code, tenant_id="globex-1", user_email="bob@globex.com")

    why = "The code belongs to Acme Corp, not to the redeeming tenant."
    assert [(e.key, reason) for e, reason in resolutions_for(case)] == [
        ("accept", why),
        ("revoke_reissue", ""),
    ]
    assert refused(case, "accept", ops_lead) == why


def test_a_redemption_after_the_seat_ended_is_not_accepted(assigned, ops_lead):
    case = redemption_case(
        assigned.code, user_email="bob@acme.com", redeemed_at="2027-11-02T00:00:00Z"
    )

    why = f"{assigned.code} ended on 01 Nov 2027."
    assert [(e.key, reason) for e, reason in resolutions_for(case)] == [
        ("accept", why),
        ("revoke_reissue", ""),
    ]
    assert refused(case, "accept", ops_lead) == why


# --- Problem redemption: revoke and reissue ----------------------------------------------


def test_revoke_and_reissue_stops_the_code_and_gives_the_assignee_a_fresh_one(
    wrong_user_case, assigned, ops_lead
):
    case = wrong_user_case
    old_code = assigned.code
    mark = marks()

    closed, done = run(case, "revoke_reissue", ops_lead)

    assigned.refresh_from_db()
    new = Entitlement.objects.exclude(pk=assigned.pk).get()
    reason = f"code {old_code} used by someone else (case #{case.pk})"
    assert done == f"{old_code} revoked; {new.code} issued in its place, assigned to ann@acme.com."
    assert (assigned.code, assigned.state, assigned.revoked_at, assigned.revoke_reason) == (
        old_code,
        "revoked",
        NOW,
        reason,
    )
    assert new.code != old_code
    assert (
        new.order,
        new.customer,
        new.product,
        new.state,
        new.assignee_email,
        new.assigned_at,
        new.valid_from,
        new.valid_until,
    ) == (
        assigned.order,
        assigned.customer,
        assigned.product,
        "assigned",
        "ann@acme.com",
        NOW,
        assigned.valid_from,
        assigned.valid_until,
    )
    assert (closed.state, closed.owner, closed.closing_note) == (
        "resolved",
        ops_lead,
        f"{done} {NOTE}",
    )
    rows = written_since(mark)
    assert [
        (r.id, r.history_type, r.state, r.history_change_reason) for r in rows["Entitlement"]
    ] == [
        (assigned.pk, "~", "revoked", reason),
        (new.pk, "+", "assigned", f"replaces {old_code}: {reason}"),
    ]
    assert attribution([*rows["Entitlement"], *rows["Case"]]) == {
        ("olga", ops_lead.pk, f"support.case:{case.pk}")
    }


# --- Refusals common to every resolution -------------------------------------------------


@pytest.mark.parametrize("note", ["", "  \n "])
def test_a_resolution_needs_a_note(wrong_user_case, ops_lead, note):
    why = refused(wrong_user_case, "accept", ops_lead, note=note)
    assert why == "Say how it was resolved: a case closes with a note."


@pytest.mark.parametrize("state", ["resolved", "waived"])
def test_a_closed_case_is_not_resolved_again(wrong_user_case, ops_lead, state):
    with acting_as("test:fixture"):
        wrong_user_case.state = state
        wrong_user_case.closed_at = NOW
        wrong_user_case.closing_note = "bob is ann's delegate"
        wrong_user_case.save()
    stale = Case.objects.get(pk=wrong_user_case.pk)
    stale.state = Case.State.OPEN  # read before it was closed

    assert refused(stale, "accept", ops_lead) == f"Case #{stale.pk} is {state} already."
    assert refused(stale, "revoke_reissue", ops_lead) == f"Case #{stale.pk} is {state} already."


def test_an_action_of_another_kind_is_refused(unknown_tenant_case, ops_lead):
    why = refused(unknown_tenant_case, "accept", ops_lead)
    assert why == "Failed fulfilment cases have no action 'accept'."


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_people_who_only_view_cases_may_not_resolve_them(
    request, unknown_tenant_case, wrong_user_case, customer, product, persona
):
    user = request.getfixturevalue(persona)

    may_not = "You may not close cases: it needs the permission support.change_case"
    assert refused(unknown_tenant_case, "fulfil", user, customer=customer, product=product) == (
        may_not
    )
    assert refused(unknown_tenant_case, "refund", user, reference="cn_1") == may_not
    assert refused(wrong_user_case, "accept", user) == may_not
    assert refused(wrong_user_case, "revoke_reissue", user) == may_not


def test_a_case_worker_without_the_actions_permission_is_refused(
    unknown_tenant_case, wrong_user_case, customer, product
):
    """May work cases, may not change orders or entitlements."""
    worker = User.objects.create_user(username="wes", is_staff=True)
    worker.user_permissions.add(Permission.objects.get(codename="change_case"))

    assert refused(unknown_tenant_case, "fulfil", worker, customer=customer, product=product) == (
        "You may not fulfil now: it needs the permission customers.change_order"
    )
    assert refused(wrong_user_case, "revoke_reissue", worker) == (
        "You may not revoke and reissue: it needs the permission customers.change_entitlement"
    )


def test_someone_who_may_not_close_cases_is_refused_before_the_fix(
    unknown_tenant_case, customer, product
):
    """Someone who may change orders but not cases: the order is not fulfilled either."""
    clerk = User.objects.create_user(username="cleo", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="change_order"))

    why = refused(unknown_tenant_case, "fulfil", clerk, customer=customer, product=product)

    assert why == "You may not close cases: it needs the permission support.change_case"
    assert Order.objects.get().fulfilment == "failed"
    assert not Entitlement.objects.exists()
