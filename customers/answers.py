"""What the entitlement, order and contract pages say at their top, in sentences: does the
person have access and why not, what happened to the order, who changed the seats. Each
is read in a fixed number of queries, whatever the length of the record's history
(docs/product.md#finding-answers)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import F, Window
from django.db.models.functions import Lag
from django.utils import timezone

from customers.models import Contract, Entitlement, Order
from customers.selectors import contract_on
from kit.people import actor_name

State = Entitlement.State
Fulfilment = Order.Fulfilment
# The history reason entitlement_replace gives the new entitlement (customers.entitlements).
REPLACES = "replaces {code}: "
# The history reason an order the product's event could not fulfil is recorded with
# (support.order_events.order_record; the demo's orders too, opsdesk.demo.pasts).
NOT_FULFILLED = "order {order_id} not fulfilled: "
SEAT_CHANGES_SHOWN = 10
# What a history row needs to name who made it (``kit.people.actor_name``).
_ACTOR_FIELDS = (
    "history_actor",
    "history_user",
    "history_user__username",
    "history_user__first_name",
    "history_user__last_name",
)


def day(value: dt.date) -> str:
    """``5 Mar 2030``."""
    return f"{value.day} {value:%b %Y}"


def moment(value: dt.datetime) -> str:
    """``5 Mar 2030 10:00 UTC``, in the desk's time zone (``OPSDESK_TIME_ZONE``)."""
    local = timezone.localtime(value)
    return f"{day(local)} {local:%H:%M} {local.tzname()}"


def contract_label(contract: Contract) -> str:
    """``Growth, 25 seats, 1 Jan 2030 to 31 Dec 2030, active`` (or ``from 1 Jan 2030,
    open-ended``)."""
    if contract.end_date:
        dates = f"{day(contract.start_date)} to {day(contract.end_date)}"
    else:
        dates = f"from {day(contract.start_date)}, open-ended"
    return (
        f"{contract.get_plan_display()}, {contract.seats} seats, {dates}, "
        f"{contract.get_status_display().lower()}"
    )


# --- Entitlements -----------------------------------------------------------------------


@dataclass(frozen=True)
class EntitlementAccess:
    """Whether the entitlement gives its person access today, and why (not)."""

    has_access: bool
    headline: str  # "Has access", "No access", "No access yet"
    why: str  # one or two sentences
    person: str  # whose seat it is: the redeemer, else the assignee; "" for nobody yet
    contract: Contract | None
    contract_ran_then: bool  # the contract ran when the entitlement started
    replacement: Entitlement | None  # what took its place (revoke and reissue)

    @property
    def contract_text(self) -> str:
        return contract_label(self.contract) if self.contract else ""


def _revoked_by(entitlement: Entitlement) -> str:
    """Who revoked it, by name (``kit.people.actor_name``); "" when nobody is recorded."""
    row = (
        Entitlement.history.filter(id=entitlement.pk, state=State.REVOKED)
        .select_related("history_user")
        .order_by("history_date", "history_id")
        .only(*_ACTOR_FIELDS)
        .first()
    )
    return actor_name(row.history_actor, row.history_user) if row else ""


def entitlement_replacement(entitlement: Entitlement) -> Entitlement | None:
    """The entitlement that replaced this revoked one ("Revoke and reissue",
    ``entitlement_replace``), found by the reason of its creation. One query."""
    created = Entitlement.history.filter(
        customer_id=entitlement.customer_id,
        history_type="+",
        history_change_reason__startswith=REPLACES.format(code=entitlement.code),
    ).values("id")
    return Entitlement.objects.filter(pk__in=created).order_by("issued_at", "pk").first()


def entitlement_access(
    *, entitlement: Entitlement, today: dt.date | None = None
) -> EntitlementAccess:
    """Does the person of ``entitlement`` have access ``today``, and if not why: revoked
    (when, by whom, the reason), expired (its end date), never redeemed (assigned or
    only issued); with the customer's contract it comes under and, once revoked and
    reissued, its replacement. Two queries, three when revoked."""
    today = today or timezone.localdate()
    e = entitlement
    person = e.redeemed_by_email or e.assignee_email
    until = f"valid until {day(e.valid_until)}" if e.valid_until else "with no end date"
    ended = e.valid_until is not None and e.valid_until < today
    replacement = None
    if e.state == State.REDEEMED and not ended:
        has, headline = True, "Has access"
        why = f"Redeemed by {e.redeemed_by_email} on {moment(e.redeemed_at)}, {until}."
    elif e.state == State.REVOKED:
        has, headline = False, "No access"
        by = _revoked_by(e)
        why = (
            f"Revoked on {moment(e.revoked_at)}{f' by {by}' if by else ''}, "
            f"because: {e.revoke_reason}"
        )
        replacement = entitlement_replacement(e)
    elif e.state == State.EXPIRED or ended:
        has, headline = False, "No access"
        why = f"Expired: its term ended on {day(e.valid_until)}." if e.valid_until else "Expired."
    elif e.state == State.ASSIGNED:
        has, headline = False, "No access yet"
        why = (
            f"Assigned to {e.assignee_email}"
            f"{f' on {moment(e.assigned_at)}' if e.assigned_at else ''}, never redeemed: "
            f"they have not used the code {e.code} yet ({until})."
        )
    else:
        has, headline = False, "No access yet"
        why = (
            f"Issued on {moment(e.issued_at)}, never assigned or redeemed: "
            f"nobody has the code {e.code} yet ({until})."
        )
    if e.state == State.REDEEMED and ended:
        why += f" It was redeemed by {e.redeemed_by_email} on {moment(e.redeemed_at)}."
    contract, ran = contract_on(customer_id=e.customer_id, on=e.valid_from)
    return EntitlementAccess(has, headline, why, person, contract, ran, replacement)


# --- Orders -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderOutcome:
    """What happened to an order, in sentences."""

    headline: str  # "Fulfilled", "Not fulfilled", "Refunded", "Pending"
    why: str
    failure: str  # why the product's order event could not be fulfilled; "" if it could


def _first_row(order: Order, **where):
    return (
        Order.history.filter(id=order.pk, **where)
        .select_related("history_user")
        .order_by("history_date", "history_id")
        .only("history_date", "history_change_reason", "fulfilment", *_ACTOR_FIELDS)
        .first()
    )


def order_outcome(*, order: Order) -> OrderOutcome:
    """Why the order is in its state: the failure the product's order event ran into
    (from the reason its creation was recorded with), and who fulfilled or refunded it
    after, when, and why. Two queries, three for a fulfilled or refunded order."""
    created = _first_row(order, history_type="+")
    prefix = NOT_FULFILLED.format(order_id=order.external_id)
    reason = (created.history_change_reason or "") if created else ""
    failure = reason[len(prefix) :] if reason.startswith(prefix) else ""
    what = f"{order.quantity} × {order.product.name if order.product else order.sku}"  # noqa: RUF001
    to = f" to {order.customer.name}" if order.customer else ""
    if order.fulfilment == Fulfilment.FAILED:
        cause = failure or "the reason was not recorded"
        return OrderOutcome(
            "Not fulfilled",
            f"The product's order event could not be fulfilled: {cause}. Nothing was "
            f"issued; recorded on {moment(order.created_at)}.",
            failure,
        )
    if order.fulfilment == Fulfilment.PENDING:
        return OrderOutcome(
            "Pending", f"Recorded on {moment(order.created_at)}; nothing issued yet.", failure
        )
    ended = _first_row(order, fulfilment=order.fulfilment)
    actor = actor_name(ended.history_actor, ended.history_user) if ended else ""
    by = f" by {actor}" if actor else ""
    when = moment(ended.history_date) if ended else moment(order.created_at)
    said = ended.history_change_reason if ended and ended.history_change_reason else ""
    first = f"It had failed first: {failure}. " if failure else ""
    if order.fulfilment == Fulfilment.REFUNDED:
        ref = f" (refund {order.refund_reference})" if order.refund_reference else ""
        return OrderOutcome(
            "Refunded",
            f"{first}Refunded{ref} on {moment(order.refunded_at)}{by}, nothing issued"
            f"{f': {said}' if said else ''}.",
            failure,
        )
    because = f": {said}" if said and failure else ""
    return OrderOutcome(
        "Fulfilled",
        f"{first}{what} issued{to} on {when}{by}{because}.",
        failure,
    )


# --- Contracts --------------------------------------------------------------------------


@dataclass(frozen=True)
class SeatChange:
    at: dt.datetime
    actor: str  # who, by name (kit.people.actor_name)
    old: int | None  # None: set when the contract was created
    new: int
    reason: str


@dataclass(frozen=True)
class SeatChanges:
    changes: list[SeatChange] = field(default_factory=list)  # newest first
    more: bool = False  # older changes than those listed exist


def contract_seat_changes(*, contract: Contract, limit: int = SEAT_CHANGES_SHOWN) -> SeatChanges:
    """The contract's seat changes from its history, newest first: who, when, from → to
    and the reason; the creation counts as the first (from nothing). The latest
    ``limit``; one query whatever the length of the history."""
    rows = (
        Contract.history.filter(id=contract.pk)
        .annotate(_before=Window(Lag("seats", default=0), order_by=["history_date", "history_id"]))
        .exclude(seats=F("_before"))
        .select_related("history_user")
        .order_by("-history_date", "-history_id")[: limit + 1]
    )
    changes = [_seat_change(row, None if row.history_type == "+" else row._before) for row in rows]
    return SeatChanges(changes[:limit], more=len(changes) > limit)


def _seat_change(row, before: int | None) -> SeatChange:
    return SeatChange(
        row.history_date,
        actor_name(row.history_actor, row.history_user),
        before,
        row.seats,
        row.history_change_reason or "",
    )


def seat_changes_latest(*, contract_ids: list[int]) -> dict[int, SeatChange]:
    """The latest seat change (not the creation) of each of ``contract_ids``, by contract
    id; contracts whose seats never changed are left out. One query, reading the seat
    changes of those contracts only (a few a year each)."""
    rows = (
        Contract.history.filter(id__in=contract_ids)
        .annotate(
            _before=Window(
                Lag("seats", default=0),
                partition_by=[F("id")],
                order_by=["history_date", "history_id"],
            )
        )
        .exclude(seats=F("_before"))
        .select_related("history_user")
        .order_by("-history_date", "-history_id")
    )
    latest: dict[int, SeatChange] = {}
    for row in rows:
        # The creation is no change; it is filtered here, not in the query, where it
        # would also leave the window that reads the seats before each row.
        if row.history_type != "+" and row.id not in latest:
            latest[row.id] = _seat_change(row, row._before)
    return latest
