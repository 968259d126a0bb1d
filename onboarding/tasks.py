"""Onboarding's Celery tasks: ids in, one service call; both safe to run twice."""

import datetime as dt

from celery import shared_task
from django.utils import timezone

from customers.models import Contract
from onboarding.services import checklist_generate, checklist_sync


@shared_task(name="onboarding.generate_checklist", ignore_result=True)
def generate_checklist(contract_id: int) -> int | None:
    """A contract became active: its checklist (idempotent)."""
    contract = Contract.objects.filter(pk=contract_id).first()
    checklist = checklist_generate(contract=contract) if contract else None
    return checklist.pk if checklist else None


@shared_task(name="onboarding.sync_checklist", ignore_result=True)
def sync_checklist(contract_id: int) -> int | None:
    """An active contract's scope changed: its checklist follows (idempotent)."""
    contract = Contract.objects.filter(pk=contract_id).first()
    checklist = checklist_sync(contract=contract) if contract else None
    return checklist.pk if checklist else None


@shared_task(name="onboarding.sweep_checklists", ignore_result=True)
def sweep_checklists() -> int:
    """Contracts activated in the last day that have no checklist: their queueing was
    lost (broker down at the time) or they were activated by a bulk path without signals.
    Older active contracts are customers onboarded before opsdesk: left alone."""
    since = timezone.now() - dt.timedelta(days=1)
    missed = Contract.objects.filter(
        status=Contract.Status.ACTIVE, updated_at__gte=since, checklist__isnull=True
    )
    generated = 0
    for contract in missed.order_by("pk"):
        generated += checklist_generate(contract=contract) is not None
    return generated
