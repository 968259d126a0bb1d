"""The clocks of the service levels as pure functions (support.sla): business time and the
first-response, next-response and resolution clocks of a ticket's timeline, at their
edges (docs/product.md#service-levels). No database: every input is written out.

The calendar is the defaults' (Mon-Fri 09:00-17:00) in UTC unless a test says otherwise;
November 2026 starts on a Sunday, so 23 November is a Monday."""

from __future__ import annotations

import datetime as dt

import pytest

from support import sla

UTC = dt.UTC
BERLIN = "Europe/Berlin"
WEEK = sla.week_parse(sla.DEFAULT_HOURS)
HOURS = sla.Calendar(zone="UTC", week=WEEK)
STARTER = sla.Policy("Starter", HOURS, sla.default_targets(), pk=1)
ENTERPRISE = sla.Policy(
    "Enterprise", HOURS, sla.default_targets(around_the_clock=("urgent", "high")), pk=3
)


def at(day: int, hour: int, minute: int = 0, *, month: int = 11) -> dt.datetime:
    """A moment of 2026 in UTC (November unless told)."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


def berlin(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=sla.zoneinfo.ZoneInfo(BERLIN))


def hours(n: float) -> dt.timedelta:
    return dt.timedelta(hours=n)


def minutes(n: int) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def timeline(
    opened: dt.datetime,
    *changes: tuple[dt.datetime, str, str, sla.Policy],
    priority: str = "normal",
    policy: sla.Policy = STARTER,
    replies=(),
    messages=(),
) -> sla.Timeline:
    """Opened (open) at ``opened`` with ``priority`` under ``policy``, then each change
    (when, status, priority, policy) as its history records it."""
    states = [sla.State(opened, "open", priority, policy)]
    states += [sla.State(when, status, prio, pol) for when, status, prio, pol in changes]
    return sla.Timeline(
        opened_at=opened, states=states, replies=list(replies), customer_messages=list(messages)
    )


# --- business time ------------------------------------------------------------------------


def test_a_normal_starter_ticket_raised_on_saturday_at_ten_is_due_on_monday_at_five():
    # The example: 8 business hours, all of Monday's.
    assert sla.business_deadline(at(21, 10), hours(8), HOURS) == at(23, 17)


@pytest.mark.parametrize(
    ("start", "amount", "due"),
    [
        (at(24, 15), hours(4), at(25, 11)),  # Tuesday 15:00: 2 h today, 2 h Wednesday
        (at(23, 7), hours(1), at(23, 10)),  # before opening: counted from 09:00
        (at(27, 17), hours(1), at(30, 10)),  # Friday at closing: Monday
        (at(27, 16), hours(4), at(30, 12)),  # across the weekend
        (at(23, 9), hours(0), at(23, 9)),  # nothing to count: the start
        (at(24, 12, 30), minutes(30), at(24, 13)),
    ],
)
def test_a_deadline_counts_only_business_hours(start, amount, due):
    assert sla.business_deadline(start, amount, HOURS) == due


def test_a_deadline_ending_at_closing_time_is_that_day_not_the_next_morning():
    assert sla.business_deadline(at(23, 9), hours(8), HOURS) == at(23, 17)


def test_a_holiday_counts_no_hours():
    monday_off = sla.Calendar(zone="UTC", week=WEEK, holidays=frozenset({dt.date(2026, 11, 30)}))
    assert sla.business_deadline(at(27, 16), hours(4), monday_off) == at(1, 12, month=12)


def test_around_the_clock_counts_every_hour():
    assert sla.business_deadline(at(21, 10), hours(8), None) == at(21, 18)


def test_split_days_and_a_day_that_ends_at_midnight():
    split = sla.Calendar(
        zone="UTC",
        week=sla.week_parse(
            {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "tue": [["20:00", "24:00"]]}
        ),
    )
    assert sla.business_deadline(at(23, 11), hours(2), split) == at(23, 14)
    assert sla.business_deadline(at(23, 16), hours(2), split) == at(24, 21)
    assert sla.business_deadline(at(24, 23), hours(2), split) == at(30, 10)


def test_business_hours_are_wall_clock_hours_across_a_dst_change():
    """Berlin moves from CET to CEST on Sunday 29 March 2026: 09:00 is 08:00 UTC on
    Friday and 07:00 UTC on Monday."""
    zoned = sla.Calendar(zone=BERLIN, week=WEEK)
    due = sla.business_deadline(berlin(3, 27, 16), hours(2), zoned)
    assert due == berlin(3, 30, 10)
    assert due == at(30, 8, month=3)


def test_around_the_clock_counts_real_hours_across_a_dst_change():
    # 23:00 CET + 4 hours of real time: 04:00 CEST (the clocks skipped 02:00-03:00).
    assert sla.business_deadline(berlin(3, 28, 23), hours(4), None) == berlin(3, 29, 4)


def test_a_day_of_hours_lasts_as_long_as_the_clocks_say_on_the_short_day():
    always = sla.Calendar(
        zone=BERLIN, week=sla.week_parse({day: [["00:00", "24:00"]] for day in sla.WEEKDAYS})
    )
    assert sla.business_elapsed(berlin(3, 29, 0), berlin(3, 30, 0), always) == hours(23)
    assert sla.business_elapsed(berlin(10, 25, 0), berlin(10, 26, 0), always) == hours(25)


def test_elapsed_business_time_skips_nights_weekends_and_holidays():
    assert sla.business_elapsed(at(27, 16), at(30, 10), HOURS) == hours(2)
    assert sla.business_elapsed(at(30, 10), at(27, 16), HOURS) == dt.timedelta(0)
    monday_off = sla.Calendar(zone="UTC", week=WEEK, holidays=frozenset({dt.date(2026, 11, 30)}))
    assert sla.business_elapsed(at(27, 16), at(1, 10, month=12), monday_off) == hours(2)
    assert sla.business_elapsed(at(21, 10), at(21, 18), None) == hours(8)


def test_a_calendar_without_hours_in_reach_has_no_deadline():
    closed = sla.Calendar(
        zone="UTC",
        week=WEEK,
        holidays=frozenset(at(1, 0).date() + dt.timedelta(d) for d in range(4 * 366)),
    )
    assert sla.business_deadline(at(1, 0), hours(1), closed) is None


# --- the weekly calendar as people write it --------------------------------------------------


def test_a_calendar_reads_as_minutes_per_weekday():
    assert sla.week_parse({"mon": [["09:00", "17:00"]], "sat": [["10:00", "24:00"]]}) == (
        ((540, 1020),),
        (),
        (),
        (),
        (),
        ((600, 1440),),
        (),
    )


@pytest.mark.parametrize(
    ("hours_given", "messages"),
    [
        (
            [["09:00", "17:00"]],
            [
                'Business hours must be a mapping of days to hours, like {"mon": [["09:00", '
                '"17:00"]]}.'
            ],
        ),
        (
            {"funday": [["09:00", "17:00"]], "mon": [["09:00", "17:00"]]},
            ["Unknown day funday: use mon, tue, wed, thu, fri, sat, sun."],
        ),
        (
            {"mon": [["9:00", "17:00"]]},
            ["Monday: 9:00-17:00 is not two times of day (HH:MM, 00:00 to 24:00)."],
        ),
        ({"tue": [["17:00", "09:00"]]}, ["Tuesday: 17:00-09:00 ends before it starts."]),
        (
            {"wed": [["09:00", "13:00"], ["12:00", "17:00"]]},
            ["Wednesday: 09:00-13:00 and 12:00-17:00 overlap."],
        ),
        ({"thu": ["09:00-17:00"]}, ["Thursday: '09:00-17:00' is not a [from, to] pair."]),
        (
            {"fri": "09:00-17:00"},
            ['Friday: give a list of [from, to] pairs, like [["09:00", "17:00"]].'],
        ),
        (
            {"mon": [["24:00", "24:00"]]},
            ["Monday: 24:00-24:00 is not two times of day (HH:MM, 00:00 to 24:00)."],
        ),
        ({}, ["Give at least one day business hours."]),
        (
            {"mon": [["25:00", "26:00"]], "sun": [["10:00", "09:00"]]},
            [
                "Monday: 25:00-26:00 is not two times of day (HH:MM, 00:00 to 24:00).",
                "Sunday: 10:00-09:00 ends before it starts.",
            ],
        ),
    ],
)
def test_a_calendar_that_cannot_be_used_says_what_is_wrong(hours_given, messages):
    with pytest.raises(sla.CalendarError) as refused:
        sla.week_parse(hours_given)
    assert refused.value.messages == messages


# --- the first response -----------------------------------------------------------------------


def test_the_first_response_is_due_when_its_target_is_counted_and_warns_at_three_quarters():
    clocks = sla.ticket_clocks(timeline(at(21, 10)), now=at(21, 12))
    first = clocks.first_response
    assert (first.due_at, first.warn_at, first.running, first.paused) == (
        at(23, 17),
        at(23, 15),  # 6 of 8 hours
        True,
        False,
    )
    assert first.elapsed == dt.timedelta(0)  # nothing counted on a Saturday


def test_the_first_reply_stops_the_first_response_clock_and_keeps_its_deadline():
    clocks = sla.ticket_clocks(timeline(at(23, 9), replies=[at(23, 11)]), now=at(24, 9))
    first = clocks.first_response
    assert (first.stopped_at, first.due_at, first.warn_at, first.elapsed) == (
        at(23, 11),
        at(23, 17),
        None,
        hours(2),
    )
    assert not first.breached(at(24, 9))


def test_a_reply_after_the_deadline_is_a_breach():
    clocks = sla.ticket_clocks(timeline(at(23, 9), replies=[at(24, 10)]), now=at(24, 11))
    assert clocks.first_response.due_at == at(23, 17)
    assert clocks.first_response.breached(at(24, 11))


def test_an_overdue_first_response_is_breached_while_it_runs():
    clocks = sla.ticket_clocks(timeline(at(23, 9), priority="urgent"), now=at(23, 10, 1))
    assert clocks.first_response.due_at == at(23, 10)
    assert clocks.first_response.breached(at(23, 10, 1))
    assert not clocks.first_response.breached(at(23, 9, 59))


def test_around_the_clock_for_enterprise_urgent_business_hours_for_its_normal():
    urgent = sla.ticket_clocks(
        timeline(at(21, 10), priority="urgent", policy=ENTERPRISE), now=at(21, 10)
    )
    normal = sla.ticket_clocks(timeline(at(21, 10), policy=ENTERPRISE), now=at(21, 10))
    assert urgent.first_response.due_at == at(21, 11)
    assert normal.first_response.due_at == at(23, 17)


def test_a_priority_raised_before_the_first_response_moves_it_still_from_the_opening():
    line = timeline(at(23, 9), (at(23, 9, 30), "open", "urgent", STARTER), priority="low")
    clocks = sla.ticket_clocks(line, now=at(23, 9, 30))
    assert clocks.first_response.due_at == at(23, 10)


def test_a_priority_raised_past_its_target_is_breached_at_once():
    line = timeline(at(23, 9), (at(23, 12), "open", "urgent", STARTER))
    clocks = sla.ticket_clocks(line, now=at(23, 12))
    assert clocks.first_response.due_at == at(23, 10)
    assert clocks.first_response.breached(at(23, 12))


def test_a_priority_raised_after_the_first_response_moves_only_the_running_clocks():
    line = timeline(
        at(23, 9), (at(23, 11), "open", "urgent", STARTER), priority="low", replies=[at(23, 10)]
    )
    clocks = sla.ticket_clocks(line, now=at(23, 11))
    # The first response stopped at low's 24 business hours (Wednesday 17:00), met.
    assert clocks.first_response.due_at == at(25, 17)
    assert not clocks.first_response.breached(at(23, 11))
    # The resolution is urgent's now: 5 business hours from the opening.
    assert clocks.resolution.due_at == at(23, 14)


def test_a_policy_changed_mid_ticket_counts_each_stretch_as_its_policy_said():
    """A Starter customer's high ticket on Saturday; on Sunday at 10:00 their contract is
    Enterprise (high around the clock): Saturday counted nothing, Sunday counts."""
    line = timeline(at(21, 10), (at(22, 10), "open", "high", ENTERPRISE), priority="high")
    clocks = sla.ticket_clocks(line, now=at(22, 10))
    assert clocks.first_response.due_at == at(22, 14)
    assert clocks.first_response.elapsed == dt.timedelta(0)


def test_a_policy_changed_to_business_hours_stops_counting_the_night():
    line = timeline(
        at(23, 20),
        (at(23, 20, 30), "open", "high", STARTER),
        priority="high",
        policy=ENTERPRISE,
    )
    clocks = sla.ticket_clocks(line, now=at(23, 20, 30))
    # 30 minutes counted around the clock, 3 h 30 min left from Tuesday 09:00.
    assert clocks.first_response.due_at == at(24, 12, 30)


# --- pauses -----------------------------------------------------------------------------


def test_waiting_on_the_customer_pauses_the_clock_across_midnight():
    """Enterprise urgent (around the clock) opened Monday 22:00, waiting from 22:20 to
    01:10: 20 minutes counted before, 40 left after."""
    line = timeline(
        at(23, 22),
        (at(23, 22, 20), "pending", "urgent", ENTERPRISE),
        (at(24, 1, 10), "open", "urgent", ENTERPRISE),
        priority="urgent",
        policy=ENTERPRISE,
    )
    clocks = sla.ticket_clocks(line, now=at(24, 1, 10))
    assert clocks.first_response.due_at == at(24, 1, 50)
    assert clocks.first_response.elapsed == minutes(20)
    assert clocks.paused_since is None


def test_while_waiting_a_clock_not_yet_due_has_no_deadline():
    line = timeline(
        at(23, 22),
        (at(23, 22, 20), "pending", "urgent", ENTERPRISE),
        priority="urgent",
        policy=ENTERPRISE,
    )
    clocks = sla.ticket_clocks(line, now=at(24, 3))
    first = clocks.first_response
    assert (first.due_at, first.warn_at, first.paused, first.running) == (None, None, True, True)
    assert clocks.paused_since == at(23, 22, 20)
    assert sla.clocks_fields(clocks)["sla_due_at"] is None


def test_a_clock_overdue_before_the_wait_stays_overdue():
    line = timeline(at(23, 9), (at(23, 11), "pending", "urgent", STARTER), priority="urgent")
    clocks = sla.ticket_clocks(line, now=at(24, 9))
    assert (clocks.first_response.due_at, clocks.first_response.paused) == (at(23, 10), True)
    assert clocks.first_response.breached(at(24, 9))


def test_a_customers_message_ends_the_wait_at_its_own_time():
    """The message came at 11:00; the worker reopened the ticket at 11:30."""
    line = timeline(
        at(23, 9),
        (at(23, 10), "pending", "normal", STARTER),
        (at(23, 11, 30), "open", "normal", STARTER),
        replies=[at(23, 10)],
        messages=[at(23, 11)],
    )
    clocks = sla.ticket_clocks(line, now=at(23, 11, 30))
    # The resolution (40 business hours) counted 1 h before the wait, then from 11:00.
    assert clocks.resolution.elapsed == hours(1) + minutes(30)
    assert clocks.resolution.due_at == sla.business_deadline(at(23, 11), hours(39), HOURS)


# --- the next response ----------------------------------------------------------------------


def test_each_customer_message_after_the_last_reply_starts_the_next_response_clock():
    line = timeline(
        at(23, 9),
        replies=[at(23, 10), at(23, 13)],
        messages=[at(23, 11), at(23, 12), at(23, 14)],
    )
    clocks = sla.ticket_clocks(line, now=at(23, 14))
    first_cycle, second = clocks.next_cycles
    # Normal: 4 business hours; the second message (12:00) did not restart the first.
    assert (first_cycle.started_at, first_cycle.stopped_at, first_cycle.due_at) == (
        at(23, 11),
        at(23, 13),
        at(23, 15),
    )
    assert (second.started_at, second.running, second.due_at, second.warn_at) == (
        at(23, 14),
        True,
        at(24, 10),
        at(23, 17),  # 3 of its 4 hours: at Monday's closing
    )
    assert clocks.next_response == second


def test_the_request_itself_starts_no_next_response_clock():
    line = timeline(at(23, 9), messages=[at(23, 8, 59), at(23, 9)])
    clocks = sla.ticket_clocks(line, now=at(23, 10))
    assert clocks.next_cycles == ()
    assert not clocks.next_response.running


def test_a_next_response_is_paused_too_while_waiting_on_the_customer():
    line = timeline(
        at(23, 9),
        (at(23, 12), "pending", "normal", STARTER),
        replies=[at(23, 10)],
        messages=[at(23, 11)],
    )
    clocks = sla.ticket_clocks(line, now=at(23, 15))
    assert (clocks.next_response.running, clocks.next_response.due_at) == (True, None)
    assert clocks.next_response.elapsed == hours(1)


# --- the resolution ---------------------------------------------------------------------------


def test_solving_stops_every_clock_and_a_customers_message_sets_them_going_again():
    """Normal: resolution within 40 business hours (Monday 09:00 to Friday 17:00)."""
    solved = timeline(at(23, 9), (at(25, 12), "solved", "normal", STARTER), replies=[at(23, 10)])
    clocks = sla.ticket_clocks(solved, now=at(25, 18))
    assert (clocks.resolution.stopped_at, clocks.resolution.due_at) == (at(25, 12), at(27, 17))
    assert clocks.running == []
    assert sla.clocks_fields(clocks)["sla_due_at"] is None

    reopened = timeline(
        at(23, 9),
        (at(25, 12), "solved", "normal", STARTER),
        (at(26, 10, 5), "open", "normal", STARTER),
        replies=[at(23, 10)],
        messages=[at(26, 10)],
    )
    clocks = sla.ticket_clocks(reopened, now=at(26, 10, 5))
    # 19 hours counted until Wednesday 12:00; the other 21 from Thursday 10:00.
    assert clocks.resolution.due_at == at(30, 15)
    assert clocks.next_response.due_at == at(26, 14)


def test_a_ticket_solved_without_a_reply_stops_its_first_response_too():
    line = timeline(at(23, 9), (at(23, 9, 30), "solved", "normal", STARTER))
    clocks = sla.ticket_clocks(line, now=at(24, 9))
    assert clocks.first_response.stopped_at == at(23, 9, 30)
    assert not clocks.first_response.breached(at(24, 9))


def test_a_ticket_opened_after_now_is_counted_from_its_opening():
    clocks = sla.ticket_clocks(timeline(at(23, 9)), now=at(20, 9))
    assert clocks.first_response.due_at == at(23, 17)


# --- what a ticket stores ---------------------------------------------------------------------


def test_a_ticket_stores_each_clock_and_the_nearest_for_the_queue():
    line = timeline(at(23, 9), replies=[at(23, 10)], messages=[at(23, 11)])
    fields = sla.clocks_fields(sla.ticket_clocks(line, now=at(23, 11)))
    assert fields == {
        "first_response_due_at": at(23, 17),  # met: kept
        "first_response_warn_at": None,  # stopped: nothing to warn of
        "next_response_due_at": at(23, 15),
        "next_response_warn_at": at(23, 14),
        "resolution_due_at": at(27, 17),
        "resolution_warn_at": at(26, 15),  # 30 of 40 hours
        "sla_paused_at": None,
        "sla_due_at": at(23, 15),
        "sla_warn_at": at(23, 14),
    }


def test_the_builtin_default_policy_is_the_shipped_starter():
    policy = sla.builtin_policy("Europe/Berlin")
    assert policy.pk is None
    assert policy.calendar == sla.Calendar(zone=BERLIN, week=WEEK)
    assert {p: t.first_response for p, t in policy.targets.items()} == {
        "urgent": hours(1),
        "high": hours(4),
        "normal": hours(8),
        "low": hours(24),
    }
    assert policy.targets["low"].next_response == hours(12)
    assert policy.targets["urgent"].resolution == hours(5)
    assert all(t.business_hours for t in policy.targets.values())
