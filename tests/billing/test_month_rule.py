"""One rule for the month a reconciliation is about, in the ``reconcile`` command and the
admin's start form: a real YYYY-MM month from 2000-01 to next month, a clear error
otherwise (the command exits non-zero) and nothing run or queued."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
import time_machine
from django.conf import settings
from django.core.management import CommandError, call_command

from billing.models import ReconciliationRun
from billing.reconciliation import parse_month

pytestmark = pytest.mark.django_db

# 22 Nov 2026: next month is December 2026.
NOW = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC)

FULLWIDTH = "\uff12\uff10\uff12\uff16-\uff11\uff10"  # a \\d pattern would take these
REFUSED = [
    ("9999-12", "9999-12 is outside the months that can be reconciled: 2000-01 to 2026-12."),
    ("1-01", "'1-01' is not a month like 2026-10."),
    ("0001-01", "0001-01 is outside the months that can be reconciled: 2000-01 to 2026-12."),
    ("1999-12", "1999-12 is outside the months that can be reconciled: 2000-01 to 2026-12."),
    ("2027-01", "2027-01 is outside the months that can be reconciled: 2000-01 to 2026-12."),
    ("2026-1", "'2026-1' is not a month like 2026-10."),
    ("+2026-10", "'+2026-10' is not a month like 2026-10."),
    (FULLWIDTH, f"{FULLWIDTH!r} is not a month like 2026-10."),
    ("2026-00", "'2026-00' is not a month like 2026-10."),
]


@pytest.mark.parametrize(
    ("text", "first"), [("2000-01", dt.date(2000, 1, 1)), (" 2026-12 ", dt.date(2026, 12, 1))]
)
def test_the_earliest_and_the_latest_month_are_accepted(text, first):
    assert parse_month(text, today=NOW.date()) == first


@pytest.mark.parametrize(("text", "error"), REFUSED)
def test_the_command_refuses_a_month_that_is_not_a_real_recent_one(text, error):
    with time_machine.travel(NOW, tick=False), pytest.raises(CommandError) as refused:
        call_command("reconcile", "--month", text)
    assert str(refused.value) == error
    assert not ReconciliationRun.objects.exists()


def test_the_command_exits_non_zero_with_the_error():
    """Through manage.py, as cron or a person runs it: the error and exit status 1."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "opsdesk.settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "reconcile", "--month", "9999-12"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "CommandError: 9999-12 is outside the months that can be reconciled: 2000-01 to" in (
        done.stderr
    )


@pytest.mark.parametrize(("text", "error"), REFUSED)
def test_the_start_form_refuses_the_same_months(client, ops_lead, publish, text, error):
    client.force_login(ops_lead)
    with time_machine.travel(NOW, tick=False):
        response = publish.post(client, {"month": text})
    assert response.status_code == 200
    assert response.context["form"].errors["month"] == [error]
    assert publish() == []
    assert not ReconciliationRun.objects.exists()


def test_the_start_form_queues_next_month(client, ops_lead, publish):
    client.force_login(ops_lead)
    with time_machine.travel(NOW, tick=False):
        response = publish.post(client, {"month": "2026-12"})
    assert response.status_code == 302
    assert publish() == [
        ("billing.reconciliation_run", ["2026-12-01", None, ops_lead.pk, NOW.isoformat()])
    ]
