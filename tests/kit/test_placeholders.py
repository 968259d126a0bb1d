"""Text with placeholders (kit.placeholders): checked as str.format reads it, filled by
name only."""

from __future__ import annotations

import pytest

from kit.placeholders import (
    PlaceholderError,
    placeholder_errors,
    placeholder_names,
    placeholders_fill,
)

ALLOWED = {"name": "a name", "code": "a code"}


def test_it_fills_names_and_makes_doubled_braces_one():
    assert placeholders_fill("{{x}} {name}: {code}{name}", {"name": "Pat", "code": "{a}"}) == (
        "{x} Pat: {a}Pat"
    )


@pytest.mark.parametrize("text", ["{name.__class__}", "{name[0]}", "{name!r}", "{name:>9}"])
def test_it_fills_no_lookup_format_or_conversion(text):
    with pytest.raises(PlaceholderError):
        placeholders_fill(text, {"name": "Pat"})


def test_a_name_without_a_value_is_refused_not_left_in():
    with pytest.raises(PlaceholderError, match=r"Nothing fills the placeholder \{code\}\."):
        placeholders_fill("{name} {code}", {"name": "Pat"})


def test_it_names_what_is_not_allowed_here_with_the_reason_given():
    assert placeholder_errors(
        "{name} {secret} {other}", ALLOWED, elsewhere={"secret": "Not here."}
    ) == [
        "Not here.",
        "Unknown placeholder {other}. Allowed: {name}, {code}.",
    ]
    assert (
        placeholder_errors("{secret}", {**ALLOWED, "secret": "s"}, elsewhere={"secret": "x"}) == []
    )


def test_it_lists_the_names_used_once_each():
    assert placeholder_names("{code} {name} {code} {{name}}") == ["code", "name"]
