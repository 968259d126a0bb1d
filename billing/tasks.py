"""Reconciliation from beat (daily, this month and last) and from the admin."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from billing.reconciliation import ReconciliationBusy, month_start, reconcile
from customers.models import Customer


@shared_task(name="billing.reconcile_recent", ignore_result=True)
def reconcile_recent() -> list[str]:
    """Queue the reconciliation of the current and the previous month."""
    this_month = month_start(timezone.now().date())
    previous = month_start(this_month - dt.timedelta(days=1))
    months = [previous.isoformat(), this_month.isoformat()]
    for month in months:
        reconcile_month.delay(month)
    return months


@shared_task(
    name="billing.reconcile_month",
    bind=True,
    ignore_result=True,
    autoretry_for=(ReconciliationBusy,),
    retry_backoff=60,
    retry_backoff_max=900,
    max_retries=8,
)
def reconcile_month(self, month: str, customer_id: int | None = None) -> int:
    """Reconcile ``month`` (ISO date of any day in it), for every customer or one. Waits
    and tries again while another run of the month is writing."""
    customer = Customer.objects.get(pk=customer_id) if customer_id else None
    return reconcile(month=dt.date.fromisoformat(month), customer=customer).pk
