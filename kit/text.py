"""Text from outside, made fit for where it goes."""

from __future__ import annotations

import unicodedata


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
