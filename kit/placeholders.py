"""Text with ``{placeholders}`` that people write as data (onboarding's template items,
support's macros): checked when it is saved, filled when it is used.

A placeholder is a name in braces, ``{customer}``; a literal brace is written twice
(``{{`` and ``}}``). Text is parsed by ``string.Formatter``, as ``str.format`` reads it,
but ``placeholders_fill`` fills names only: no attribute or index lookups, no format
spec, no conversion. So a text that passed ``placeholder_errors`` says exactly what its
values say, and one that did not (stored some other way) is refused, never half filled.
"""

from __future__ import annotations

import string
from collections.abc import Mapping


class PlaceholderError(ValueError):
    """The text cannot be filled: the message says why, in words for whoever wrote it."""


_BRACES = "Write a literal brace as {{ or }}."


def _parsed(text: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(string.Formatter().parse(text))
    except ValueError as error:
        raise PlaceholderError(f"The placeholders cannot be read ({error}). {_BRACES}") from None


def _named(names) -> str:
    return ", ".join(f"{{{name}}}" for name in names)


def placeholder_errors(
    text: str, allowed: Mapping[str, str], *, elsewhere: Mapping[str, str] | None = None
) -> list[str]:
    """What is wrong with the ``{placeholders}`` of ``text``, as sentences (none: fine).

    ``allowed`` names the placeholders this text may use (name -> what it stands for);
    ``elsewhere`` those it may not use here although they exist, each with the sentence
    saying why (a placeholder only a workflow fills)."""
    try:
        parsed = _parsed(text)
    except PlaceholderError as error:
        return [str(error)]
    elsewhere = elsewhere or {}
    errors = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field in elsewhere and field not in allowed:
            errors.append(elsewhere[field])
        elif field not in allowed:
            errors.append(f"Unknown placeholder {{{field}}}. Allowed: {_named(allowed)}.")
        elif spec or conversion:
            errors.append(f"Write the placeholder as {{{field}}}, without a format or conversion.")
    return list(dict.fromkeys(errors))


def placeholder_names(text: str) -> list[str]:
    """The placeholders ``text`` uses, in order, each once (``PlaceholderError`` when it
    cannot be read)."""
    return list(dict.fromkeys(field for _, field, _, _ in _parsed(text) if field is not None))


def placeholders_fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each placeholder replaced by its value and each doubled brace made
    one; ``PlaceholderError`` for a placeholder ``values`` does not have or one written
    with a format or conversion."""
    parts = []
    for literal, field, spec, conversion in _parsed(text):
        parts.append(literal)
        if field is None:
            continue
        if field not in values:
            raise PlaceholderError(f"Nothing fills the placeholder {{{field}}}.")
        if spec or conversion:
            raise PlaceholderError(
                f"Write the placeholder as {{{field}}}, without a format or conversion."
            )
        parts.append(str(values[field]))
    return "".join(parts)
