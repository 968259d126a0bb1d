"""One date style (kit.dates, opsdesk.formats): shown "5 Jan 2026 14:30", typed ISO."""

from __future__ import annotations

import datetime as dt

import pytest
from django import forms
from django.template import Context, Template
from django.utils import formats

from kit.dates import DateInput, date_text, moment_text
from opsdesk.audit_log.selectors import AuditLogFilter


def test_dates_and_moments_read_day_month_year_and_24_hour_time():
    moment = dt.datetime(2026, 1, 5, 14, 30, tzinfo=dt.UTC)
    assert date_text(dt.date(2026, 1, 5)) == "5 Jan 2026"
    assert moment_text(moment) == "5 Jan 2026 14:30"
    # What the admin's own columns and read-only fields use.
    assert formats.localize(dt.date(2026, 1, 5)) == "5 Jan 2026"
    assert Template("{{ d|date }}").render(Context({"d": dt.date(2026, 1, 5)})) == "5 Jan 2026"
    assert date_text(None) == moment_text(None) == ""


def test_a_date_is_typed_iso_and_a_us_date_is_refused():
    field = forms.DateField(widget=DateInput())
    assert field.clean("2026-01-05") == dt.date(2026, 1, 5)
    with pytest.raises(forms.ValidationError):
        field.clean("01/05/2026")
    html = field.widget.render("since", dt.date(2026, 1, 5))
    assert 'type="text"' in html and 'value="2026-01-05"' in html
    assert 'placeholder="YYYY-MM-DD"' in html


@pytest.mark.django_db
def test_the_audit_logs_date_filters_are_iso_text_inputs():
    form = AuditLogFilter({}).form
    for name in ("since", "until"):
        assert isinstance(form.fields[name].widget, DateInput)
