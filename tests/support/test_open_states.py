"""Pages ask a ticket or a case whether it is still being worked (``is_open``, from the
model's OPEN_STATES) instead of spelling the states in the template: the triage queue's
Resolve button and the inbox's resolution links appear exactly for those states."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.context import acting_as
from support.models import Case, Ticket
from tests import builders

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:support_ticket_queue")
INBOX = reverse("admin:support_case_inbox")


def row(html: str, marker: str) -> str:
    """The table row of the page that holds ``marker``."""
    start = html.index(marker)
    return html[start : html.index("</tr>", start)]


def test_is_open_is_membership_of_open_states():
    assert {s for s in Ticket.Status.values if Ticket(status=s).is_open} == {"open", "pending"}
    assert {s for s in Case.State.values if Case(state=s).is_open} == {"open", "acknowledged"}
    assert set(Ticket.OPEN_STATES) == {"open", "pending"}
    assert set(Case.OPEN_STATES) == {"open", "acknowledged"}


def test_the_queue_offers_resolve_on_open_and_waiting_tickets_only(client, agent):
    client.force_login(agent)
    with acting_as("test:fixture"):
        tickets = {
            status: builders.ticket(subject=f"a {status} one", status=status)
            for status in Ticket.Status.values
        }

    html = client.get(QUEUE, {"status": "all"}).content.decode()
    offered = {
        s for s, t in tickets.items() if 'value="resolve"' in row(html, f'data-ticket="{t.pk}"')
    }
    assert offered == {"open", "pending"}


def test_the_inbox_offers_resolutions_on_open_and_acknowledged_cases_only(client, ops_lead):
    client.force_login(ops_lead)
    now = timezone.now()
    with acting_as("test:fixture"):
        cases = {
            state: builders.case(
                kind=Case.Kind.MISSING_INVOICE,
                summary=f"a {state} one",
                state=state,
                **(
                    {"closed_at": now + dt.timedelta(hours=1), "closing_note": "done"}
                    if state in Case.CLOSED_STATES
                    else {}
                ),
            )
            for state in Case.State.values
        }

    html = client.get(INBOX, {"state": "all"}).content.decode()
    offered = {
        s for s, c in cases.items() if "od-resolve-links" in row(html, f"/case/{c.pk}/change/")
    }
    assert offered == {"open", "acknowledged"}
