"""The demo's tickets get their service levels from support's own rules
(support.ticket_sla.tickets_sla_fill: the policy of the customer's plan, the clocks of
support.sla), not from a table of their own: before, the demo kept a copy of the default
hours, then followed a setting the service levels no longer read."""

from __future__ import annotations

import copy
import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from kit import roles
from support.models import Ticket
from support.ticket_sla import SLA_FIELDS, tickets_sla_fill

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 14, 30, tzinfo=dt.UTC)


def test_the_demo_tickets_follow_the_service_levels(settings, sla_policies):
    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The demo puts its staff in the roles' groups; a transactional test run before this
    # one flushes them (roles_sync is idempotent).
    roles.roles_sync()
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", "--customers=12", "--days=30", stdout=StringIO())

    tickets = list(Ticket.objects.order_by("pk"))
    assert {t.customer is None for t in tickets} == {True, False}  # both writers
    again = []
    for ticket in tickets:
        fresh = copy.copy(ticket)
        fresh.pk = None
        for name in SLA_FIELDS:
            setattr(fresh, Ticket._meta.get_field(name).attname, None)
        again.append(fresh)
    tickets_sla_fill(tickets=again, now=NOW)

    def stored(ticket):
        return {name: getattr(ticket, Ticket._meta.get_field(name).attname) for name in SLA_FIELDS}

    for ticket, expected in zip(tickets, again, strict=True):
        assert stored(ticket) == stored(expected), ticket.subject
    assert all(t.sla_policy_id is not None for t in tickets)
    assert any(t.sla_due_at is not None for t in tickets if t.status == "open")
