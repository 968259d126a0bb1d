"""A reconciliation run started in the admin names the person who started it: the run's
"started by" and every history row the run writes say ``task:reconciliation_run for olga``
with olga as the history user; a run from beat still names only the task."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from bs4 import BeautifulSoup
from django.urls import reverse

from audit.context import acting_as_user
from billing import tasks
from billing.models import ReconciliationRun
from billing.reconciliation import ReconciliationBusy, reconciliation_run
from support.models import Case
from tests.billing.crafted import month

pytestmark = pytest.mark.django_db

__all__ = ["month"]  # the crafted month, as a fixture here

NOW = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC)
CHANGELIST = reverse("admin:billing_reconciliationrun_changelist")


def history_of_run(run: ReconciliationRun) -> set[tuple]:
    """(actor, user) of every history row the run wrote: the run's own and its cases'."""
    rows = [*run.history.all(), *Case.history.filter(period=run.month)]
    return {(row.history_actor, row.history_user_id) for row in rows}


def test_a_run_started_in_the_admin_names_the_person_in_the_run_and_its_history(
    client, ops_lead, publish, month
):
    client.force_login(ops_lead)
    with time_machine.travel(NOW, tick=False):
        publish.post(client, {"month": "2026-10"})
        [(name, args)] = publish()
        # The worker's side, eagerly: the task as published, with Celery's task signals.
        getattr(tasks, name.rsplit(".", 1)[-1]).apply(args=args).get()

    run = ReconciliationRun.objects.get()
    assert run.started_by == "task:reconciliation_run for olga"
    assert run.opened > 0 and Case.objects.filter(period=run.month).count() == run.opened
    assert history_of_run(run) == {("task:reconciliation_run for olga", ops_lead.pk)}

    # Pages name her as every page does, by her name, not her username.
    ops_lead.last_name = "Nilsen"
    ops_lead.save(update_fields=["last_name"])
    client.force_login(ops_lead)  # the travelled session has timed out
    listing = client.get(CHANGELIST)
    assert "task:reconciliation_run for Olga Nilsen" in listing.content.decode()
    assert "for olga" not in listing.content.decode()
    page = client.get(reverse("admin:billing_reconciliationrun_change", args=[run.pk]))
    [heading] = BeautifulSoup(page.content, "html.parser").select('[data-testid="run-progress"] h2')
    assert "started by task:reconciliation_run for Olga Nilsen ·" in " ".join(
        heading.get_text().split()
    )
    # A second start while it runs says who started the first, by name too.
    with acting_as_user(ops_lead):
        running = ReconciliationRun.objects.create(month=dt.date(2026, 9, 1), started_by="olga")
    with pytest.raises(ReconciliationBusy, match=rf"run #{running.pk}, started by Olga Nilsen\)"):
        reconciliation_run(month=dt.date(2026, 9, 1))


def test_a_run_from_beat_names_only_the_task(month):
    with time_machine.travel(NOW, tick=False):
        tasks.reconciliation_run.apply(args=["2026-10-01"]).get()
    run = ReconciliationRun.objects.get()
    assert run.started_by == "task:reconciliation_run"
    assert history_of_run(run) == {("task:reconciliation_run", None)}


def test_a_double_click_on_start_runs_the_month_once(client, ops_lead, publish, month):
    client.force_login(ops_lead)
    with time_machine.travel(NOW, tick=False) as clock:
        publish.post(client, {"month": "2026-10"})
        clock.shift(0.3)
        publish.post(client, {"month": "2026-10"})
        first, second = publish()
        clock.shift(1)  # the worker picks the first up after both clicks
        runs = [tasks.reconciliation_run.apply(args=args).get() for _, args in (first, second)]

    run = ReconciliationRun.objects.get()
    assert runs == [run.pk, run.pk]
    assert run.started_by == "task:reconciliation_run for olga"


def test_a_start_after_a_run_began_runs_again(client, ops_lead, publish, month):
    """A click made after a run started may see changes that run did not: it runs."""
    client.force_login(ops_lead)
    with time_machine.travel(NOW, tick=False) as clock:
        tasks.reconciliation_run.apply(args=["2026-10-01"]).get()
        clock.shift(1)
        publish.post(client, {"month": "2026-10"})
        [(_, args)] = publish()
        tasks.reconciliation_run.apply(args=args).get()

    assert ReconciliationRun.objects.count() == 2
