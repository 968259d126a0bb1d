from django import template

register = template.Library()


@register.filter
def percent(value, digits: int = 1) -> str:
    """0.0791 -> '7.9%'; None (no requests) -> '—'."""
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%"
