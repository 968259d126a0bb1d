"""The digest's signal helpers: how long a signal has been open, and its action links."""

from __future__ import annotations

import datetime as dt

from django import template

from kit.text import count_of
from opsdesk.health.digest import signal_url as _signal_url

register = template.Library()


@register.filter
def days_before(opened_on: dt.date, date: dt.date) -> str:
    """``opened_on`` to ``date`` as "1 day", "12 days" ("0 days" the same day)."""
    return count_of(max((date - opened_on).days, 0), "day")


@register.simple_tag
def signal_url(signal, action: str, customer_id: int) -> str:
    """The confirmation page of ``action`` on ``signal`` (``opsdesk.health.digest``)."""
    return _signal_url(signal, action, customer_id)
