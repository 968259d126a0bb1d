"""Service levels of support tickets (docs/product.md#first-response-deadlines): when a
ticket's first response is due. One rule, used by ticket creation, priority changes and
triage."""

from __future__ import annotations

import datetime as dt

from django.conf import settings


def first_response_due(*, priority: str, opened_at: dt.datetime) -> dt.datetime:
    """When a ticket of ``priority`` opened at ``opened_at`` must have its first response
    (``OPSDESK_FIRST_RESPONSE_HOURS``, clock hours)."""
    return opened_at + dt.timedelta(hours=settings.OPSDESK_FIRST_RESPONSE_HOURS[priority])
