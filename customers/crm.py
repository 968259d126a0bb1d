"""Accounts and contracts from the CRM (``docs/contracts/crm.md``): what the CRM sends, and
taking it into ``Customer`` and ``Contract``.

The CRM is where sales creates accounts and signs contracts; opsdesk keeps the CRM's ids
and takes each record as the CRM last changed it. ``account_upsert`` and
``contract_upsert`` are the one way in, whoever brings the record: the CRM's webhook
(``support.crm_events``, acting as ``webhook:<id>``), an import (``command:<name>``) or a
person resolving a waiting contract's case. Both are idempotent (the same record again
changes nothing and writes no history) and keep the CRM's order: a record older than the
one taken last changes nothing and says so.

Once the CRM has sent a record (``crm_updated_at`` set), the fields it sends are the CRM's
(``CRM_OWNED``): the admin shows them read-only. A record typed in opsdesk before keeps its
history when the CRM's first event links it (by CRM id, or an account by its tenant id).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import connection, models, transaction
from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from audit.context import acting_as, acting_as_user, require_permission
from customers.models import Contract, Customer
from kit.schemas import INTEGER_MAX, Day, Moment, OptionalDay, Schema

# --- What the CRM sends -------------------------------------------------------------------

CrmId = Annotated[str, Field(min_length=1, max_length=100)]


def _absent_is_empty(value: object) -> object:
    return "" if value is None else value


def _email(value: str) -> str:
    """Empty, or an email address by Django's check, as staff addresses are checked: it
    takes the internal domains (.test, .local) a company may use, which pydantic's
    ``EmailStr`` refuses."""
    if not value:
        return value
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValueError("must be an email address") from None
    return value


def _absent_is_no_list(value: object) -> object:
    return [] if value is None else value


class CrmAccount(Schema):
    """``crm.account.upserted``'s data; an ``import_crm`` accounts row."""

    crm_id: CrmId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    # Unknown until the product's tenant exists: absent, null or empty.
    tenant_id: Annotated[str, Field(max_length=100), BeforeValidator(_absent_is_empty)] = ""
    # A staff member's address; absent, null or empty: the CRM names no account manager.
    account_manager_email: Annotated[
        str,
        Field(max_length=254),
        BeforeValidator(_absent_is_empty),
        AfterValidator(_email),
    ] = ""
    status: Literal["onboarding", "active", "churned"] | None = None
    updated_at: Moment


# An integration as the CRM names it: the ones opsdesk knows (Contract.Integration) and any
# other the CRM adds, kept as sent (onboarding items follow the ones they name).
Integration = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,30}$")]


class CrmContract(Schema):
    """``crm.contract.upserted``'s data; an ``import_crm`` contracts row."""

    crm_contract_id: CrmId
    crm_account_id: CrmId
    # opsdesk's plans pick service levels and onboarding: another is refused (422).
    plan: Literal[tuple(Contract.Plan.values)]  # type: ignore[valid-type]
    seats: Annotated[int, Field(ge=0, le=INTEGER_MAX)]
    monthly_fee: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
    price_per_extra_seat: Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    start_date: Day
    end_date: OptionalDay = None
    status: Literal[tuple(Contract.Status.values)]  # type: ignore[valid-type]
    integrations: Annotated[
        list[Integration], Field(max_length=50), BeforeValidator(_absent_is_no_list)
    ] = []
    updated_at: Moment

    @model_validator(mode="after")
    def _ends_after_it_starts(self):
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


CRM_EVENT_SCHEMAS = {
    "crm.account.upserted": CrmAccount,
    "crm.contract.upserted": CrmContract,
}

# --- Who owns which field -----------------------------------------------------------------

# The fields the CRM sends, per model: read-only in the admin once the record is linked.
CRM_OWNED: dict[type[models.Model], tuple[str, ...]] = {
    Customer: ("name", "external_id", "account_manager", "status", "crm_id"),
    Contract: (
        "customer",
        "plan",
        "seats",
        "monthly_fee",
        "price_per_extra_seat",
        "currency",
        "start_date",
        "end_date",
        "status",
        "integrations",
        "crm_id",
    ),
}


def crm_linked(record: Customer | Contract | None) -> bool:
    """Whether the CRM has sent this record: its CRM-owned fields are the CRM's. A CRM id
    typed in opsdesk alone does not link it (the CRM's first event will)."""
    return record is not None and record.crm_updated_at is not None


def crm_owned_fields(record: Customer | Contract | None) -> list[str]:
    """The fields of ``record`` that only the CRM changes: none until it is linked."""
    return list(CRM_OWNED[type(record)]) if crm_linked(record) else []


# --- Taking records from the CRM ----------------------------------------------------------

# Who may take a CRM record by hand (a waiting contract's case): the system (webhooks,
# imports) takes them without asking.
LINK = "customers.link_crm_account"


class CrmError(Exception):
    """A CRM record opsdesk cannot take as it stands; the message says why. Nothing was
    changed."""


class CrmAccountUnknown(CrmError):
    """A contract of an account opsdesk has not seen: it waits (a webhook is retried)."""

    def __init__(self, contract: CrmContract):
        self.contract = contract
        super().__init__(
            f"contract {contract.crm_contract_id} waits for CRM account "
            f"{contract.crm_account_id}, which opsdesk has not received yet"
        )


@dataclass(frozen=True)
class Upserted:
    """What an upsert did: ``outcome`` is ``created``, ``changed`` (``fields`` names what),
    ``unchanged`` or ``stale`` (older than what was taken last: nothing changed);
    ``warnings`` say what was taken otherwise than sent."""

    record: Customer | Contract
    outcome: Literal["created", "changed", "unchanged", "stale"]
    fields: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


Actor = Any  # a history label ("webhook:<id>", "command:import_crm") or a person


def taking_as(actor: Actor):
    """The history's actor for a take: a label as given, or a person once their
    ``customers.link_crm_account`` is checked (``PermissionDenied`` without it)."""
    if isinstance(actor, str):
        return acting_as(actor)
    require_permission(actor, LINK, PermissionDenied)
    return acting_as_user(actor)


def take_locks(kind: str, crm_ids: list[str]) -> None:
    """Serialise the takes of CRM records (until the transaction ends): a retry racing
    the first delivery waits for it and finds the record, instead of failing on its
    unique CRM id. Several at once (an import's batch) in one order, so two takers
    cannot deadlock."""
    keys = sorted(f"{kind}:{crm_id}" for crm_id in crm_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS t(k, n)",
            [keys],
        )


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def stale_take(what: str, record, updated_at: dt.datetime) -> Upserted | None:
    """The answer when the CRM's change of ``updated_at`` is older than the one taken."""
    if record is None or record.crm_updated_at is None or updated_at >= record.crm_updated_at:
        return None
    warning = (
        f"{what}: this change ({_when(updated_at)}) is older than the one taken "
        f"({_when(record.crm_updated_at)}); nothing changed"
    )
    return Upserted(record, "stale", warnings=(warning,))


def stored_value(record: models.Model, name: str) -> object:
    """``record``'s value of field ``name`` as stored (a foreign key's id)."""
    field = record._meta.get_field(name)
    return getattr(record, field.attname)


def comparable_value(value: object) -> object:
    """``value`` as ``stored_value`` gives it: a record's id, anything else as it is."""
    return value.pk if isinstance(value, models.Model) else value


def _write(record, values: dict, *, reason: str, warnings: list[str]) -> Upserted:
    """Create ``record`` or change it to ``values`` through ``save()`` (history, and the
    contract signals onboarding follows), or leave it when nothing differs."""
    created = record.pk is None
    changed = tuple(
        name
        for name, value in values.items()
        if created or stored_value(record, name) != comparable_value(value)
    )
    if not changed:
        return Upserted(record, "unchanged", warnings=tuple(warnings))
    for name, value in values.items():
        setattr(record, name, value)
    record._change_reason = reason
    record.save()
    return Upserted(record, "created" if created else "changed", changed, tuple(warnings))


def manager_by_email(email: str | None, warnings: list[str]):
    """The active staff member with that email (any case), or None with a warning."""
    if not email:
        return None
    found = list(
        get_user_model().objects.filter(email__iexact=email, is_staff=True, is_active=True)[:2]
    )
    if len(found) == 1:
        return found[0]
    why = "matches no active staff member" if not found else "is the email of several staff"
    warnings.append(f"account manager {email} {why}: the account has no account manager")
    return None


def _tenant_free(tenant_id: str, customer: Customer | None) -> None:
    holder = Customer.objects.filter(external_id=tenant_id)
    if customer is not None and customer.pk:
        holder = holder.exclude(pk=customer.pk)
    holder = holder.first()
    if holder is not None:
        raise CrmError(
            f"tenant id {tenant_id} is {holder}'s"
            + (f" (CRM account {holder.crm_id})" if holder.crm_id else "")
        )


def account_upsert(data: CrmAccount, *, actor: Actor) -> Upserted:
    """Take one CRM account into its customer: found by CRM id, else by tenant id (a
    customer typed in opsdesk, linked now with its history kept), else created.

    Idempotent: the same account again changes nothing and writes no history; a change
    the CRM made before the one taken last (``updated_at``) changes nothing and warns.
    An absent tenant id or status leaves opsdesk's as it is; the account manager is the
    active staff member with ``account_manager_email``, and none (with a warning) when
    the CRM names nobody opsdesk knows. A tenant id that is another customer's, or a
    customer found by tenant id that is another CRM account, is a ``CrmError`` and
    changes nothing. ``actor`` names who the history says took it: a label, or a person
    holding ``customers.link_crm_account``.
    """
    with transaction.atomic(), taking_as(actor):
        take_locks("crm-account", [data.crm_id])
        customer = Customer.objects.select_for_update().filter(crm_id=data.crm_id).first()
        linked_by = "CRM id"
        if customer is None and data.tenant_id:
            customer = (
                Customer.objects.select_for_update().filter(external_id=data.tenant_id).first()
            )
            linked_by = "tenant id"
            if customer is not None and customer.crm_id:
                raise CrmError(
                    f"tenant id {data.tenant_id} is {customer}'s, which is CRM account "
                    f"{customer.crm_id}, not {data.crm_id}"
                )
        stale = stale_take(f"account {data.crm_id}", customer, data.updated_at)
        if stale:
            return stale
        warnings: list[str] = []
        if data.tenant_id and (customer is None or customer.external_id != data.tenant_id):
            _tenant_free(data.tenant_id, customer)
        values = account_values(data, manager_by_email(data.account_manager_email, warnings))
        reason = account_reason(data, customer, linked_by=linked_by)
        return _write(customer or Customer(), values, reason=reason, warnings=warnings)


def account_values(data: CrmAccount, manager) -> dict[str, object]:
    """The customer's fields as the CRM account ``data`` sets them, its account manager
    being ``manager`` (found from the CRM's address): an absent tenant id or status
    leaves opsdesk's as it is. The webhook's take and the import's batches write these."""
    values: dict[str, object] = {
        "crm_id": data.crm_id,
        "name": data.name,
        "account_manager": manager,
        "crm_updated_at": data.updated_at,
    }
    if data.tenant_id:
        values["external_id"] = data.tenant_id
    if data.status:
        values["status"] = data.status
    return values


def account_reason(data: CrmAccount, customer: Customer | None, *, linked_by: str) -> str:
    """The history's reason for taking ``data`` into ``customer`` (None: a new one), found
    by its ``linked_by`` ("CRM id", "tenant id") when it was not linked yet."""
    if customer is None:
        return f"CRM account {data.crm_id}, as of {_when(data.updated_at)}"
    if not crm_linked(customer):
        return f"linked to CRM account {data.crm_id} by its {linked_by}"
    return f"CRM account {data.crm_id} changed, as of {_when(data.updated_at)}"


def contract_upsert(data: CrmContract, *, actor: Actor) -> Upserted:
    """Take one CRM contract: found by its CRM id, else created, for the customer whose
    CRM id is ``crm_account_id``.

    Idempotent and ordered as ``account_upsert``. Written through ``save()``, so a
    contract becoming active gets its onboarding checklist and a change of its scope
    (plan, seats, integrations) updates it, exactly as an edit in the admin does
    (``onboarding.signals``). An account opsdesk has not received is
    ``CrmAccountUnknown`` and changes nothing: the contract waits.
    """
    with transaction.atomic(), taking_as(actor):
        take_locks("crm-contract", [data.crm_contract_id])
        customer = Customer.objects.filter(crm_id=data.crm_account_id).first()
        if customer is None:
            raise CrmAccountUnknown(data)
        contract = Contract.objects.select_for_update().filter(crm_id=data.crm_contract_id).first()
        stale = stale_take(f"contract {data.crm_contract_id}", contract, data.updated_at)
        if stale:
            return stale
        values = contract_values(data, customer)
        reason = contract_reason(data, contract)
        return _write(contract or Contract(), values, reason=reason, warnings=[])


def contract_values(data: CrmContract, customer: Customer) -> dict[str, object]:
    """The contract's fields as the CRM contract ``data`` of ``customer`` sets them. The
    webhook's take and the import's batches write these."""
    return {
        "crm_id": data.crm_contract_id,
        "customer": customer,
        "plan": data.plan,
        "seats": data.seats,
        "monthly_fee": data.monthly_fee,
        "price_per_extra_seat": data.price_per_extra_seat,
        "currency": data.currency,
        "start_date": data.start_date,
        "end_date": data.end_date,
        "status": data.status,
        # A set: the CRM's order of them means nothing.
        "integrations": sorted(set(data.integrations)),
        "crm_updated_at": data.updated_at,
    }


def contract_reason(data: CrmContract, contract: Contract | None) -> str:
    """The history's reason for taking ``data`` into ``contract`` (None: a new one)."""
    verb = "changed" if crm_linked(contract) else "linked" if contract else "created"
    return f"CRM contract {data.crm_contract_id} {verb}, as of {_when(data.updated_at)}"


# --- A waiting contract's case: its account by hand --------------------------------------


def account_link(*, customer: Customer, crm_id: str, by) -> Customer:
    """Give ``customer`` the CRM id ``crm_id`` (a waiting contract's case: this customer
    is that CRM account), with history. Its fields stay opsdesk's until the CRM sends the
    account. Idempotent; a customer that is another CRM account, or a CRM id that is
    another customer's, is a ``CrmError``. ``by`` holds ``customers.link_crm_account``."""
    with transaction.atomic(), taking_as(by):
        take_locks("crm-account", [crm_id])
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if customer.crm_id == crm_id:
            return customer
        if customer.crm_id:
            raise CrmError(f"{customer} is CRM account {customer.crm_id}, not {crm_id}")
        holder = Customer.objects.filter(crm_id=crm_id).first()
        if holder is not None:
            raise CrmError(f"CRM account {crm_id} is {holder} already")
        customer.crm_id = crm_id
        customer._change_reason = f"linked to CRM account {crm_id} by hand"
        customer.save(update_fields=["crm_id", "updated_at"])
        return customer


def account_create(*, crm_id: str, name: str, tenant_id: str = "", by) -> Customer:
    """A new customer for CRM account ``crm_id`` (a waiting contract's case), named by a
    person until the CRM sends the account. A CRM id or tenant id that is another
    customer's is a ``CrmError``. ``by`` holds ``customers.link_crm_account``."""
    name, tenant_id = name.strip(), tenant_id.strip()
    if not name:
        raise CrmError("Say what the customer is called.")
    with transaction.atomic(), taking_as(by):
        take_locks("crm-account", [crm_id])
        holder = Customer.objects.filter(crm_id=crm_id).first()
        if holder is not None:
            raise CrmError(f"CRM account {crm_id} is {holder} already")
        if tenant_id:
            _tenant_free(tenant_id, None)
        customer = Customer(crm_id=crm_id, name=name, external_id=tenant_id)
        customer._change_reason = f"created for CRM account {crm_id} by hand"
        customer.save()
        return customer
