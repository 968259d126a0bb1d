"""Beside a ticket, seats and weekly active users are two counts, each said for what it
is: seat entitlements assigned against contracted seats, people active against them."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.context import acting_as
from customers.models import UsageDaily
from tests import builders
from tests.support.ticket_pages import make_ticket, page

pytestmark = pytest.mark.django_db


def test_active_users_above_the_contracted_seats_are_said_beside_the_seats(client, agent, customer):
    with acting_as("test:fixture"):
        UsageDaily.objects.create(
            customer=customer,
            date=dt.date(2026, 11, 21),
            active_users_1d=40,
            active_users_7d=118,
            requests=10,
            errors=0,
        )
        builders.entitlement(customer=customer, state="issued", code="CODE-1")
    client.force_login(agent)
    html = client.get(page(make_ticket(customer=customer))).content.decode()
    aside = html[html.index('data-testid="ticket-context"') :]
    assert "50 contracted · 0 assigned to people · 1 issued, unassigned</dd>" in aside
    assert (
        '118 <span class="od-meta">of 50 contracted seats, '
        '<span class="od-warn">68 above</span></span></dd>'
    ) in aside
    assert "whether or not they hold a seat entitlement" in aside
