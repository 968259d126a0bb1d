"""Tickets from product events: the webhook handlers of ``support.request`` and
``incident.error_spike`` (docs/contracts/webhooks.md)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from customers.models import Customer
from kit.text import one_line
from support.models import Tag, Ticket, WebhookEvent
from support.problems import fingerprint_lock, problem_spike_link
from support.ticket_sla import ticket_sla_apply
from support.triage import triage_apply
from support.webhook_schemas import ErrorSpike, SupportRequest, happened_at
from support.webhooks import handles

UNMATCHED_TAG = "unmatched"


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
    opened_at = _happened_at(event)
    customer = Customer.objects.filter(external_id=data.tenant_id).first()
    ticket = Ticket(
        customer=customer,
        subject=one_line(data.subject) or "(no subject)",
        message=data.message,
        requester_email=data.user.email,
        requester_name=data.user.name,
        tenant_id=data.tenant_id,
        category=data.category,
        priority=data.severity,
        webhook_event=event,
        created_at=opened_at,
    )
    _opened(ticket)
    if customer is None:
        ticket.tags.add(_unmatched_tag())
    triage_apply(ticket=ticket)
    return ticket


def _happened_at(event: WebhookEvent) -> dt.datetime:
    # As validation read it (``z``, offsets), not re-parsed here by other rules.
    return happened_at(event.payload)


@handles("incident.error_spike")
def ticket_record_error_spike(event: WebhookEvent, data: ErrorSpike) -> Ticket:
    """One open ticket per (tenant, fingerprint): the first spike opens it, later ones
    add to it (occurrences, latest rate, last seen). The same fingerprint at a second
    tenant makes a problem of their tickets (``support.problems.problem_spike_link``).

    Spikes of one fingerprint, whatever the tenant, are serialized with a
    transaction-scoped advisory lock (``fingerprint_lock``), so a burst processed by
    several workers opens one ticket per tenant and adds the rest to it (seen under `make
    run`: without a lock the second of two simultaneous spikes hit the unique constraint
    and waited 30 s for its retry), and two tenants' spikes at once make one problem: the
    second sees the first's ticket. A lock per (tenant, fingerprint) would not do: each
    would see no other tenant's ticket yet. The partial unique constraints stay as the
    backstops.
    """
    seen_at = _happened_at(event)
    fingerprint_lock(data.fingerprint)
    ticket = (
        Ticket.objects.select_for_update()
        .filter(
            Q(status__in=Ticket.OPEN_STATES),
            tenant_id=data.tenant_id,
            fingerprint=data.fingerprint,
        )
        .first()
    )
    if ticket is not None:
        ticket.occurrence_count += 1
        ticket.latest_error_rate = data.error_rate
        ticket.last_seen_at = max(seen_at, ticket.last_seen_at or seen_at)
        ticket.save()
        problem_spike_link(ticket=ticket, opened=False)
        return ticket
    customer = Customer.objects.filter(external_id=data.tenant_id).first()
    ticket = Ticket(
        customer=customer,
        tenant_id=data.tenant_id,
        subject=one_line(f"Error spike: {data.fingerprint}")[:200],
        message=data.sample_message,
        category=Ticket.Category.INCIDENT,
        priority=Ticket.Priority.HIGH,
        webhook_event=event,
        fingerprint=data.fingerprint,
        occurrence_count=1,
        latest_error_rate=data.error_rate,
        last_seen_at=seen_at,
        created_at=seen_at,
    )
    _opened(ticket)
    if customer is None:
        ticket.tags.add(_unmatched_tag())
    triage_apply(ticket=ticket)
    problem_spike_link(ticket=ticket, opened=True)
    return ticket


def _opened(ticket: Ticket) -> None:
    """Save a new ticket with its service levels, counted from when it happened (up to
    now: the clocks are as of now)."""
    ticket_sla_apply(ticket=ticket)
    ticket.save()


def _unmatched_tag() -> Tag:
    tag, _ = Tag.objects.get_or_create(
        name=UNMATCHED_TAG, defaults={"description": "From a tenant opsdesk does not know"}
    )
    return tag
