"""Onboarding's Celery tasks: ids in, one service call, each named after the service it
calls; safe to run twice."""

import datetime as dt

from celery import shared_task
from django.utils import timezone

from customers.models import Contract
from onboarding import services


@shared_task(name="onboarding.checklist_generate", ignore_result=True)
def checklist_generate(contract_id: int) -> int | None:
    """A contract became active: its checklist (idempotent)."""
    contract = Contract.objects.filter(pk=contract_id).first()
    checklist = services.checklist_generate(contract=contract) if contract else None
    return checklist.pk if checklist else None


@shared_task(name="onboarding.checklist_sync", ignore_result=True)
def checklist_sync(contract_id: int) -> int | None:
    """An active contract's scope changed: its checklist follows (idempotent)."""
    contract = Contract.objects.filter(pk=contract_id).first()
    checklist = services.checklist_sync(contract=contract) if contract else None
    return checklist.pk if checklist else None


@shared_task(name="onboarding.checklists_sweep", ignore_result=True)
def checklists_sweep() -> int:
    """Contracts activated in the last day that have no checklist: their queueing was
    lost (broker down at the time) or they were activated by a bulk path without signals.
    Older active contracts are customers onboarded before opsdesk: left alone."""
    since = timezone.now() - dt.timedelta(days=1)
    missed = Contract.objects.filter(
        status=Contract.Status.ACTIVE, updated_at__gte=since, checklist__isnull=True
    )
    generated = 0
    for contract in missed.order_by("pk"):
        generated += services.checklist_generate(contract=contract) is not None
    return generated
