"""Service levels of support tickets (docs/product.md#service-levels): business time and
the three clocks, as pure functions of their inputs. Nothing here reads the database or
the clock; ``support.ticket_sla`` gathers a ticket's timeline and stores what these say.

Times are aware datetimes, compared and added in UTC (Python adds wall-clock time within
one zone, which a DST change would get wrong); business hours are wall-clock times of a
policy's zone.

The rules of a clock, in one place:

- It runs only while the ticket is open: waiting on the customer (``pending``) pauses
  it, solved or closed stops it (a reopened ticket's clock goes on where it stopped).
  A customer's message ends waiting (and solved) at its own time.
- Each stretch of time counts as the policy and priority in force then said (business
  hours or around the clock); the target is the one in force at the end: when the clock
  stopped, or now. So a priority raised before the first response moves that deadline,
  one raised after it moves only the clocks still running.
- Its deadline is the moment the counted time reaches the target; its warning the moment
  it reaches ``share`` of it. While paused, a clock not yet overdue has no deadline.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

UTC = dt.UTC
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
PRIORITIES = ("urgent", "high", "normal", "low")
# Statuses (support.models.Ticket.Status) as the clocks see them.
OPEN, PENDING, SOLVED, CLOSED = "open", "pending", "solved", "closed"
ENDED = (SOLVED, CLOSED)
# How far a deadline is looked for: a calendar with hours finds one long before.
_HORIZON_DAYS = 3 * 366
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")

FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION = "first_response", "next_response", "resolution"
CLOCK_NAMES = {
    FIRST_RESPONSE: "first response",
    NEXT_RESPONSE: "next response",
    RESOLUTION: "resolution",
}


# --- calendars ----------------------------------------------------------------------------


class CalendarError(ValueError):
    """A weekly calendar that cannot be used; ``messages`` says each problem, for people."""

    def __init__(self, messages: list[str]):
        super().__init__(" ".join(messages))
        self.messages = messages


Week = tuple[tuple[tuple[int, int], ...], ...]  # per weekday (Monday first): (from, to) minutes


def week_parse(hours: object) -> Week:
    """The weekly business hours ``{"mon": [["09:00", "17:00"]], ...}`` (days not named
    have none; "24:00" ends a day) as minutes per weekday; ``CalendarError`` lists every
    problem: an unknown day, a time that is not HH:MM, a stretch that ends before it
    starts, two that overlap, a week without any hours."""
    if not isinstance(hours, Mapping):
        raise CalendarError(
            [
                'Business hours must be a mapping of days to hours, like {"mon": [["09:00", '
                '"17:00"]]}.'
            ]
        )
    problems = []
    unknown = sorted(str(day) for day in hours if day not in WEEKDAYS)
    if unknown:
        problems.append(f"Unknown day {', '.join(unknown)}: use {', '.join(WEEKDAYS)}.")
    week = []
    for key, name in zip(WEEKDAYS, DAY_NAMES, strict=True):
        stretches = hours.get(key, [])
        if not isinstance(stretches, Sequence) or isinstance(stretches, str):
            problems.append(f'{name}: give a list of [from, to] pairs, like [["09:00", "17:00"]].')
            week.append(())
            continue
        day = []
        for stretch in stretches:
            if not isinstance(stretch, Sequence) or isinstance(stretch, str) or len(stretch) != 2:
                problems.append(f"{name}: {stretch!r} is not a [from, to] pair.")
                continue
            start, end = (_minutes(value) for value in stretch)
            if start is None or end is None or start == 24 * 60:
                problems.append(
                    f"{name}: {_shown(stretch)} is not two times of day (HH:MM, 00:00 to 24:00)."
                )
                continue
            if end <= start:
                problems.append(f"{name}: {_shown(stretch)} ends before it starts.")
                continue
            day.append((start, end))
        day.sort()
        for (a_start, a_end), (b_start, b_end) in itertools.pairwise(day):
            if b_start < a_end:
                problems.append(
                    f"{name}: {hhmm(a_start)}-{hhmm(a_end)} and {hhmm(b_start)}-"
                    f"{hhmm(b_end)} overlap."
                )
        week.append(tuple(day))
    if not problems and not any(week):
        problems.append("Give at least one day business hours.")
    if problems:
        raise CalendarError(problems)
    return tuple(week)


def _minutes(value: object) -> int | None:
    if not isinstance(value, str) or not _HHMM.match(value):
        return None
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def hhmm(minutes: int) -> str:
    """Minutes after midnight as "HH:MM" ("24:00" for the day's end)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _shown(stretch: Sequence) -> str:
    return "-".join(str(value) for value in stretch)


def zone_valid(name: str) -> bool:
    """Whether ``name`` is a time zone of the IANA database (Europe/Berlin, UTC, ...)."""
    return name in _zones()


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@dataclass(frozen=True)
class Calendar:
    """When business time runs: ``week`` (``week_parse``) in the wall-clock time of
    ``zone``, except on ``holidays`` (dates of that zone, whole days)."""

    zone: str
    week: Week
    holidays: frozenset[dt.date] = frozenset()

    def windows(self, since: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """The stretches of business time from ``since`` on, in UTC, in order (the first
        one cut at ``since``), for ``_HORIZON_DAYS`` days."""
        zone = zoneinfo.ZoneInfo(self.zone)
        since = since.astimezone(UTC)
        first = since.astimezone(zone).date()
        for offset in range(_HORIZON_DAYS):
            day = first + dt.timedelta(days=offset)
            if day in self.holidays:
                continue
            for start, end in self.week[day.weekday()]:
                opens, closes = _at(day, start, zone), _at(day, end, zone)
                if closes > since and closes > opens:
                    yield max(opens, since), closes


def _at(day: dt.date, minutes: int, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """``minutes`` after midnight of ``day`` on the wall clock of ``zone``, in UTC. A time
    a DST change skips is read with the offset before the change (Python's ``fold=0``),
    so a stretch across the gap is as long as the clocks say it is."""
    if minutes == 24 * 60:
        day, minutes = day + dt.timedelta(days=1), 0
    local = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=zone)
    return local.astimezone(UTC)


# --- business-time arithmetic -------------------------------------------------------------


def business_deadline(
    start: dt.datetime, amount: dt.timedelta, calendar: Calendar | None
) -> dt.datetime | None:
    """When ``amount`` of business time has passed since ``start`` (``calendar`` None:
    around the clock). A deadline that falls on the end of a day's hours is that end
    (Monday 17:00, not Tuesday 09:00). None when the calendar has no hours within
    ``_HORIZON_DAYS``."""
    start = start.astimezone(UTC)
    if amount <= dt.timedelta(0):
        return start
    if calendar is None:
        return start + amount
    left = amount
    for opens, closes in calendar.windows(start):
        if closes - opens >= left:
            return opens + left
        left -= closes - opens
    return None


def business_elapsed(
    start: dt.datetime, end: dt.datetime, calendar: Calendar | None
) -> dt.timedelta:
    """The business time between ``start`` and ``end`` (``calendar`` None: around the
    clock); nothing when ``end`` is not after ``start``."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return dt.timedelta(0)
    if calendar is None:
        return end - start
    total = dt.timedelta(0)
    for opens, closes in calendar.windows(start):
        if opens >= end:
            break
        total += min(closes, end) - opens
    return total


# --- policies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What one priority of a policy promises; ``business_hours`` False: around the clock."""

    first_response: dt.timedelta
    next_response: dt.timedelta
    resolution: dt.timedelta
    business_hours: bool = True

    def of(self, clock: str) -> dt.timedelta:
        return getattr(self, clock)


@dataclass(frozen=True)
class Policy:
    """A service level: its calendar and a target per priority. ``pk`` is the stored
    policy's (None: the built-in default, used when none is stored)."""

    name: str
    calendar: Calendar
    targets: Mapping[str, Target]
    pk: int | None = None

    def target(self, priority: str) -> Target:
        return self.targets[priority]

    def calendar_for(self, priority: str) -> Calendar | None:
        """The hours that count for ``priority`` (None: around the clock)."""
        return self.calendar if self.targets[priority].business_hours else None


# The defaults of docs/product.md#service-levels (support.migrations.0019 stores the same).
DEFAULT_HOURS = {day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]}
FIRST_RESPONSE_MINUTES = {"urgent": 60, "high": 240, "normal": 480, "low": 1440}


def default_targets(*, around_the_clock: Sequence[str] = ()) -> dict[str, Target]:
    """First response urgent 1 h, high 4 h, normal 8 h, low 24 h; next response half of
    that; resolution five times; in business hours except the priorities named."""
    return {
        priority: Target(
            first_response=dt.timedelta(minutes=minutes),
            next_response=dt.timedelta(minutes=minutes // 2),
            resolution=dt.timedelta(minutes=minutes * 5),
            business_hours=priority not in around_the_clock,
        )
        for priority, minutes in FIRST_RESPONSE_MINUTES.items()
    }


def builtin_policy(zone: str) -> Policy:
    """The default policy as shipped (Starter's), for when no policy is stored at all: a
    ticket always has a service level."""
    return Policy(
        name="Default (built in)",
        calendar=Calendar(zone=zone, week=week_parse(DEFAULT_HOURS)),
        targets=default_targets(),
    )


# --- a ticket's timeline and its clocks ---------------------------------------------------


@dataclass(frozen=True)
class State:
    """The ticket from ``at`` on: its status, priority and policy."""

    at: dt.datetime
    status: str
    priority: str
    policy: Policy


@dataclass(frozen=True)
class Timeline:
    """What the clocks read: when the ticket was opened, its states in time order (the
    first one is its state when opened), and when staff replied to the requester and the
    customer wrote."""

    opened_at: dt.datetime
    states: Sequence[State]
    replies: Sequence[dt.datetime] = ()
    customer_messages: Sequence[dt.datetime] = ()


@dataclass(frozen=True)
class Clock:
    """One clock of a ticket at ``now``. ``due_at``: when its target is reached (None: not
    started, or paused before it was reached); ``warn_at``: when ``share`` of it is;
    ``elapsed``: the time counted until it stopped, or now."""

    name: str
    started_at: dt.datetime | None = None
    stopped_at: dt.datetime | None = None
    target: dt.timedelta | None = None
    due_at: dt.datetime | None = None
    warn_at: dt.datetime | None = None
    elapsed: dt.timedelta = dt.timedelta(0)
    paused: bool = False

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.stopped_at is None

    def breached(self, now: dt.datetime) -> bool:
        """Missed: answered (or solved) after its deadline, or still running past it."""
        if self.due_at is None:
            return False
        return self.due_at < self.stopped_at if self.stopped_at else self.due_at <= now


@dataclass(frozen=True)
class Clocks:
    """The three clocks of a ticket at ``now``; ``next_cycles`` every next-response clock
    so far (the last may be running)."""

    now: dt.datetime
    first_response: Clock
    next_response: Clock
    resolution: Clock
    paused_since: dt.datetime | None = None
    next_cycles: tuple[Clock, ...] = field(default=())

    @property
    def running(self) -> list[Clock]:
        """The clocks that run now (paused ones included), nearest deadline first."""
        clocks = (self.first_response, self.next_response, self.resolution)
        return sorted(
            (c for c in clocks if c.running),
            key=lambda c: (c.due_at is None, c.due_at or self.now),
        )


@dataclass(frozen=True)
class _Stretch:
    start: dt.datetime
    end: dt.datetime
    status: str
    priority: str
    policy: Policy


def _states(timeline: Timeline, now: dt.datetime) -> list[State]:
    """The states in order from the opening to ``now``, with the pauses and solves that a
    customer's message ends at its own time."""
    opened = timeline.opened_at.astimezone(UTC)
    states = sorted(timeline.states, key=lambda s: s.at)
    if not states:
        raise ValueError("A timeline needs the ticket's state when it was opened.")
    events: list[tuple[dt.datetime, int, State | None]] = [
        (max(s.at.astimezone(UTC), opened), 1, s) for s in states
    ]
    events += [
        (m.astimezone(UTC), 0, None)
        for m in timeline.customer_messages
        if opened < m.astimezone(UTC) <= now
    ]
    events.sort(key=lambda e: (e[0], e[1]))
    current = State(opened, states[0].status, states[0].priority, states[0].policy)
    out = [current]
    for at, _, state in events:
        if at > now:
            break
        if state is None:  # the customer wrote: no longer waiting on them
            if current.status not in (PENDING, SOLVED):
                continue
            current = State(at, OPEN, current.priority, current.policy)
        else:
            current = State(at, state.status, state.priority, state.policy)
        if out[-1].at == at:
            out[-1] = current
        else:
            out.append(current)
    return out


def _stretches(states: list[State], start: dt.datetime, end: dt.datetime) -> list[_Stretch]:
    """The states cut to [start, end]."""
    out = []
    for state, following in zip(states, [*states[1:], None], strict=True):
        a = max(state.at, start)
        b = min(following.at if following else end, end)
        if b > a:
            out.append(_Stretch(a, b, state.status, state.priority, state.policy))
    return out


def _state_at(states: list[State], at: dt.datetime) -> State:
    current = states[0]
    for state in states:
        if state.at > at:
            break
        current = state
    return current


def _reached(
    stretches: list[_Stretch], amount: dt.timedelta, tail: _Stretch | None, tail_from: dt.datetime
) -> dt.datetime | None:
    """When the time counted over ``stretches`` (open ones, each in its own hours) reaches
    ``amount``; past them it goes on as ``tail`` says from ``tail_from`` (None: it does
    not go on, e.g. paused)."""
    counted = dt.timedelta(0)
    for stretch in stretches:
        if stretch.status != OPEN:
            continue
        hours = stretch.policy.calendar_for(stretch.priority)
        part = business_elapsed(stretch.start, stretch.end, hours)
        if counted + part >= amount:
            return business_deadline(stretch.start, amount - counted, hours)
        counted += part
    if tail is None:
        return None
    return business_deadline(tail_from, amount - counted, tail.policy.calendar_for(tail.priority))


def _counted(stretches: list[_Stretch]) -> dt.timedelta:
    return sum(
        (
            business_elapsed(s.start, s.end, s.policy.calendar_for(s.priority))
            for s in stretches
            if s.status == OPEN
        ),
        dt.timedelta(0),
    )


def _clock(
    name: str,
    states: list[State],
    start: dt.datetime,
    stop: dt.datetime | None,
    now: dt.datetime,
    share: float,
) -> Clock:
    """The clock ``name`` started at ``start`` and stopped at ``stop`` (None: running)."""
    end = stop or now
    stretches = _stretches(states, start, end)
    last = _state_at(states, end)
    target = last.policy.target(last.priority).of(name)
    if stop is not None:
        # Stopped: its deadline as it stood then, going on as if it had kept running.
        tail = _Stretch(end, end, OPEN, last.priority, last.policy)
    else:
        tail = _Stretch(end, end, last.status, last.priority, last.policy)
        if last.status != OPEN:
            tail = None
    return Clock(
        name=name,
        started_at=start,
        stopped_at=stop,
        target=target,
        due_at=_reached(stretches, target, tail, end),
        warn_at=_reached(stretches, target * share, tail, end) if stop is None else None,
        elapsed=_counted(stretches),
        paused=stop is None and last.status == PENDING,
    )


def _since(states: list[State], statuses: tuple[str, ...]) -> dt.datetime | None:
    """Since when the ticket has been in one of ``statuses``, if it is now."""
    if states[-1].status not in statuses:
        return None
    at = states[-1].at
    for state in reversed(states):
        if state.status not in statuses:
            break
        at = state.at
    return at


def ticket_clocks(timeline: Timeline, *, now: dt.datetime, share: float = 0.75) -> Clocks:
    """The first-response, next-response and resolution clocks of a ticket at ``now``.

    - first response: from the opening to the first reply;
    - next response: from a customer's message (after the opening) to the next reply; a
      second message before that reply keeps the first one's clock;
    - resolution: from the opening until it is solved or closed.

    A ticket solved or closed now has all its clocks stopped when it was (the first
    response that never came included); reopened, they go on. ``now`` before the opening
    counts as the opening."""
    opened = timeline.opened_at.astimezone(UTC)
    # A ticket opened "later" (a source's clock ahead of ours) is counted from its opening.
    now = max(now.astimezone(UTC), opened)
    states = _states(timeline, now)
    ended = _since(states, ENDED)
    replies = sorted(r.astimezone(UTC) for r in timeline.replies if r.astimezone(UTC) <= now)

    first_reply = next((r for r in replies if r >= opened), None)
    first = _clock(FIRST_RESPONSE, states, opened, first_reply or ended, now, share)
    resolution = _clock(RESOLUTION, states, opened, ended, now, share)

    cycles = []
    moments = sorted(
        [(m.astimezone(UTC), 0) for m in timeline.customer_messages] + [(r, 1) for r in replies],
    )
    started = None
    for at, kind in moments:
        if at > now or at <= opened:
            continue
        if kind == 0 and started is None:
            started = at
        elif kind == 1 and started is not None:
            cycles.append(_clock(NEXT_RESPONSE, states, started, at, now, share))
            started = None
    if started is not None:
        stop = ended if ended is not None and ended >= started else None
        cycles.append(_clock(NEXT_RESPONSE, states, started, stop, now, share))
    following = cycles[-1] if cycles else Clock(NEXT_RESPONSE)

    return Clocks(
        now=now,
        first_response=first,
        next_response=following,
        resolution=resolution,
        paused_since=_since(states, (PENDING,)),
        next_cycles=tuple(cycles),
    )


def clocks_fields(clocks: Clocks) -> dict[str, dt.datetime | None]:
    """What a ticket stores of its clocks (``support.models.Ticket``): each clock's
    deadline (a stopped first response and resolution keep theirs, the met or missed
    promise; a next response only while it runs) and warning while it runs, when the
    current pause began, and for the queue the nearest deadline and warning of the
    clocks that run, unless the ticket waits on the customer."""
    first, following, resolution = clocks.first_response, clocks.next_response, clocks.resolution
    running = [c for c in (first, following, resolution) if c.running]
    waiting = clocks.paused_since is not None
    due = [c.due_at for c in running if c.due_at is not None]
    warn = [c.warn_at for c in running if c.warn_at is not None]
    return {
        "first_response_due_at": first.due_at,
        "first_response_warn_at": first.warn_at if first.running else None,
        "next_response_due_at": following.due_at if following.running else None,
        "next_response_warn_at": following.warn_at if following.running else None,
        "resolution_due_at": resolution.due_at,
        "resolution_warn_at": resolution.warn_at if resolution.running else None,
        "sla_paused_at": clocks.paused_since,
        "sla_due_at": None if waiting or not due else min(due),
        "sla_warn_at": None if waiting or not warn else min(warn),
    }
