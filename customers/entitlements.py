"""The entitlement state machine (docs/product.md#entitlements): one function per transition.

    issued --assign--> assigned --redeem--> redeemed
    issued | assigned | redeemed --revoke--> revoked, --expire--> expired

Each function locks the row, checks the transition is allowed from the current state
and that ``by`` (the person asking; None for the product's events and scheduled jobs)
holds the permission, saves once with ``reason`` as the history's change reason, and
raises ``EntitlementError`` without changing anything when it refuses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from audit.bulk import bulk_create_with_history, update_with_history
from audit.previews import PreviewState, preview_changes, stale_message
from customers.codes import redemption_code_generate
from customers.models import Customer, Entitlement, Order, Product

State = Entitlement.State
LIVE = (State.ISSUED, State.ASSIGNED, State.REDEEMED)
# The states each action starts from (docs/product.md "Entitlements", "Entitlement
# workflows"): the one table the services below refuse by, the admin's workflows offer by
# (customers.admin_workflows, same keys) and the ops inbox's resolutions check
# (opsdesk.casework.resolutions). Revoke-and-reissue is a revoke.
ENTITLEMENT_ACTIONS: dict[str, tuple[str, ...]] = {
    "assign": (State.ISSUED,),
    "reassign": (State.ASSIGNED,),
    "redeem": (State.ISSUED, State.ASSIGNED),
    "revoke": LIVE,
    "reissue": (State.ISSUED, State.ASSIGNED),
    "transfer": LIVE,
    "expire": LIVE,
}
CHANGE = "customers.change_entitlement"
TRANSFER = "customers.transfer_entitlement"


class EntitlementError(Exception):
    """A transition that is not allowed; the message says why. Nothing was changed."""


class PreviewChanged(EntitlementError):
    """The entitlements changed since the confirmation page showed them. Nothing was changed."""


def _check(by: AbstractBaseUser | None, permission: str, reason: str) -> str:
    if by is not None and not by.has_perm(permission):
        raise EntitlementError("You may not do this: it needs the permission " + permission)
    reason = (reason or "").strip()
    if not reason:
        raise EntitlementError("Give a reason: it is kept in the entitlement's history.")
    return reason


def _email(value: str) -> str:
    value = (value or "").strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        raise EntitlementError(f"{value!r} is not an email address.") from None
    return value


def entitlement_action_allowed(entitlement: Entitlement, action: str) -> bool:
    """Whether ``entitlement``'s state allows ``action`` (a key of ``ENTITLEMENT_ACTIONS``)
    as it was read; the service checks again on the locked row."""
    return entitlement.state in ENTITLEMENT_ACTIONS[action]


def _locked(
    entitlement: Entitlement,
    action: str,
    verb: str,
    *,
    unchanged: tuple[str, ...] = (),
) -> Entitlement:
    """The row, locked, in a state that allows ``action``, and with the ``unchanged``
    fields still as the caller read them: of two concurrent changes made from one reading
    (two clicks on "Reissue code"), the second finds the first's change and is refused."""
    locked = Entitlement.objects.select_for_update().get(pk=entitlement.pk)
    if not entitlement_action_allowed(locked, action):
        raise EntitlementError(
            f"{locked.code} is {locked.get_state_display().lower()}; "
            f"only {' or '.join(ENTITLEMENT_ACTIONS[action])} entitlements can be {verb}."
        )
    changed = [name for name in unchanged if getattr(locked, name) != getattr(entitlement, name)]
    if changed:
        raise EntitlementError(
            f"{entitlement.code} changed since it was read (its "
            f"{' and '.join(name.replace('_', ' ') for name in changed)}); look at it again."
        )
    locked._read_by_caller = entitlement
    return locked


def _save(entitlement: Entitlement, reason: str) -> Entitlement:
    entitlement._change_reason = reason
    entitlement.save()
    # The caller's instance shows the change too, so a next step from it (assign, then
    # reassign) is made from what is stored, not refused as read before this change.
    caller = getattr(entitlement, "_read_by_caller", None)
    if caller is not None and caller is not entitlement:
        for field in Entitlement._meta.concrete_fields:
            setattr(caller, field.attname, getattr(entitlement, field.attname))
    return entitlement


def _fresh_codes(count: int) -> list[str]:
    """``count`` distinct codes no entitlement has, in one query per round; the alphabet
    gives ~59 bits, so one round almost always. Distinct among themselves too: a
    collision inside one order would fail its whole insert on the unique constraint."""
    codes: set[str] = set()
    while len(codes) < count:
        drawn = {redemption_code_generate() for _ in range(count - len(codes))} - codes
        taken = set(Entitlement.objects.filter(code__in=drawn).values_list("code", flat=True))
        codes |= drawn - taken
    return list(codes)


@transaction.atomic
def entitlements_issue(
    *, order: Order, product: Product, customer: Customer, quantity: int, reason: str
) -> list[Entitlement]:
    """Issue ``quantity`` entitlements of ``product`` for ``order``, each with its own code."""
    now = timezone.now()
    valid_from = order.paid_at.date()
    valid_until = valid_from + dt.timedelta(days=product.term_days) if product.term_days else None
    entitlements = [
        Entitlement(
            order=order,
            customer=customer,
            product=product,
            code=code,
            valid_from=valid_from,
            valid_until=valid_until,
            issued_at=now,
        )
        for code in _fresh_codes(quantity)
    ]
    return bulk_create_with_history(entitlements, Entitlement, reason=reason)


@transaction.atomic
def entitlement_assign(
    *, entitlement: Entitlement, email: str, reason: str, by: AbstractBaseUser | None = None
) -> Entitlement:
    """issued → assigned: the seat goes to the person at ``email``."""
    reason = _check(by, CHANGE, reason)
    entitlement = _locked(entitlement, "assign", "assigned")
    entitlement.state = State.ASSIGNED
    entitlement.assignee_email = _email(email)
    entitlement.assigned_at = timezone.now()
    return _save(entitlement, reason)


@transaction.atomic
def entitlement_reassign(
    *, entitlement: Entitlement, email: str, reason: str, by: AbstractBaseUser | None = None
) -> Entitlement:
    """assigned → assigned to someone else (an assignment correction)."""
    reason = _check(by, CHANGE, reason)
    entitlement = _locked(entitlement, "reassign", "reassigned", unchanged=("assignee_email",))
    email = _email(email)
    if email == entitlement.assignee_email:
        raise EntitlementError(f"{entitlement.code} is already assigned to {email}.")
    entitlement.assignee_email = email
    entitlement.assigned_at = timezone.now()
    return _save(entitlement, reason)


@transaction.atomic
def entitlement_redeem(
    *,
    entitlement: Entitlement,
    email: str,
    at: dt.datetime,
    reason: str,
    by: AbstractBaseUser | None = None,
) -> Entitlement:
    """issued | assigned → redeemed by ``email``. An assigned seat redeems only by its
    assignee: anyone else is refused (the product's event then opens a case)."""
    reason = _check(by, CHANGE, reason)
    entitlement = _locked(entitlement, "redeem", "redeemed")
    email = _email(email)
    if entitlement.state == State.ASSIGNED and email != entitlement.assignee_email:
        raise EntitlementError(
            f"{entitlement.code} is assigned to {entitlement.assignee_email}, not {email}."
        )
    entitlement.state = State.REDEEMED
    entitlement.redeemed_by_email = email
    entitlement.assignee_email = entitlement.assignee_email or email
    entitlement.redeemed_at = at
    return _save(entitlement, reason)


@transaction.atomic
def entitlement_revoke(
    *, entitlement: Entitlement, reason: str, by: AbstractBaseUser | None = None
) -> Entitlement:
    """issued | assigned | redeemed → revoked, with the reason kept on the row."""
    reason = _check(by, CHANGE, reason)
    entitlement = _locked(entitlement, "revoke", "revoked")
    entitlement.state = State.REVOKED
    entitlement.revoked_at = timezone.now()
    entitlement.revoke_reason = reason
    return _save(entitlement, reason)


@transaction.atomic
def entitlement_reissue_code(
    *, entitlement: Entitlement, reason: str, by: AbstractBaseUser | None = None
) -> Entitlement:
    """A new code for a live seat; the old one stops working (history keeps it)."""
    reason = _check(by, CHANGE, reason)
    entitlement = _locked(entitlement, "reissue", "given a new code", unchanged=("code",))
    [entitlement.code] = _fresh_codes(1)
    return _save(entitlement, reason)


@transaction.atomic
def entitlement_replace(
    *, entitlement: Entitlement, reason: str, by: AbstractBaseUser | None = None
) -> Entitlement:
    """Revoke and reissue: ``entitlement`` is revoked (its code stops working) and a new
    one of the same order, product and term takes its place with a fresh code, assigned
    to the same person when it was assigned. Returns the new entitlement."""
    old = entitlement_revoke(entitlement=entitlement, reason=reason, by=by)
    [code] = _fresh_codes(1)
    new = Entitlement(
        order=old.order,
        customer=old.customer,
        product=old.product,
        code=code,
        valid_from=old.valid_from,
        valid_until=old.valid_until,
        issued_at=timezone.now(),
    )
    if old.assignee_email:
        new.state = State.ASSIGNED
        new.assignee_email = old.assignee_email
        new.assigned_at = new.issued_at
    new._change_reason = f"replaces {old.code}: {reason.strip()}"
    new.save()
    return new


def entitlements_expire(*, today: dt.date | None = None) -> int:
    """Live entitlements past their end date → expired (beat runs this daily)."""
    today = today or timezone.now().date()
    due = Entitlement.objects.filter(state__in=ENTITLEMENT_ACTIONS["expire"], valid_until__lt=today)
    return update_with_history(due, reason="past its end date", state=State.EXPIRED)


@dataclass(frozen=True)
class TransferPreview:
    entitlements: list[Entitlement]
    target: Customer
    refused: list[tuple[Entitlement, str]]


def entitlements_transfer_preview(
    *, entitlements: list[Entitlement], target: Customer
) -> TransferPreview:
    """What a transfer would move, and what it would refuse and why; changes nothing."""
    movable, refused = [], []
    for entitlement in entitlements:
        if entitlement.customer_id == target.pk:
            refused.append((entitlement, f"already belongs to {target}"))
        elif not entitlement_action_allowed(entitlement, "transfer"):
            refused.append((entitlement, f"is {entitlement.get_state_display().lower()}"))
        else:
            movable.append(entitlement)
    return TransferPreview(movable, target, refused)


@transaction.atomic
def entitlements_transfer(
    *,
    entitlements: list[Entitlement],
    target: Customer,
    reason: str,
    by: AbstractBaseUser | None = None,
) -> int:
    """Move live entitlements to ``target``: all of them or none (any refusal stops it)."""
    reason = _check(by, TRANSFER, reason)
    locked = list(
        Entitlement.objects.select_for_update()
        .filter(pk__in=[e.pk for e in entitlements])
        .order_by("pk")
    )
    seen = {e.pk: e.customer_id for e in entitlements}
    for entitlement in locked:
        if entitlement.customer_id != seen[entitlement.pk]:
            raise EntitlementError(
                f"Nothing moved: {entitlement.code} has moved to {entitlement.customer} "
                "since it was read; look at it again."
            )
    preview = entitlements_transfer_preview(entitlements=locked, target=target)
    if preview.refused:
        entitlement, why = preview.refused[0]
        raise EntitlementError(f"Nothing moved: {entitlement.code} {why}.")
    moved = update_with_history(
        Entitlement.objects.filter(pk__in=[e.pk for e in locked]),
        reason=reason,
        customer_id=target.pk,
    )
    for entitlement in entitlements:  # the caller's instances show where they are now
        entitlement.customer_id = target.pk
    return moved


# --- Confirmation pages -----------------------------------------------------------------

# What a confirmation page shows of each entitlement: a POST applies only to these values.
SHOWN = ("state", "customer_id", "product_id", "code", "assignee_email", "valid_until")


def entitlements_preview_state(
    *, entitlements: list[Entitlement], target: Customer | None = None
) -> PreviewState:
    """What a confirmation page shows: each entitlement (by its code) and the target."""
    state = PreviewState().rows("entitlement", entitlements, SHOWN, label="code")
    if target is not None:
        state.add("target", "the target customer", pk=target.pk)
    return state


def entitlements_lock_as_previewed(
    *, entitlements: list[Entitlement], previewed: str, target: Customer | None = None
) -> list[Entitlement]:
    """The entitlements, locked in id order for the rest of the caller's transaction,
    exactly as the page whose ``previewed`` token (``audit.previews``) showed them;
    ``PreviewChanged`` saying what changed otherwise."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("entitlements_lock_as_previewed locks for a transaction: open one")
    # No join: PostgreSQL re-checks a row another transaction changed meanwhile against
    # the joined rows it read first, so a moved entitlement would drop out of a join
    # with its old customer instead of showing that it moved.
    locked = list(
        Entitlement.objects.select_for_update()
        .filter(pk__in=[e.pk for e in entitlements])
        .order_by("pk")
    )
    state = entitlements_preview_state(entitlements=locked, target=target)
    changes = preview_changes(previewed, state)
    if changes:
        raise PreviewChanged(stale_message(changes))
    return locked
