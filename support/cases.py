"""Cases: every exception ops works (docs/product.md#exceptions), opened once per problem."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from audit.bulk import bulk_create_with_history, bulk_update_with_history, update_with_history
from customers.models import Customer
from support import notices
from support.models import Case


def case_dedupe_key(kind: str, subject: str, *details: object) -> str:
    """``<kind>:<subject>[:<detail>...]``, e.g. ``failed_fulfilment:order:ord_17`` or
    ``problem_redemption:entitlement:K7QP-4XMD-9RTW:bob@x.com``.

    ``subject`` is ``<model>:<id>`` with the id the product and ops know the row by (an
    order's order id, an entitlement's code), not its database pk: raising a problem
    from a product event needs no lookup, and seeded demo data names its cases the same
    way in every database.
    """
    return ":".join([kind, subject, *(str(detail) for detail in details)])[:200]


def case_open(
    *,
    kind: str,
    customer: Customer | None,
    subject: models.Model | None,
    summary: str,
    expected: str = "",
    found: str = "",
    dedupe_key: str,
    **extra,
) -> Case:
    """Open the case ``dedupe_key`` names, or return it when it is open already.

    Idempotent: raising the same problem again (same ``dedupe_key``) never makes a second
    case; it updates ``found`` when that changed (with history) while the case is still
    being worked, and leaves a closed case as it was closed. The unique constraint on
    ``dedupe_key`` decides between concurrent openers: the loser of the race gets the
    winner's case. ``extra`` sets other fields of a new case (``expected_amount``, ...).
    """
    values = {
        "kind": kind,
        "customer": customer,
        "summary": summary[:300],
        "expected": expected,
        "found": found,
        **extra,
    }
    if subject is not None:
        values["subject_type"] = ContentType.objects.get_for_model(subject)
        values["subject_id"] = str(subject.pk)
    with transaction.atomic():
        case = Case.objects.select_for_update().filter(dedupe_key=dedupe_key).first()
        if case is None:
            try:
                with transaction.atomic():
                    return Case.objects.create(dedupe_key=dedupe_key, **values)
            except IntegrityError:
                case = Case.objects.select_for_update().get(dedupe_key=dedupe_key)
        if case.found != found and case.state not in Case.CLOSED_STATES:
            case.found = found
            case._change_reason = "the problem was raised again"
            case.save(update_fields=["found"])
        return case


# Working a case (docs/product.md#exceptions): open → acknowledged → resolved | waived.
# Each function checks ``by`` (the person asking; None for the product's events and
# scheduled jobs) may change cases, refuses with ``CaseError`` without changing anything,
# and records history naming the actor with the reason.

CHANGE = "support.change_case"


class CaseError(Exception):
    """A case change that is not allowed; the message says why. Nothing was changed."""


def _may_work(by: AbstractBaseUser | None) -> None:
    if by is not None and not by.has_perm(CHANGE):
        raise CaseError("You may not do this: it needs the permission " + CHANGE)


def _name(user: AbstractBaseUser) -> str:
    return user.get_full_name() or user.get_username()


def case_owners() -> models.QuerySet:
    """Who may own a case: active staff who may change cases."""
    User = get_user_model()
    perm = Permission.objects.filter(codename="change_case", content_type__app_label="support")
    return (
        User.objects.filter(is_active=True, is_staff=True)
        .filter(
            Q(is_superuser=True) | Q(user_permissions__in=perm) | Q(groups__permissions__in=perm)
        )
        .distinct()
        .order_by("username")
    )


@transaction.atomic
def cases_acknowledge(*, cases: models.QuerySet, by: AbstractBaseUser | None = None) -> int:
    """open → acknowledged, for every open case of ``cases``; an unowned case becomes
    ``by``'s (whoever acknowledges it is on it). Others are left as they are. Returns
    how many changed."""
    _may_work(by)
    opened = Case.objects.filter(pk__in=cases.filter(state=Case.State.OPEN).values("pk"))
    acknowledged = {"state": Case.State.ACKNOWLEDGED, "acknowledged_at": timezone.now()}
    if by is None:
        return update_with_history(opened, reason="acknowledged", **acknowledged)
    # One history row per case: an unowned one is taken in the same change.
    return update_with_history(
        opened.filter(owner__isnull=True),
        reason=f"acknowledged and taken by {_name(by)}",
        owner=by,
        **acknowledged,
    ) + update_with_history(
        opened.filter(owner__isnull=False), reason="acknowledged", **acknowledged
    )


@transaction.atomic
def cases_assign(
    *, cases: models.QuerySet, owner: AbstractBaseUser, by: AbstractBaseUser | None = None
) -> int:
    """Give every case of ``cases`` still being worked to ``owner``. Closed cases keep
    the owner who closed them. Returns how many changed."""
    _may_work(by)
    if not case_owners().filter(pk=owner.pk).exists():
        raise CaseError(f"{_name(owner)} may not work cases; pick someone who may.")
    being_worked = cases.filter(state__in=Case.OPEN_STATES)
    given = list(being_worked.exclude(owner=owner).order_by("pk"))
    changed = update_with_history(being_worked, reason=f"assigned to {_name(owner)}", owner=owner)
    notices.cases_assigned_notify(cases=given, owner=owner, by=by)
    return changed


def _closing(state: str, note: str | None) -> dict:
    """The fields a close writes, once the close is known to be allowed: the state, the
    note (required) and the time. Refuses before anything is read or written."""
    if state not in Case.CLOSED_STATES:
        raise CaseError(f"A case closes as resolved or waived, not {state}.")
    note = (note or "").strip()
    if not note:
        what = "Say how it was resolved" if state == Case.State.RESOLVED else "Say why it is waived"
        raise CaseError(f"{what}: a case closes with a note.")
    return {"state": state, "closing_note": note, "closed_at": timezone.now()}


@transaction.atomic
def case_close(
    *,
    case: Case,
    state: str,
    note: str,
    by: AbstractBaseUser | None = None,
) -> Case:
    """open | acknowledged → resolved or waived, with the note the close requires. An
    unowned case becomes ``by``'s: whoever closes it owned the outcome."""
    _may_work(by)
    closing = _closing(state, note)
    locked = Case.objects.select_for_update().get(pk=case.pk)
    if locked.state not in Case.OPEN_STATES:
        raise CaseError(f"Case #{locked.pk} is {locked.get_state_display().lower()} already.")
    for name, value in closing.items():
        setattr(locked, name, value)
    if locked.owner_id is None and by is not None:
        locked.owner = by
    locked._change_reason = closing["closing_note"]
    locked.save()
    return locked


def cases_close(
    *,
    cases: models.QuerySet,
    state: str,
    note: str,
    reason: str,
    by: AbstractBaseUser | None = None,
) -> int:
    """``case_close`` for every case of ``cases`` still being worked, at once: the bulk
    path of a job that finds many problems gone (a reconciliation run resolving what it
    no longer finds). Same rules: the note is required, an unowned case becomes ``by``'s;
    cases closed already are left as they were. ``reason`` is the history's change reason
    (one row per closed case). The rows are locked in primary-key order; a fixed number
    of queries whatever the number of cases. Returns how many closed."""
    _may_work(by)
    closing = _closing(state, note)
    being_worked = cases.filter(state__in=Case.OPEN_STATES)
    if by is None:
        return update_with_history(being_worked, reason=reason, **closing)
    with transaction.atomic():
        return update_with_history(
            being_worked.filter(owner__isnull=True), reason=reason, owner=by, **closing
        ) + update_with_history(being_worked.filter(owner__isnull=False), reason=reason, **closing)


# Raising many problems at once (a reconciliation run): the bulk counterparts of
# ``case_open``, for a caller that has locked the cases of its problems (and holds what
# makes it their only writer) and knows which are new. History is written per case, in
# one statement per kind of change, attributed to the current actor (audit.bulk).


def cases_open(*, cases: Sequence[Case], reason: str) -> list[Case]:
    """Insert ``cases``, new problems, each open and named by its ``dedupe_key``, with one
    history row each. A ``dedupe_key`` taken already is the unique constraint's
    ``IntegrityError`` and nothing is inserted: the caller raises a known problem again
    with ``cases_raise_again``."""
    not_open = [case for case in cases if case.state != Case.State.OPEN or case.pk]
    if not_open:
        raise CaseError(f"Only new open cases are opened, not {not_open[0]}.")
    return bulk_create_with_history(list(cases), Case, reason=reason)


def cases_raise_again(
    *,
    found: Mapping[Case, Mapping[str, object]],
    updated_reason: str,
    reopened_reason: str,
) -> tuple[int, int]:
    """Problems found again, each case with what was found now (its new field values,
    from those a finding sets: ``summary``, ``expected``, ``found``, amounts):

    - a case still being worked takes the new values, with history only when one changed;
    - a resolved case opens again with them: the same case, owner and history kept, its
      close undone (the problem was fixed, and is back);
    - a waived case is left as it was: a person decided to live with the problem.

    One bulk write per kind of change (``updated_reason``, ``reopened_reason`` name them
    in the history). Returns (updated, reopened)."""
    refreshed, reopened, fields = [], [], set()
    for case, values in found.items():
        if case.state == Case.State.WAIVED:
            continue
        fields |= set(values)
        changed = any(getattr(case, name) != value for name, value in values.items())
        for name, value in values.items():
            setattr(case, name, value)
        if case.state == Case.State.RESOLVED:
            case.state, case.closed_at, case.closing_note = Case.State.OPEN, None, ""
            reopened.append(case)
        elif changed:
            refreshed.append(case)
    fields = sorted(fields)
    bulk_update_with_history(refreshed, Case, fields, reason=updated_reason)
    bulk_update_with_history(
        reopened, Case, [*fields, "state", "closed_at", "closing_note"], reason=reopened_reason
    )
    return len(refreshed), len(reopened)


ADD = "support.add_case"


@transaction.atomic
def case_open_by_hand(
    *,
    kind: str,
    customer: Customer | None,
    summary: str,
    by: AbstractBaseUser,
    expected: str = "",
    found: str = "",
    expected_amount=None,
    found_amount=None,
    owner: AbstractBaseUser | None = None,
) -> tuple[Case, bool]:
    """An exception someone noticed, opened from the admin: through ``case_open``, so
    raising it again (same kind, customer and summary, any spacing or case) finds the
    case instead of making a second one. Returns the case and whether it is new; an
    existing case is left as ``case_open`` leaves it (``found`` updated while open).

    ``by`` must be allowed to add cases; an ``owner`` must be someone who may work them.
    """
    if not by.is_active or not by.has_perm(ADD):
        raise CaseError("You may not do this: it needs the permission " + ADD)
    if kind not in Case.Kind.values:
        raise CaseError(f"“{kind}” is not a kind of case.")
    summary = " ".join((summary or "").split())
    if not summary:
        raise CaseError("Say what the problem is: a case needs a summary.")
    if owner is not None and not case_owners().filter(pk=owner.pk).exists():
        raise CaseError(f"{_name(owner)} may not work cases; pick someone who may.")
    if customer is None:
        about = "customer:none"
    else:  # a customer from the CRM may have no tenant id yet: its CRM id names it then
        about = f"customer:{customer.external_id or 'crm-' + customer.crm_id}"
    key = case_dedupe_key(kind, about, "by-hand", summary.lower())
    existed = Case.objects.filter(dedupe_key=key).exists()
    case = case_open(
        kind=kind,
        customer=customer,
        subject=None,
        summary=summary,
        expected=expected or "",
        found=found or "",
        dedupe_key=key,
        expected_amount=expected_amount,
        found_amount=found_amount,
        owner=owner,
    )
    if owner is not None and not existed:
        notices.cases_assigned_notify(cases=[case], owner=owner, by=by)
    return case, not existed
