"""The triage queue as its tests use it: its URL, a ticket's one-click action URL, a ticket
with a first-response deadline, and the tickets a page lists."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from audit.context import acting_as
from support.models import Ticket
from tests import builders
from tests.sla_policies import first_response_clock

QUEUE = "/admin/support/ticket/queue/"


def act_url(ticket: Ticket) -> str:
    return f"/admin/support/ticket/{ticket.pk}/act/"


def make_ticket(subject: str, *, due_in_hours: float | None = 4, **fields) -> Ticket:
    """A ticket whose first response is due in ``due_in_hours`` (None: no deadline), the
    clock that matters (its warning 2 hours before), stored as support.ticket_sla would."""
    now = timezone.now()
    due = None if due_in_hours is None else now + dt.timedelta(hours=due_in_hours)
    clock = first_response_clock(due, status=fields.get("status", "open"))
    if fields.get("first_responded_at"):  # answered: that clock stopped
        clock = {"first_response_due_at": due}
    with acting_as("test:fixture"):
        return builders.ticket(subject=subject, **{**clock, **fields})


def shown(response) -> list[str]:
    """The subjects of the tickets a queue page lists, in its order."""
    return [ticket.subject for ticket, _, _ in response.context["rows"]]
