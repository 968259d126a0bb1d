"""How each kind of case is resolved (docs/product.md#exceptions): the resolution actions
the ops inbox offers, each calling the services of the app the problem lives in.

A resolution is one transaction: the fix (through the service, with its own checks and
history) and the case's close with the note, every history row attributed to the person
and linked to the case (``audit.context.acting_for``). Any refusal changes nothing.

Every kind can also be resolved with a note (fixed elsewhere) or waived with a reason;
those are ``support.cases.case_close`` and need no entry here. A kind's own actions are
registered with ``@resolution``: billing adds its own in the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from audit.bulk import update_with_history
from audit.context import acting_for
from customers.crm import (
    LINK,
    CrmContract,
    CrmError,
    Upserted,
    account_create,
    account_link,
    contract_upsert,
)
from customers.entitlements import (
    EntitlementError,
    entitlement_action_allowed,
    entitlement_reassign,
    entitlement_redeem,
    entitlement_replace,
)
from customers.models import Contract, Customer, Entitlement, Order, Product
from customers.orders import OrderError, order_action_allowed, order_fulfil, order_record_refund
from support.cases import CHANGE as CASE_CHANGE
from support.cases import CaseError, case_close
from support.models import Case, WebhookEvent
from support.webhook_schemas import ValidationError, parse_event


class ResolutionError(Exception):
    """A resolution that cannot run; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Resolution:
    """One way to resolve a kind of case: what it is called, what it asks for beyond the
    closing note, when it applies, and what it does."""

    key: str
    kind: str
    label: str
    help: str
    permission: str
    form_class: type[forms.Form]
    # Why it does not apply to this case right now, or "" when it does.
    unavailable: Callable[[Case], str]
    # Does the fix (inside the resolution's transaction); returns what happened.
    apply: Callable[[Case, dict, AbstractBaseUser], str]
    # Initial values for its form on this case.
    initial: Callable[[Case], dict] = lambda case: {}


RESOLUTIONS: dict[tuple[str, str], Resolution] = {}


def resolution(**options) -> Callable:
    """Register the decorated function as the ``apply`` of a resolution."""

    def register(apply):
        entry = Resolution(apply=apply, **options)
        RESOLUTIONS[entry.kind, entry.key] = entry
        return apply

    return register


def resolutions_for(case: Case) -> list[tuple[Resolution, str]]:
    """The kind's resolutions, each with why it does not apply now ("" when it does)."""
    return [
        (entry, entry.unavailable(case))
        for (kind, _), entry in RESOLUTIONS.items()
        if kind == case.kind
    ]


def case_resolve(
    *, case: Case, key: str, data: dict, note: str, by: AbstractBaseUser
) -> tuple[Case, str]:
    """Run resolution ``key`` on ``case`` and close it as resolved with ``note``: both
    or neither. Returns the closed case and what the fix did."""
    entry = RESOLUTIONS.get((case.kind, key))
    if entry is None:
        raise ResolutionError(f"{case.get_kind_display()} cases have no action {key!r}.")
    if not by.has_perm(CASE_CHANGE):
        raise ResolutionError(f"You may not close cases: it needs the permission {CASE_CHANGE}")
    if not by.has_perm(entry.permission):
        raise ResolutionError(
            f"You may not {entry.label.lower()}: it needs the permission {entry.permission}"
        )
    if not (note or "").strip():
        raise ResolutionError("Say how it was resolved: a case closes with a note.")
    try:
        with transaction.atomic(), acting_for(case):
            case = Case.objects.select_for_update().get(pk=case.pk)
            if case.state not in Case.OPEN_STATES:
                raise CaseError(f"Case #{case.pk} is {case.get_state_display().lower()} already.")
            why_not = entry.unavailable(case)
            if why_not:
                raise ResolutionError(why_not)
            done = entry.apply(case, data, by)
            closed = case_close(
                case=case, state=Case.State.RESOLVED, note=f"{done} {note.strip()}", by=by
            )
    except (CaseError, CrmError, EntitlementError, OrderError) as exc:
        raise ResolutionError(str(exc)) from exc
    return closed, done


def _subject(case: Case, model: type) -> object | None:
    """The case's subject when it is a ``model`` that still exists (one query)."""
    if (
        case.subject_type_id is None
        or ContentType.objects.get_for_id(case.subject_type_id).model_class() is not model
    ):
        return None
    return model.objects.filter(pk=case.subject_id).first()


# Failed fulfilment: the order is recorded, nothing was issued.


class FulfilForm(forms.Form):
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.exclude(status=Customer.Status.CHURNED),
        # Searched as you type (the admin's customer search): there may be thousands.
        widget=AutocompleteSelect(Order._meta.get_field("customer"), admin.site),
        help_text="Who receives the entitlements (the tenant may have been unknown).",
    )
    product = forms.ModelChoiceField(
        queryset=Product.objects.filter(status=Product.Status.ACTIVE).order_by("sku"),
        help_text="What to issue (the SKU may have been unknown or retired).",
    )


def _order_allows(action: str) -> Callable[[Case], str]:
    """Why the case's order does not allow ``action`` now (customers.orders.ORDER_ACTIONS)."""

    def unavailable(case: Case) -> str:
        order = _subject(case, Order)
        if order is None:
            return "The order this case is about no longer exists."
        if not order_action_allowed(order, action):
            state = order.get_fulfilment_display().lower()
            return f"Order {order.external_id} is {state} already."
        return ""

    return unavailable


def _fulfil_initial(case: Case) -> dict:
    order = _subject(case, Order)
    if order is None:
        return {}
    customer = order.customer or Customer.objects.filter(external_id=order.tenant_id).first()
    product = order.product or Product.objects.filter(sku=order.sku).first()
    live = product is not None and product.status == Product.Status.ACTIVE
    return {"customer": customer, "product": product if live else None}


@resolution(
    kind=Case.Kind.FAILED_FULFILMENT,
    key="fulfil",
    label="Fulfil now",
    help="Issue the order's entitlements now, to the customer and product you choose.",
    permission="customers.change_order",
    form_class=FulfilForm,
    unavailable=_order_allows("fulfil"),
    initial=_fulfil_initial,
)
def _fulfil(case: Case, data: dict, by: AbstractBaseUser) -> str:
    order = _subject(case, Order)
    if case.customer_id is None:  # the tenant was unknown: the case now has its customer
        update_with_history(
            Case.objects.filter(pk=case.pk),
            reason="the order's customer was chosen",
            customer=data["customer"],
        )
    issued = order_fulfil(
        order=order,
        customer=data["customer"],
        product=data["product"],
        reason=f"fulfilled by hand (case #{case.pk})",
        by=by,
    )
    return f"Fulfilled: {len(issued)} × {data['product'].sku} issued to {data['customer']}."  # noqa: RUF001


class RefundForm(forms.Form):
    reference = forms.CharField(
        max_length=100,
        label="Refund reference",
        help_text="The refund or credit note id in the billing system.",
    )


@resolution(
    kind=Case.Kind.FAILED_FULFILMENT,
    key="refund",
    label="Record refund",
    help="The customer was refunded instead: the order is closed as refunded, nothing issued.",
    permission="customers.change_order",
    form_class=RefundForm,
    unavailable=_order_allows("refund"),
)
def _refund(case: Case, data: dict, by: AbstractBaseUser) -> str:
    order = order_record_refund(
        order=_subject(case, Order),
        reference=data["reference"],
        reason=f"refunded (case #{case.pk})",
        by=by,
    )
    return f"Refund {order.refund_reference} recorded for order {order.external_id}."


# Problem redemption: the product reported a redemption opsdesk did not record.


class NoFields(forms.Form):
    pass


def _redemption(case: Case) -> tuple[Entitlement | None, str, dt.datetime | None]:
    """The entitlement, who redeemed it and when, as the case recorded them."""
    details = case.details or {}
    at = details.get("redeemed_at")
    return (
        _subject(case, Entitlement),
        details.get("email", ""),
        dt.datetime.fromisoformat(at) if at else None,
    )


def _acceptable(case: Case) -> str:
    entitlement, email, at = _redemption(case)
    if entitlement is None:
        return "The code matches no entitlement, so there is no seat to give."
    if not email or at is None:
        return "The case does not record who redeemed the code and when."
    if entitlement.customer.external_id != case.details.get("tenant_id"):
        return f"The code belongs to {entitlement.customer}, not to the redeeming tenant."
    if not entitlement_action_allowed(entitlement, "redeem"):
        state = entitlement.get_state_display().lower()
        return f"{entitlement.code} is {state}: it cannot be redeemed again."
    if entitlement.valid_until is not None and at.date() > entitlement.valid_until:
        return f"{entitlement.code} ended on {entitlement.valid_until:%d %b %Y}."
    return ""


@resolution(
    kind=Case.Kind.PROBLEM_REDEMPTION,
    key="accept",
    label="Accept redemption",
    help="The person who redeemed keeps the seat: it is (re)assigned to them and redeemed.",
    permission="customers.change_entitlement",
    form_class=NoFields,
    unavailable=_acceptable,
)
def _accept(case: Case, data: dict, by: AbstractBaseUser) -> str:
    entitlement, email, at = _redemption(case)
    reason = f"redemption by {email} accepted (case #{case.pk})"
    if entitlement.state == Entitlement.State.ASSIGNED and entitlement.assignee_email != email:
        before = entitlement.assignee_email
        entitlement = entitlement_reassign(
            entitlement=entitlement, email=email, reason=reason, by=by
        )
        entitlement_redeem(entitlement=entitlement, email=email, at=at, reason=reason, by=by)
        return f"{entitlement.code} moved from {before} to {email} and redeemed."
    entitlement_redeem(entitlement=entitlement, email=email, at=at, reason=reason, by=by)
    return f"{entitlement.code} redeemed by {email}."


def _replaceable(case: Case) -> str:
    entitlement = _subject(case, Entitlement)
    if entitlement is None:
        return "The code matches no entitlement, so there is nothing to revoke."
    # Revoke and reissue (customers.entitlements.entitlement_replace) starts with a revoke.
    if not entitlement_action_allowed(entitlement, "revoke"):
        return f"{entitlement.code} is {entitlement.get_state_display().lower()} already."
    return ""


@resolution(
    kind=Case.Kind.PROBLEM_REDEMPTION,
    key="revoke_reissue",
    label="Revoke and reissue",
    help="The code leaked: it stops working, and a new entitlement with a fresh code takes "
    "its place (assigned to the same person).",
    permission="customers.change_entitlement",
    form_class=NoFields,
    unavailable=_replaceable,
)
def _revoke_reissue(case: Case, data: dict, by: AbstractBaseUser) -> str:
    entitlement = _subject(case, Entitlement)
    new = entitlement_replace(
        entitlement=entitlement,
        reason=f"code {entitlement.code} used by someone else (case #{case.pk})",
        by=by,
    )
    holder = f", assigned to {new.assignee_email}" if new.assignee_email else ""
    return f"{entitlement.code} revoked; {new.code} issued in its place{holder}."


# CRM contract of an unknown account: the contract waits in its webhook event (the case's
# subject, its newest change) for a customer that is that CRM account.


def _waiting(case: Case) -> CrmContract | None:
    """The waiting contract, as the CRM sent it in the case's event (None: no such event)."""
    event = _subject(case, WebhookEvent)
    if event is None or event.source != WebhookEvent.Source.CRM:
        return None
    try:
        contract = parse_event(event.payload, event.source)[1]
    except ValidationError:
        return None
    return contract if isinstance(contract, CrmContract) else None


def _waits(case: Case) -> str:
    if _waiting(case) is None:
        return "The CRM contract this case is about is no longer stored."
    return ""


def _creatable(case: Case) -> str:
    contract = _waiting(case)
    if contract is None:
        return _waits(case)
    holder = Customer.objects.filter(crm_id=contract.crm_account_id).first()
    if holder is not None:
        return f"CRM account {contract.crm_account_id} is {holder} now: link it instead."
    return ""


def _take_for(case: Case, customer: Customer, contract: CrmContract, by) -> str:
    """Take the waiting contract for ``customer``, which the case now concerns."""
    if case.customer_id != customer.pk:
        update_with_history(
            Case.objects.filter(pk=case.pk),
            reason="the CRM account's customer was chosen",
            customer=customer,
        )
    taken: Upserted = contract_upsert(contract, actor=by)
    what = f"CRM contract {contract.crm_contract_id}"
    return {
        "created": f"{what} taken: the contract is {taken.record.get_status_display().lower()}.",
        "changed": f"{what} taken: the contract was updated.",
        "unchanged": f"{what} was taken already, as the CRM sent it.",
        "stale": f"{what} has a newer change taken already; nothing changed.",
    }[taken.outcome]


class LinkCustomerForm(forms.Form):
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.all(),
        widget=AutocompleteSelect(Contract._meta.get_field("customer"), admin.site),
        help_text="The customer that is this CRM account: it keeps the CRM's id from now on.",
    )


def _link_initial(case: Case) -> dict:
    contract = _waiting(case)
    if contract is None:
        return {}
    return {"customer": Customer.objects.filter(crm_id=contract.crm_account_id).first()}


@resolution(
    kind=Case.Kind.CRM_UNKNOWN_ACCOUNT,
    key="link",
    label="Link to an existing customer",
    help="The CRM account is a customer opsdesk has: it gets the CRM account's id, and the "
    "waiting contract is taken for it.",
    permission=LINK,
    form_class=LinkCustomerForm,
    unavailable=_waits,
    initial=_link_initial,
)
def _link(case: Case, data: dict, by: AbstractBaseUser) -> str:
    contract = _waiting(case)
    customer = account_link(customer=data["customer"], crm_id=contract.crm_account_id, by=by)
    taken = _take_for(case, customer, contract, by)
    return f"{customer} linked to CRM account {contract.crm_account_id}. {taken}"


class CreateCustomerForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        help_text="The customer's name until the CRM sends the account (then the CRM's).",
    )
    tenant_id = forms.CharField(
        max_length=100,
        required=False,
        label="Tenant id",
        help_text="The product's tenant id, if the tenant exists yet.",
    )


@resolution(
    kind=Case.Kind.CRM_UNKNOWN_ACCOUNT,
    key="create",
    label="Create the customer",
    help="The CRM account is new to opsdesk: a customer is created with the CRM account's id, "
    "and the waiting contract is taken for it. The CRM's account, when it comes, fills it in.",
    permission=LINK,
    form_class=CreateCustomerForm,
    unavailable=_creatable,
)
def _create(case: Case, data: dict, by: AbstractBaseUser) -> str:
    contract = _waiting(case)
    customer = account_create(
        crm_id=contract.crm_account_id, name=data["name"], tenant_id=data["tenant_id"], by=by
    )
    taken = _take_for(case, customer, contract, by)
    return f"{customer} created for CRM account {contract.crm_account_id}. {taken}"
