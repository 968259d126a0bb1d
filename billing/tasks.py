"""Reconciliation from beat (daily, this month and last) and from the admin."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

from celery import shared_task
from django.contrib.auth import get_user_model
from django.utils import timezone

from audit.context import acting_as, current_actor
from billing import reconciliation
from billing.models import ReconciliationRun
from billing.reconciliation import ReconciliationBusy
from customers.models import Customer
from kit.months import add_months, month_start


@shared_task(name="billing.reconciliation_run_recent", ignore_result=True)
def reconciliation_run_recent() -> list[str]:
    """Queue the reconciliation of the current and the previous month."""
    this_month = month_start(timezone.now().date())
    previous = add_months(this_month, -1)
    months = [previous.isoformat(), this_month.isoformat()]
    for month in months:
        reconciliation_run.delay(month)
    return months


@shared_task(
    name="billing.reconciliation_run",
    bind=True,
    ignore_result=True,
    autoretry_for=(ReconciliationBusy,),
    retry_backoff=60,
    retry_backoff_max=900,
    max_retries=8,
)
def reconciliation_run(
    self,
    month: str,
    customer_id: int | None = None,
    requested_by: int | None = None,
    requested_at: str | None = None,
) -> int:
    """Reconcile ``month`` (ISO date of any day in it), for every customer or one. Waits
    and tries again while another run of the month is writing. ``requested_by``: the id
    of the person who asked for it in the admin, named by the run and its history.
    ``requested_at`` (ISO time of the click): a run of the month that started after it
    and succeeded already answers it (a double click, or two people at once), so its
    id is returned and nothing runs again."""
    first = dt.date.fromisoformat(month)
    customer = Customer.objects.get(pk=customer_id) if customer_id else None
    if requested_at:
        answered = ReconciliationRun.objects.filter(
            month=month_start(first),
            customer=customer,
            status=ReconciliationRun.Status.SUCCEEDED,
            started_at__gte=dt.datetime.fromisoformat(requested_at),
        ).first()
        if answered is not None:
            return answered.pk
    with on_behalf_of(requested_by):
        return reconciliation.reconciliation_run(month=first, customer=customer).pk


@contextlib.contextmanager
def on_behalf_of(user_id: int | None) -> Iterator[None]:
    """Inside a task a person asked for: every write is attributed to the task *for* that
    person (``task:reconciliation_run for olga``, with the user on each history row), so the
    audit log names who started it. Without a person (beat), the task alone."""
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    if user is None:
        yield
        return
    with acting_as(f"{current_actor().label} for {user.get_username()}", user=user):
        yield
