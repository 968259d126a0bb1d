"""Calendar months: the one way opsdesk moves a date by months or finds a month's edges.

Reconciliation, the customer page's billing tab, the demo data and the benchmarks all
count in months; each once had its own arithmetic (``replace(day=28) + 4 days``, a
year * 12 + month index). Moving by months is python-dateutil's ``relativedelta``: a day
the target month does not have becomes its last day (31 January + 1 month is 28 or 29
February), and years roll over at December. What a month looks like typed in (YYYY-MM)
is ``kit.params.parse_month``'s rule.
"""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta


def month_start(day: dt.date) -> dt.date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    # relativedelta's day=31 is clamped to the month's last day.
    return day + relativedelta(day=31)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months (back when negative); a day the target
    month does not have becomes its last day. The first of a month stays the first."""
    return day + relativedelta(months=months)


def months_between(first: dt.date, last: dt.date) -> int:
    """How many months ``last``'s month comes after ``first``'s: 0 for the same month,
    negative when it comes before. The days within the months do not count."""
    return (last.year - first.year) * 12 + last.month - first.month
