"""kit.months: calendar month arithmetic at the month ends, leap years and December."""

from __future__ import annotations

import datetime as dt

import pytest

from kit.months import add_months, month_end, month_start, months_between

D = dt.date


@pytest.mark.parametrize(
    ("day", "months", "moved"),
    [
        (D(2026, 1, 31), 1, D(2026, 2, 28)),  # February has no 31st: its last day
        (D(2024, 1, 31), 1, D(2024, 2, 29)),  # leap year
        (D(2024, 2, 29), 12, D(2025, 2, 28)),  # a leap day a year on
        (D(2024, 2, 29), 48, D(2028, 2, 29)),
        (D(2026, 3, 31), -1, D(2026, 2, 28)),
        (D(2026, 5, 31), 1, D(2026, 6, 30)),
        (D(2026, 1, 30), 1, D(2026, 2, 28)),
        (D(2026, 12, 1), 1, D(2027, 1, 1)),  # December rolls over to January
        (D(2026, 12, 31), 1, D(2027, 1, 31)),
        (D(2027, 1, 1), -1, D(2026, 12, 1)),
        (D(2026, 11, 1), -11, D(2025, 12, 1)),
        (D(2026, 11, 1), -23, D(2024, 12, 1)),
        (D(2026, 10, 15), 0, D(2026, 10, 15)),
        (D(2026, 10, 1), 14, D(2027, 12, 1)),
    ],
)
def test_add_months_moves_by_calendar_months_and_keeps_the_day_the_month_has(day, months, moved):
    assert add_months(day, months) == moved


@pytest.mark.parametrize(
    ("day", "first", "last"),
    [
        (D(2026, 1, 31), D(2026, 1, 1), D(2026, 1, 31)),
        (D(2026, 2, 14), D(2026, 2, 1), D(2026, 2, 28)),
        (D(2024, 2, 1), D(2024, 2, 1), D(2024, 2, 29)),  # leap year
        (D(2000, 2, 10), D(2000, 2, 1), D(2000, 2, 29)),  # divisible by 400: leap
        (D(2100, 2, 10), D(2100, 2, 1), D(2100, 2, 28)),  # divisible by 100 only: not
        (D(2026, 4, 30), D(2026, 4, 1), D(2026, 4, 30)),
        (D(2026, 12, 1), D(2026, 12, 1), D(2026, 12, 31)),
    ],
)
def test_month_start_and_end_are_the_first_and_last_day_of_the_month(day, first, last):
    assert (month_start(day), month_end(day)) == (first, last)


@pytest.mark.parametrize(
    ("first", "last", "between"),
    [
        (D(2026, 10, 1), D(2026, 10, 31), 0),
        (D(2026, 10, 31), D(2026, 11, 1), 1),
        (D(2025, 12, 1), D(2026, 11, 1), 11),
        (D(2026, 11, 30), D(2025, 12, 1), -11),
        (D(2000, 1, 1), D(2100, 12, 31), 1211),
    ],
)
def test_months_between_counts_months_not_days(first, last, between):
    assert months_between(first, last) == between
    assert month_start(add_months(first, between)) == month_start(last)
