"""``crm.account.upserted`` and ``crm.contract.upserted``: the CRM's accounts and contracts
(``docs/contracts/crm.md``), taken by ``customers.crm`` as the webhook (``webhook:<id>``).

What the take changed less than the CRM asked for (an older change, an unknown account
manager) ends the event processed with a warning. A contract of an account opsdesk has
not received waits: the handler raises, so the event stays pending and is tried again
with the stored events' backoff, and the account's arrival brings its waiting contracts
forward at once. At its last attempt (``OPSDESK_WEBHOOK_MAX_ATTEMPTS``) it opens a case
for ops instead (``Case.Kind.CRM_UNKNOWN_ACCOUNT``, resolved in the inbox by linking a
customer or creating it: ``opsdesk.casework.resolutions``), never a silent drop.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from audit.bulk import update_with_history
from customers.crm import (
    CrmAccount,
    CrmAccountUnknown,
    CrmContract,
    Upserted,
    account_upsert,
    contract_upsert,
)
from support.cases import case_dedupe_key, case_open
from support.models import Case, WebhookEvent
from support.webhooks import EVENT_PUBLISHER, handles, webhook_actor

logger = logging.getLogger(__name__)

CONTRACT_TYPE = "crm.contract.upserted"


def _warn(event: WebhookEvent, warnings: tuple[str, ...] | list[str]) -> None:
    if warnings:
        event.warning = "; ".join(warnings)
        logger.warning("%s %s: %s", event.type, event.webhook_id, event.warning)


@handles("crm.account.upserted")
def crm_account_take(event: WebhookEvent, data: CrmAccount) -> Upserted:
    """Take the account (``customers.crm.account_upsert``); its contracts that wait for it
    are tried again at once."""
    taken = account_upsert(data, actor=webhook_actor(event.webhook_id))
    _warn(event, taken.warnings)
    if taken.outcome != "stale":
        _waiting_contracts_due(data.crm_id)
    return taken


def _waiting_contracts_due(crm_account_id: str) -> None:
    """The pending contract events of this account, due now and handed to the workers
    once the account commits (the sweep would find them at their next attempt anyway).
    Those a worker is processing right now are left to it."""
    now = timezone.now()
    waiting = list(
        WebhookEvent.objects.select_for_update(skip_locked=True)
        .filter(
            source=WebhookEvent.Source.CRM,
            type=CONTRACT_TYPE,
            status=WebhookEvent.Status.PENDING,
            next_attempt_at__gt=now,
            payload__data__crm_account_id=crm_account_id,
        )
        .values_list("pk", flat=True)
    )
    if not waiting:
        return
    update_with_history(
        WebhookEvent.objects.filter(pk__in=waiting),
        reason=f"CRM account {crm_account_id} arrived",
        next_attempt_at=now,
    )
    for pk in waiting:
        EVENT_PUBLISHER.add_after_commit(pk)


@handles(CONTRACT_TYPE)
def crm_contract_take(event: WebhookEvent, data: CrmContract) -> Upserted | None:
    """Take the contract (``customers.crm.contract_upsert``); one whose account is unknown
    waits (raises) and, at the last attempt, opens its case."""
    try:
        taken = contract_upsert(data, actor=webhook_actor(event.webhook_id))
    except CrmAccountUnknown as unknown:
        if event.attempts + 1 < settings.OPSDESK_WEBHOOK_MAX_ATTEMPTS:
            raise
        case = _unknown_account_case(event, data, attempts=event.attempts + 1)
        _warn(event, [f"{unknown}: case #{case.pk} opened for ops"])
        return None
    _warn(event, taken.warnings)
    return taken


def _unknown_account_case(event: WebhookEvent, data: CrmContract, *, attempts: int) -> Case:
    """One case per waiting contract (and account); it names the contract's newest change
    that waits, which its resolutions take."""
    details = {
        "crm_contract_id": data.crm_contract_id,
        "crm_account_id": data.crm_account_id,
        "webhook_id": event.webhook_id,
        "updated_at": data.updated_at.isoformat(),
    }
    case = case_open(
        kind=Case.Kind.CRM_UNKNOWN_ACCOUNT,
        customer=None,
        subject=event,
        summary=(
            f"CRM contract {data.crm_contract_id} is for CRM account {data.crm_account_id}, "
            "which opsdesk has not received"
        ),
        expected=f"CRM account {data.crm_account_id} received before or soon after its contract",
        found=(
            f"still unknown after {attempts} attempts to take the contract "
            f"(webhook {event.webhook_id})"
        ),
        dedupe_key=case_dedupe_key(
            Case.Kind.CRM_UNKNOWN_ACCOUNT,
            "crm-contract",
            data.crm_contract_id,
            data.crm_account_id,
        ),
        details=details,
    )
    waiting_since = case.details.get("updated_at")
    newer = waiting_since and data.updated_at > dt.datetime.fromisoformat(waiting_since)
    if case.is_open and case.subject_id != str(event.pk) and newer:
        update_with_history(
            Case.objects.filter(pk=case.pk),
            reason="a newer change of the contract waits",
            subject_id=str(event.pk),
            details=details,
        )
        case.refresh_from_db()
    return case
