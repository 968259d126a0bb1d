from django import template

register = template.Library()


@register.filter
def percent(value, digits: int = 1) -> str:
    """0.0791 -> '7.9%'; None (no requests) -> '—'."""
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%"


@register.filter
def signed_percent(value) -> str:
    """A change as a whole percentage with its sign: -0.354 -> '-35%', 0.1 -> '+10%'."""
    if value is None:
        return "—"
    rounded = round(value * 100)
    if rounded == 0:
        return "0%"
    return f"+{rounded}%" if rounded > 0 else f"-{-rounded}%"
