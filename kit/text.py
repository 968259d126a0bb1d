"""Text from outside, made fit for where it goes."""

from __future__ import annotations

import unicodedata

from django.utils.translation import ngettext


def one_line(text: str) -> str:
    """``text`` (a ticket subject, a name: data from outside) as one clean line: CR, LF,
    tabs, NUL and every other control character or line/paragraph separator become a
    space, runs of spaces one, none at either end. What a subject or an email header
    holds: a header carrying a line break is refused by Django (``BadHeaderError``), so a
    reply to such a subject could never be sent."""
    spaced = "".join(
        " " if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char for char in text
    )
    return " ".join(spaced.split())


def readable_value(value) -> str:
    """A stored value as a sentence fragment, for diffs and logs: a JSON object's keys as
    words (``{"amount_mismatch": 1}`` -> "amount mismatch: 1"), a list's items joined by
    commas, nested ones alike; anything else as ``str``."""
    if isinstance(value, dict):
        if not value:
            return "none"
        return ", ".join(
            f"{str(key).replace('_', ' ')}: {readable_value(item)}" for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return ", ".join(readable_value(item) for item in value) if value else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "—"
    return str(value)


def count_of(count: int, singular: str, plural: str | None = None) -> str:
    """A count with its noun agreeing: ``count_of(1, "seat")`` -> "1 seat", ``(3, "seat")``
    -> "3 seats", ``(0, "seat")`` -> "0 seats" (``plural`` when not singular + "s").
    Templates use Django's ``pluralize`` filter the same way."""
    return f"{count:,} {ngettext(singular, plural or singular + 's', count)}"


def capped_text(count: int, cap: int) -> str:
    """A count that was stopped past ``cap`` (``kit.admin.capped_count``): "1,000+" once it
    passed the cap, else the count ("1,234")."""
    return f"{cap:,}+" if count > cap else f"{count:,}"
