"""The rule of the freshness panel (docs/product.md#freshness): a source is silent when it
has been quiet longer than its usual gap, the given percentile of the gaps between its
latest deliveries (nearest rank), never shorter than its floor, and the floor alone while
it has too few gaps."""

from __future__ import annotations

import datetime as dt

import pytest

from opsdesk.freshness.selectors import (
    NEVER,
    OK,
    SILENT,
    SourceState,
    percentile_gap,
    source_state,
)

NOW = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.UTC)
H, M, S = dt.timedelta(hours=1), dt.timedelta(minutes=1), dt.timedelta(seconds=1)


def state(deliveries, *, now=NOW, floor=H, percentile=90, min_gaps=3):
    return source_state(
        deliveries=deliveries, now=now, floor=floor, percentile=percentile, min_gaps=min_gaps
    )


def spaced(*gaps: dt.timedelta, last: dt.datetime = NOW) -> list[dt.datetime]:
    """Deliveries ending at ``last`` whose gaps, oldest first, are ``gaps``."""
    times = [last]
    for gap in reversed(gaps):
        times.insert(0, times[0] - gap)
    return times


def source_state_of(name, *, usual, quiet, gaps, learned=None):
    return SourceState(state=name, usual_gap=usual, quiet_for=quiet, gaps=gaps, learned=learned)


def test_a_source_without_a_delivery_never_delivered_and_its_usual_gap_is_its_floor():
    assert state([]) == source_state_of(NEVER, usual=H, quiet=None, gaps=0)


@pytest.mark.parametrize(
    ("quiet", "expected"),
    [(H - S, OK), (H, OK), (H + S, SILENT)],
    ids=["a second short of the floor", "exactly the floor", "a second past the floor"],
)
def test_with_one_delivery_the_floor_decides_and_exactly_as_long_is_still_usual(quiet, expected):
    assert state([NOW - quiet]) == source_state_of(expected, usual=H, quiet=quiet, gaps=0)


def test_with_fewer_gaps_than_the_minimum_the_floor_alone_is_the_usual_gap():
    # Two gaps of 5 h: one short of the three needed to learn from.
    two = spaced(5 * H, 5 * H, last=NOW - 2 * H)
    assert state(two) == source_state_of(SILENT, usual=H, quiet=2 * H, gaps=2)
    assert state(two).floored


def test_from_the_minimum_the_percentile_of_the_gaps_is_the_usual_gap():
    three = spaced(5 * H, 5 * H, 4 * H, last=NOW - 2 * H)
    assert state(three) == source_state_of(OK, usual=5 * H, quiet=2 * H, gaps=3, learned=5 * H)
    assert not state(three).floored
    assert state(three, now=NOW + 3 * H).quiet_for == 5 * H
    assert state(three, now=NOW + 3 * H).state == OK
    assert state(three, now=NOW + 3 * H + S).state == SILENT


def test_the_floor_holds_when_the_gaps_are_shorter():
    # A burst every second; quiet for 59 minutes is usual under a 1 h floor, 61 is not.
    burst = spaced(*[S] * 20, last=NOW - 59 * M)
    assert state(burst) == source_state_of(OK, usual=H, quiet=59 * M, gaps=20, learned=S)
    assert state(burst).floored
    assert state(burst, now=NOW + 2 * M).state == SILENT


def test_the_order_of_the_deliveries_does_not_matter():
    times = spaced(2 * H, 3 * H, 4 * H, last=NOW - 30 * M)
    assert state(list(reversed(times))) == state(times)


@pytest.mark.parametrize(
    ("percentile", "expected"), [(50, 5), (90, 9), (91, 10), (100, 10), (10, 1)]
)
def test_the_percentile_is_the_nearest_rank(percentile, expected):
    gaps = [hours * H for hours in (7, 1, 10, 4, 2, 9, 3, 8, 6, 5)]
    assert percentile_gap(gaps, percentile) == expected * H


def test_one_long_outage_among_a_hundred_gaps_does_not_make_the_usual_gap():
    # 98 gaps of 10 minutes and one of 3 days: the 90th percentile is 10 minutes, so the
    # floor (1 h) decides, not the outage.
    times = spaced(3 * 24 * H, *[10 * M] * 98, last=NOW - 90 * M)
    assert state(times) == source_state_of(SILENT, usual=H, quiet=90 * M, gaps=99, learned=10 * M)
    # Ten such outages among them are the usual rhythm (the 90th percentile reaches them).
    times = spaced(*[3 * 24 * H] * 10, *[10 * M] * 89, last=NOW - 2 * 24 * H)
    assert state(times) == source_state_of(
        OK, usual=3 * 24 * H, quiet=2 * 24 * H, gaps=99, learned=3 * 24 * H
    )
