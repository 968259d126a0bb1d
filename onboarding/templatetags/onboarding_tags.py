import datetime as dt

from django import template
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def duration_text(value: dt.timedelta | None) -> str:
    """``timedelta(days=2, hours=4)`` -> "2 days, 4 hours" (the two largest units)."""
    if value is None:
        return "—"
    start = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    return timesince(start, start + value, depth=2)
