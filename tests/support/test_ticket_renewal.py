"""The ticket page marks a contract ending soon by the digest's rule: the renewal window is
the setting ``OPSDESK_HEALTH_RENEWAL_DAYS`` (30), not a number of the template's own."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.utils import timezone

from audit.context import acting_as
from opsdesk.health.flags import renewal_soon
from support.models import Ticket
from support.selectors import ticket_context
from tests import builders

pytestmark = pytest.mark.django_db

ENDS = dt.date(2026, 12, 31)  # the fixture customer's contract


def make_ticket(customer) -> Ticket:
    with acting_as("test:fixture"):
        return builders.ticket(
            subject="Renewal",
            requester_email="pat@acme.com",
            customer=customer,
            first_response_due_at=timezone.now() + dt.timedelta(hours=8),
        )


@pytest.mark.parametrize(
    ("today", "soon"),
    [
        (dt.date(2026, 11, 30), False),  # 31 days left
        (dt.date(2026, 12, 1), True),  # 30
        (ENDS, True),  # ends today
        (dt.date(2027, 1, 1), False),  # ended yesterday: no longer a renewal
    ],
)
def test_renewal_soon_is_the_digests_window(customer, today, soon):
    context = ticket_context(ticket=make_ticket(customer), today=today)
    assert context.renewal_soon is soon
    assert (renewal_soon(date=today, contract_end=ENDS) is not None) is soon


def test_the_window_follows_the_setting(customer, settings):
    ticket = make_ticket(customer)
    settings.OPSDESK_HEALTH_RENEWAL_DAYS = 60
    assert ticket_context(ticket=ticket, today=dt.date(2026, 11, 1)).renewal_soon
    settings.OPSDESK_HEALTH_RENEWAL_DAYS = 7
    assert not ticket_context(ticket=ticket, today=dt.date(2026, 12, 1)).renewal_soon


def test_a_contract_not_active_is_not_up_for_renewal(customer):
    contract = customer.contracts.get()
    with acting_as("test:fixture"):
        contract.status = "ended"
        contract.save()
    context = ticket_context(ticket=make_ticket(customer), today=dt.date(2026, 12, 20))
    assert (context.days_to_end, context.renewal_soon) == (11, False)


def contract_ends(html: str) -> str:
    return re.search(r"<dt>Contract ends</dt><dd>(.*?)</dd>", html, re.S).group(1)


@pytest.mark.parametrize(
    ("days", "now", "shown"),
    [
        (30, dt.datetime(2026, 11, 21, 9, tzinfo=dt.UTC), '<span class="">(in 40 days)</span>'),
        (45, dt.datetime(2026, 11, 21, 9, tzinfo=dt.UTC), '<span class="od-warn">(in 40 days)'),
        (30, dt.datetime(2026, 12, 21, 9, tzinfo=dt.UTC), '<span class="od-warn">(in 10 days)'),
        # Ended: still marked, as before.
        (30, dt.datetime(2027, 1, 5, 9, tzinfo=dt.UTC), '<span class="od-warn">(5 days ago)'),
    ],
)
def test_the_ticket_page_marks_the_end_within_the_window(
    client, agent, customer, settings, days, now, shown
):
    settings.OPSDESK_HEALTH_RENEWAL_DAYS = days
    ticket = make_ticket(customer)
    with time_machine.travel(now, tick=False):
        client.force_login(agent)  # a session of that day
        html = client.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    assert shown in " ".join(contract_ends(html).split())
