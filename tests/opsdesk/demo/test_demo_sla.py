"""The demo's tickets get their first-response deadlines from support's own rule
(support.sla.first_response_due and its setting), not from a table of their own: before,
the demo kept a copy of the default hours and ignored OPSDESK_FIRST_RESPONSE_HOURS."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from kit import roles
from support.models import Ticket

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 14, 30, tzinfo=dt.UTC)
HOURS = {"urgent": 2, "high": 6, "normal": 12, "low": 48}


def test_the_demo_deadlines_follow_the_first_response_setting(settings):
    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.OPSDESK_FIRST_RESPONSE_HOURS = HOURS
    # The demo puts its staff in the roles' groups; a transactional test run before this
    # one flushes them (roles_sync is idempotent).
    roles.roles_sync()
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", "--customers=12", "--days=30", stdout=StringIO())

    tickets = list(Ticket.objects.all())
    assert {t.priority for t in tickets} == set(HOURS)
    assert {t.customer is None for t in tickets} == {True, False}  # both writers
    for ticket in tickets:
        assert ticket.first_response_due_at - ticket.created_at == dt.timedelta(
            hours=HOURS[ticket.priority]
        ), ticket.subject
