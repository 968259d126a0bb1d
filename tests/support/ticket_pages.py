"""The ticket page as its tests use it: its URL, and its one form read from the page as a
browser would send it (WebTest parses it), so a test changes only what a person would."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from webtest import TestResponse

from audit.context import acting_as
from support.models import Ticket
from tests import builders
from tests.sla_policies import first_response_clock


def page(ticket: Ticket) -> str:
    return f"/admin/support/ticket/{ticket.pk}/change/"


def make_ticket(subject: str = "Cannot log in", **fields) -> Ticket:
    """A ticket from Pat (pat@acme.com) whose first response is due in 8 hours (or at
    ``first_response_due_at``), the clock the queue orders it by."""
    due = fields.pop("first_response_due_at", timezone.now() + dt.timedelta(hours=8))
    fields = {
        "requester_email": "pat@acme.com",
        "requester_name": "Pat",
        **first_response_clock(due, status=fields.get("status", "open")),
        **fields,
    }
    with acting_as("test:fixture"):
        return builders.ticket(subject=subject, **fields)


def ticket_form(response) -> dict[str, list[str]]:
    """What the ticket page's form (``#ticket_form``) sends as the page shows it, by field
    name, before any button is pressed (the button's ``send`` is the test's to add)."""
    html = response.content.decode()
    form = TestResponse(html, content_type="text/html", charset="utf-8").forms["ticket_form"]
    fields: dict[str, list[str]] = {}
    for name, value in form.submit_fields():
        fields.setdefault(name, []).append(value)
    return fields


def submit(client, ticket: Ticket, send: str | None, **typed):
    """Open the ticket's page, set what the person typed or chose (``name=value``, a list
    for a multiple choice, ``then_next=False`` to untick the box), press ``send``."""
    data = ticket_form(client.get(page(ticket)))
    for name, value in typed.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if send is not None:
        data["send"] = [send]
    return client.post(page(ticket), data)


def textarea(response, name: str = "body") -> str:
    """The text a page's textarea ``name`` holds (HTML-unescaped)."""
    html = response.content.decode()
    form = TestResponse(html, content_type="text/html", charset="utf-8").forms["ticket_form"]
    return form[name].value
