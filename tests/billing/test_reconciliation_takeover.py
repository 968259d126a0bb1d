"""A run whose worker died is taken over after ``OPSDESK_RECONCILE_STALE_MINUTES`` (the
fault drills shorten it to a minute; ``make drills`` kills a worker mid-run)."""

import datetime as dt

import pytest
from django.utils import timezone

from audit.context import acting_as
from billing.models import ReconciliationRun
from billing.reconciliation import ReconciliationBusy, reconciliation_run

pytestmark = pytest.mark.django_db

OCTOBER = dt.date(2026, 10, 1)


def test_a_run_silent_for_the_configured_minutes_is_taken_over(settings):
    settings.OPSDESK_RECONCILE_STALE_MINUTES = 1
    with acting_as("test:fixture"):
        dead = ReconciliationRun.objects.create(month=OCTOBER, started_by="task:reconciliation_run")
    with pytest.raises(ReconciliationBusy):
        reconciliation_run(month=OCTOBER, today=dt.date(2026, 11, 21))
    with acting_as("test:fixture"):
        dead.started_at = timezone.now() - dt.timedelta(seconds=61)
        dead.save()
    run = reconciliation_run(month=OCTOBER, today=dt.date(2026, 11, 21))
    dead.refresh_from_db()
    assert (dead.status, dead.error) == ("failed", "Stopped without finishing (worker lost).")
    assert dead.history.latest().history_change_reason == (
        "no progress for 1 minutes: its worker died"
    )
    assert run.status == "succeeded"
