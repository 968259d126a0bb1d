"""Support's state changes: tickets from product events."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction

from customers.models import Customer
from support.models import Tag, Ticket, WebhookEvent
from support.webhook_schemas import SupportRequest
from support.webhooks import handles

UNMATCHED_TAG = "unmatched"


def first_response_due(*, priority: str, opened_at: dt.datetime) -> dt.datetime:
    return opened_at + dt.timedelta(hours=settings.OPSDESK_FIRST_RESPONSE_HOURS[priority])


@handles("support.request")
def ticket_create_from_request(event: WebhookEvent, data: SupportRequest) -> Ticket:
    """One ticket per ``support.request`` event; processing the event again finds it.

    The customer is matched by tenant id; an unknown tenant's ticket is kept and tagged
    ``unmatched`` so triage sees it. The deadline runs from when the user asked (the
    event's timestamp), not from when a worker got to it.
    """
    existing = Ticket.objects.filter(webhook_event=event).first()
    if existing is not None:
        return existing
    opened_at = dt.datetime.fromisoformat(event.payload["timestamp"].replace("Z", "+00:00"))
    customer = Customer.objects.filter(external_id=data.tenant_id).first()
    with transaction.atomic():
        ticket = Ticket.objects.create(
            customer=customer,
            subject=data.subject,
            message=data.message,
            requester_email=data.user.email,
            requester_name=data.user.name,
            category=data.category,
            priority=data.severity,
            webhook_event=event,
            created_at=opened_at,
            first_response_due_at=first_response_due(priority=data.severity, opened_at=opened_at),
        )
        if customer is None:
            tag, _ = Tag.objects.get_or_create(
                name=UNMATCHED_TAG, defaults={"description": "From a tenant opsdesk does not know"}
            )
            ticket.tags.add(tag)
    return ticket
