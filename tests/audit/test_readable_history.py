"""History reads as people read it: JSON values as words, people by their names."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.context import acting_as, acting_as_user
from audit.timeline import Change, timeline
from billing.models import ReconciliationRun
from kit.text import readable_value

pytestmark = pytest.mark.django_db


def test_stored_json_reads_as_words():
    assert readable_value({"amount_mismatch": 1, "missing_invoice": 2}) == (
        "amount mismatch: 1, missing invoice: 2"
    )
    assert readable_value({"mon": [["09:00", "17:00"]]}) == "mon: 09:00, 17:00"
    assert readable_value({}) == "none"
    assert readable_value([]) == "none"
    assert readable_value({"ok": True, "why": None}) == "ok: yes, why: —"
    assert readable_value(7) == "7"


def test_a_json_fields_change_in_a_timeline_reads_as_words_and_the_actor_by_name(ops_lead):
    with acting_as("task:reconciliation_run"):
        run = ReconciliationRun.objects.create(month=dt.date(2026, 10, 1))
    with acting_as_user(ops_lead):
        run.findings = {"amount_mismatch": 1}
        run.save()

    (changed, created) = timeline([run.history.all()]).entries

    assert Change("findings", "none", "amount mismatch: 1") in changed.changes
    assert changed.actor == "Olga"
    assert created.actor == "task:reconciliation_run"


def test_an_actor_with_no_name_reads_as_their_username_and_on_behalf_keeps_its_task(ops_lead):
    ops_lead.first_name = ""
    ops_lead.save()
    with acting_as_user(ops_lead):
        run = ReconciliationRun.objects.create(month=dt.date(2026, 10, 1))
    ops_lead.first_name, ops_lead.last_name = "Olga", "Ortiz"
    ops_lead.save()
    with acting_as("task:reconciliation_run for olga", user=ops_lead):
        run.findings = {"overdue": 3}
        run.save()

    (changed, created) = timeline([run.history.all()]).entries

    assert changed.actor == "task:reconciliation_run for Olga Ortiz"
    assert created.actor == "Olga Ortiz"  # as the person is named now
