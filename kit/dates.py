"""Dates as every page shows and takes them (docs/product.md#dates-and-names): shown
"5 Jan 2026" / "5 Jan 2026 14:30" (the formats of ``opsdesk.formats``, Django's ``date``
filter and ``date_text`` / ``moment_text`` here), typed as 2026-01-05 (``DateInput``).

A browser's own date input shows the browser's locale (01/05/2026 in US English), so a
date typed in one place read differently elsewhere: date fields are text inputs taking
the ISO date, as the admin's date widget does."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import formats, timezone

ISO_DATE = "%Y-%m-%d"


def date_text(value: dt.date | None) -> str:
    """``5 Jan 2026``; "" for None."""
    return formats.date_format(value, "DATE_FORMAT") if value else ""


def moment_text(value: dt.datetime | None) -> str:
    """``5 Jan 2026 14:30`` in the site's time zone; "" for None."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, "DATETIME_FORMAT")


class DateInput(forms.DateInput):
    """A date typed as 2026-01-05, whatever the browser's language."""

    input_type = "text"

    def __init__(self, attrs=None):
        super().__init__(
            attrs={
                "placeholder": "YYYY-MM-DD",
                "pattern": r"\d{4}-\d{2}-\d{2}",
                "inputmode": "numeric",
                "autocomplete": "off",
                "size": "10",
                **(attrs or {}),
            },
            format=ISO_DATE,
        )
