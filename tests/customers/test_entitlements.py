"""The entitlement state machine: each transition allowed or refused, by whom, with history."""

import datetime as dt
from decimal import Decimal

import pytest

from audit.context import acting_as
from customers.entitlements import (
    EntitlementError,
    entitlement_assign,
    entitlement_reassign,
    entitlement_redeem,
    entitlement_reissue_code,
    entitlement_revoke,
    entitlements_expire,
    entitlements_issue,
    entitlements_transfer,
    entitlements_transfer_preview,
)
from customers.models import Customer, Entitlement, Order, Product
from tests import builders

pytestmark = pytest.mark.django_db

PAID_AT = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
AT = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
STATES = ["issued", "assigned", "redeemed", "revoked", "expired"]


@pytest.fixture(autouse=True)
def _actor():
    with acting_as("test:entitlements"):
        yield


@pytest.fixture
def product(db) -> Product:
    return builders.product(sku="SEAT-PRO-1Y", name="Pro seat", term_days=365)


@pytest.fixture
def order(customer, product) -> Order:
    return builders.order(
        external_id="ord_1",
        customer=customer,
        product=product,
        quantity=3,
        amount=Decimal("1200.00"),
        paid_at=PAID_AT,
    )


@pytest.fixture
def globex(db) -> Customer:
    return builders.customer(external_id="globex-1", name="Globex")


def issued(order, quantity=1) -> list[Entitlement]:
    return entitlements_issue(
        order=order,
        product=order.product,
        customer=order.customer,
        quantity=quantity,
        reason="order ord_1 fulfilled",
    )


def in_state(order, state: str) -> Entitlement:
    """A fresh entitlement brought to ``state`` through the services themselves."""
    [entitlement] = issued(order)
    if state in ("assigned", "redeemed"):
        entitlement_assign(entitlement=entitlement, email="ann@acme.com", reason="new hire")
    if state == "redeemed":
        entitlement_redeem(entitlement=entitlement, email="ann@acme.com", at=AT, reason="used")
    if state == "revoked":
        entitlement_revoke(entitlement=entitlement, reason="refunded")
    if state == "expired":
        entitlement.valid_until = entitlement.valid_from
        entitlement.save()
        assert entitlements_expire(today=entitlement.valid_from + dt.timedelta(days=1)) == 1
    entitlement.refresh_from_db()
    assert entitlement.state == state
    return entitlement


def snapshot(entitlement: Entitlement) -> tuple:
    entitlement.refresh_from_db()
    return (
        entitlement.code,
        entitlement.customer_id,
        entitlement.state,
        entitlement.assignee_email,
        entitlement.redeemed_by_email,
        entitlement.redeemed_at,
        entitlement.revoked_at,
        entitlement.revoke_reason,
        entitlement.history.count(),
    )


def assert_refused(entitlement, action, message: str | None = None) -> None:
    before = snapshot(entitlement)
    with pytest.raises(EntitlementError) as refused:
        action()
    if message is not None:
        assert str(refused.value) == message
    assert snapshot(entitlement) == before


# --- Issue ------------------------------------------------------------------------------


def test_issue_makes_quantity_entitlements_with_distinct_codes_and_the_products_term(order):
    entitlements = issued(order, quantity=3)
    assert len({e.code for e in entitlements}) == 3
    rows = Entitlement.objects.order_by("pk")
    assert [(e.state, e.valid_from, e.valid_until, e.customer_id) for e in rows] == [
        ("issued", dt.date(2026, 11, 1), dt.date(2027, 11, 1), order.customer_id)
    ] * 3
    assert [
        (h.history_type, h.history_actor, h.history_change_reason)
        for h in Entitlement.history.all()
    ] == [("+", "test:entitlements", "order ord_1 fulfilled")] * 3


# --- Assign -----------------------------------------------------------------------------


def test_assign_gives_an_issued_seat_to_a_person(order):
    [entitlement] = issued(order)
    entitlement_assign(entitlement=entitlement, email=" Ann@Acme.com ", reason="new hire")
    entitlement.refresh_from_db()
    assert (entitlement.state, entitlement.assignee_email) == ("assigned", "ann@acme.com")
    assert entitlement.assigned_at is not None
    latest = entitlement.history.latest()
    assert (latest.history_type, latest.history_change_reason) == ("~", "new hire")


@pytest.mark.parametrize("state", ["assigned", "redeemed", "revoked", "expired"])
def test_assign_is_refused_from_any_state_but_issued(order, state):
    entitlement = in_state(order, state)
    assert_refused(
        entitlement,
        lambda: entitlement_assign(entitlement=entitlement, email="bob@acme.com", reason="x"),
        f"{entitlement.code} is {state}; only issued entitlements can be assigned.",
    )


def test_assign_refuses_what_is_not_an_email(order):
    [entitlement] = issued(order)
    assert_refused(
        entitlement,
        lambda: entitlement_assign(entitlement=entitlement, email="bob", reason="new hire"),
        "'bob' is not an email address.",
    )


# --- Reassign ---------------------------------------------------------------------------


def test_reassign_corrects_the_assignee(order):
    entitlement = in_state(order, "assigned")
    entitlement_reassign(entitlement=entitlement, email="bob@acme.com", reason="typo")
    entitlement.refresh_from_db()
    assert (entitlement.state, entitlement.assignee_email) == ("assigned", "bob@acme.com")
    assert entitlement.history.latest().history_change_reason == "typo"


@pytest.mark.parametrize("state", ["issued", "redeemed", "revoked", "expired"])
def test_reassign_is_refused_from_any_state_but_assigned(order, state):
    entitlement = in_state(order, state)
    assert_refused(
        entitlement,
        lambda: entitlement_reassign(entitlement=entitlement, email="bob@acme.com", reason="x"),
        f"{entitlement.code} is {state}; only assigned entitlements can be reassigned.",
    )


def test_reassign_to_the_same_person_is_refused(order):
    entitlement = in_state(order, "assigned")
    assert_refused(
        entitlement,
        lambda: entitlement_reassign(entitlement=entitlement, email="ANN@acme.com", reason="x"),
        f"{entitlement.code} is already assigned to ann@acme.com.",
    )


# --- Redeem -----------------------------------------------------------------------------


def test_redeem_an_issued_seat_makes_the_redeemer_its_assignee(order):
    [entitlement] = issued(order)
    entitlement_redeem(entitlement=entitlement, email="bob@acme.com", at=AT, reason="used")
    entitlement.refresh_from_db()
    assert (
        entitlement.state,
        entitlement.assignee_email,
        entitlement.redeemed_by_email,
        entitlement.redeemed_at,
    ) == ("redeemed", "bob@acme.com", "bob@acme.com", AT)


def test_redeem_an_assigned_seat_by_its_assignee(order):
    entitlement = in_state(order, "assigned")
    entitlement_redeem(entitlement=entitlement, email="ann@acme.com", at=AT, reason="used")
    entitlement.refresh_from_db()
    assert (entitlement.state, entitlement.redeemed_by_email) == ("redeemed", "ann@acme.com")


def test_redeem_an_assigned_seat_by_someone_else_is_refused(order):
    entitlement = in_state(order, "assigned")
    assert_refused(
        entitlement,
        lambda: entitlement_redeem(
            entitlement=entitlement, email="bob@acme.com", at=AT, reason="used"
        ),
        f"{entitlement.code} is assigned to ann@acme.com, not bob@acme.com.",
    )


@pytest.mark.parametrize("state", ["redeemed", "revoked", "expired"])
def test_redeem_is_refused_from_a_state_past_assigned(order, state):
    entitlement = in_state(order, state)
    assert_refused(
        entitlement,
        lambda: entitlement_redeem(
            entitlement=entitlement, email="ann@acme.com", at=AT, reason="used"
        ),
        f"{entitlement.code} is {state}; only issued or assigned entitlements can be redeemed.",
    )


# --- Revoke -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["issued", "assigned", "redeemed"])
def test_revoke_ends_a_live_seat_and_keeps_the_reason(order, state):
    entitlement = in_state(order, state)
    entitlement_revoke(entitlement=entitlement, reason=" refunded ")
    entitlement.refresh_from_db()
    assert (entitlement.state, entitlement.revoke_reason) == ("revoked", "refunded")
    assert entitlement.revoked_at is not None
    assert entitlement.history.latest().history_change_reason == "refunded"


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_revoke_is_refused_once_the_seat_is_over(order, state):
    entitlement = in_state(order, state)
    assert_refused(
        entitlement,
        lambda: entitlement_revoke(entitlement=entitlement, reason="again"),
        f"{entitlement.code} is {state}; "
        "only issued or assigned or redeemed entitlements can be revoked.",
    )


# --- Reissue code -----------------------------------------------------------------------


@pytest.mark.parametrize("state", ["issued", "assigned"])
def test_reissue_gives_a_new_code_and_the_old_one_is_unknown(order, state):
    entitlement = in_state(order, state)
    old = entitlement.code
    entitlement_reissue_code(entitlement=entitlement, reason="code leaked")
    entitlement.refresh_from_db()
    assert entitlement.code != old
    assert entitlement.state == state
    assert not Entitlement.objects.filter(code=old).exists()
    changed, before = entitlement.history.order_by("-history_id")[:2]
    assert (before.code, changed.code, changed.history_change_reason) == (
        old,
        entitlement.code,
        "code leaked",
    )


@pytest.mark.parametrize("state", ["redeemed", "revoked", "expired"])
def test_reissue_is_refused_for_a_used_or_dead_seat(order, state):
    entitlement = in_state(order, state)
    assert_refused(
        entitlement,
        lambda: entitlement_reissue_code(entitlement=entitlement, reason="code leaked"),
        f"{entitlement.code} is {state}; "
        "only issued or assigned entitlements can be given a new code.",
    )


# --- Reasons and roles ------------------------------------------------------------------

CHANGES = {
    "assign": ("issued", lambda e, **kw: entitlement_assign(entitlement=e, email="b@x.com", **kw)),
    "reassign": (
        "assigned",
        lambda e, **kw: entitlement_reassign(entitlement=e, email="b@x.com", **kw),
    ),
    "redeem": (
        "issued",
        lambda e, **kw: entitlement_redeem(entitlement=e, email="b@x.com", at=AT, **kw),
    ),
    "revoke": ("issued", lambda e, **kw: entitlement_revoke(entitlement=e, **kw)),
    "reissue": ("issued", lambda e, **kw: entitlement_reissue_code(entitlement=e, **kw)),
}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("reason", ["", "   ", None])
def test_every_change_requires_a_reason(order, change, reason):
    state, action = CHANGES[change]
    entitlement = in_state(order, state)
    assert_refused(
        entitlement,
        lambda: action(entitlement, reason=reason),
        "Give a reason: it is kept in the entitlement's history.",
    )


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("persona", ["agent", "manager", "outsider"])
def test_support_agents_and_account_managers_cannot_change_entitlements(
    order, change, persona, request
):
    state, action = CHANGES[change]
    entitlement = in_state(order, state)
    user = request.getfixturevalue(persona)
    assert_refused(
        entitlement,
        lambda: action(entitlement, reason="because", by=user),
        "You may not do this: it needs the permission customers.change_entitlement",
    )


@pytest.mark.parametrize("change", CHANGES)
def test_an_ops_lead_can_change_entitlements(order, change, ops_lead):
    state, action = CHANGES[change]
    entitlement = in_state(order, state)
    before = entitlement.history.count()
    action(entitlement, reason="because", by=ops_lead)
    assert entitlement.history.count() == before + 1


# --- Transfer ---------------------------------------------------------------------------


def test_the_transfer_preview_says_what_would_move_and_changes_nothing(order, globex):
    live = [in_state(order, "issued"), in_state(order, "redeemed")]
    dead = in_state(order, "revoked")
    before = [snapshot(e) for e in [*live, dead]]
    preview = entitlements_transfer_preview(entitlements=[*live, dead], target=globex)
    assert (preview.entitlements, preview.target, preview.refused) == (
        live,
        globex,
        [(dead, "is revoked")],
    )
    assert [snapshot(e) for e in [*live, dead]] == before


def test_the_preview_refuses_what_already_belongs_to_the_target(order, customer):
    entitlement = in_state(order, "issued")
    preview = entitlements_transfer_preview(entitlements=[entitlement], target=customer)
    assert preview.refused == [(entitlement, "already belongs to Acme Corp")]


def test_an_ops_lead_transfers_live_seats_with_history(order, globex, ops_lead):
    moved = [in_state(order, "issued"), in_state(order, "assigned"), in_state(order, "redeemed")]
    assert (
        entitlements_transfer(
            entitlements=moved, target=globex, reason="account merge", by=ops_lead
        )
        == 3
    )
    for entitlement in moved:
        entitlement.refresh_from_db()
        assert entitlement.customer == globex
        latest = entitlement.history.latest()
        assert (latest.history_type, latest.customer_id, latest.history_change_reason) == (
            "~",
            globex.pk,
            "account merge",
        )
    assert sorted(e.state for e in moved) == ["assigned", "issued", "redeemed"]


def test_one_refused_seat_stops_the_whole_transfer(order, globex, ops_lead):
    live = in_state(order, "issued")
    dead = in_state(order, "expired")
    before = [snapshot(live), snapshot(dead)]
    with pytest.raises(EntitlementError) as refused:
        entitlements_transfer(entitlements=[live, dead], target=globex, reason="x", by=ops_lead)
    assert str(refused.value) == f"Nothing moved: {dead.code} is expired."
    assert [snapshot(live), snapshot(dead)] == before


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_only_ops_leads_transfer(order, globex, persona, request):
    entitlement = in_state(order, "issued")
    user = request.getfixturevalue(persona)
    assert_refused(
        entitlement,
        lambda: entitlements_transfer(
            entitlements=[entitlement], target=globex, reason="x", by=user
        ),
        "You may not do this: it needs the permission customers.transfer_entitlement",
    )


def test_a_transfer_requires_a_reason(order, globex, ops_lead):
    entitlement = in_state(order, "issued")
    assert_refused(
        entitlement,
        lambda: entitlements_transfer(
            entitlements=[entitlement], target=globex, reason=" ", by=ops_lead
        ),
    )


# --- Expiry -----------------------------------------------------------------------------


def test_expiry_ends_live_seats_past_their_end_date_only(order, product):
    ends = dt.date(2027, 11, 1)
    live = {state: in_state(order, state) for state in ["issued", "assigned", "redeemed"]}
    revoked = in_state(order, "revoked")
    perpetual_product = builders.product(sku="API", name="API add-on")
    [perpetual] = entitlements_issue(
        order=order, product=perpetual_product, customer=order.customer, quantity=1, reason="x"
    )
    assert entitlements_expire(today=ends) == 0  # the last day is still valid
    assert entitlements_expire(today=ends + dt.timedelta(days=1)) == 3
    for entitlement in live.values():
        entitlement.refresh_from_db()
        assert entitlement.state == "expired"
        latest = entitlement.history.latest()
        assert (latest.history_actor, latest.history_change_reason) == (
            "test:entitlements",
            "past its end date",
        )
    for entitlement, state in [(revoked, "revoked"), (perpetual, "issued")]:
        entitlement.refresh_from_db()
        assert entitlement.state == state
    assert entitlements_expire(today=ends + dt.timedelta(days=2)) == 0
