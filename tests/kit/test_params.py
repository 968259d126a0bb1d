"""kit.params: ids and query parameters are understood or refused, never a 500."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest
from django.core.exceptions import BadRequest, ValidationError
from django.http import Http404
from django.test import RequestFactory

from customers.models import Customer
from kit.params import (
    DATE_MAX,
    DATE_MIN,
    PAGE_MAX,
    ParamError,
    choice_param,
    date_in_range,
    date_param,
    int_param,
    month_param,
    object_or_404,
    page_param,
)


def get(query: str):
    return RequestFactory().get(f"/?{query}")


@pytest.mark.django_db
def test_object_or_404_returns_the_row_of_a_real_id(customer):
    assert object_or_404(Customer, str(customer.pk)) == customer


@pytest.mark.django_db
def test_object_or_404_looks_in_the_queryset_given(customer):
    with pytest.raises(Http404):
        object_or_404(Customer, str(customer.pk), queryset=Customer.objects.none())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw", ["abc", "1e400", "1.5", "", "\x00", "99999999999999999999", "-99999999999999999999"]
)
def test_object_or_404_is_a_404_for_what_is_not_an_id(raw):
    with pytest.raises(Http404):
        object_or_404(Customer, raw)


@pytest.mark.django_db
def test_object_or_404_is_a_404_for_an_id_nobody_has():
    with pytest.raises(Http404):
        object_or_404(Customer, "424242")


def test_a_param_error_is_a_bad_request_so_django_answers_400():
    assert issubclass(ParamError, BadRequest)


@pytest.mark.parametrize(("query", "value"), [("", 7), ("n=", 7), ("n=3", 3), ("n=%203%20", 3)])
def test_int_param_reads_a_whole_number_or_the_default(query, value):
    assert int_param(get(query), "n", 7, min=1, max=10) == value


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("n=abc", "“n” must be a whole number."),
        ("n=1e400", "“n” must be a whole number."),
        ("n=1" + "0" * 21, "“n” must be between 1 and 10."),
        ("n=11", "“n” must be between 1 and 10."),
        ("n=0", "“n” must be between 1 and 10."),
        ("n=%00", "“n” is not understood."),
    ],
)
def test_int_param_refuses_what_is_not_a_number_in_range(query, message):
    with pytest.raises(ParamError) as error:
        int_param(get(query), "n", 7, min=1, max=10)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("query", "page"),
    [("", 1), ("page=3", 3), ("page=abc", 1), ("page=-2", 1), ("page=1" + "0" * 21, PAGE_MAX)],
)
def test_page_param_is_a_page_from_1_to_page_max(query, page):
    assert page_param(get(query)) == page


def test_date_param_reads_an_iso_date_or_the_default():
    today = dt.date(2026, 12, 4)
    assert date_param(get("d=2026-11-30"), "d", today) == dt.date(2026, 11, 30)
    assert date_param(get("d="), "d", today) == today
    assert date_param(get(""), "d", None) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0001-01-01", "“d” must be a date from 2000-01-01 to 2100-12-31."),
        ("9999-12-31", "“d” must be a date from 2000-01-01 to 2100-12-31."),
        ("2026-13-45", "“d” must be a date (YYYY-MM-DD)."),
        ("abc", "“d” must be a date (YYYY-MM-DD)."),
    ],
)
def test_date_param_refuses_a_malformed_or_out_of_range_date(value, message):
    with pytest.raises(ParamError) as error:
        date_param(get(f"d={value}"), "d", None)
    assert str(error.value) == message


def test_the_date_bounds_leave_room_for_date_arithmetic():
    # What the views compute from a date parameter: a year either side, the next month.
    assert DATE_MIN - dt.timedelta(days=400) > dt.date.min
    assert DATE_MAX + dt.timedelta(days=400) < dt.date.max


def test_month_param_reads_a_month_as_its_first_day():
    assert month_param(get("m=2026-10"), "m", None) == dt.date(2026, 10, 1)
    assert month_param(get(""), "m", dt.date(2026, 1, 1)) == dt.date(2026, 1, 1)


@pytest.mark.parametrize(
    "value",
    [
        "9999-12",
        "0001-01",
        "1-01",
        "2026-13",
        "abc",
        "2026-10-01",
        "2026-1",
        "\uff12\uff10\uff12\uff16-10",
    ],
)
def test_month_param_refuses_a_malformed_or_out_of_range_month(value):
    with pytest.raises(ParamError):
        month_param(get(urlencode({"m": value})), "m", None)


def test_choice_param_reads_one_of_the_choices_or_the_default():
    assert choice_param(get("c=b"), "c", ["a", "b"], "a") == "b"
    assert choice_param(get(""), "c", ["a", "b"], "a") == "a"
    with pytest.raises(ParamError) as error:
        choice_param(get("c=user:abc"), "c", ["a", "b"], "a")
    assert str(error.value) == "“c” is not one of the choices this page offers."


def test_date_in_range_is_a_form_validator_for_the_same_bounds():
    date_in_range(DATE_MIN)
    date_in_range(DATE_MAX)
    date_in_range(None)
    with pytest.raises(ValidationError):
        date_in_range(dt.date(9999, 12, 31))
