"""Reads of the health signals that pages share (docs/product.md#health-signals): one
customer's signals with their latest history (the customer page), and an account
manager's open signals (the home page's widget, ``opsdesk.home.selectors``).

Each is a fixed number of queries whatever the number of signals or the length of their
history; who may act on a signal is ``opsdesk.health.signals.may_handle``'s business.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import F, Q, Window
from django.db.models.functions import Lag, RowNumber

from customers.models import Customer
from kit.people import actor_name, person_name
from kit.text import count_of
from opsdesk.health.models import HealthSignal, HealthSweep
from opsdesk.health.signals import may_handle

RESOLVED = HealthSignal.State.RESOLVED
SNOOZED = HealthSignal.State.SNOOZED

# The customer page: the latest changes shown per open signal (the record page has all),
# how far back resolved signals are listed, and how many of them at most.
HISTORY_SHOWN = 3
RESOLVED_DAYS = 90
RESOLVED_SHOWN = 10


@dataclass(frozen=True)
class HistoryLine:
    """One change of a signal: when, who (by name), and the reason recorded with it."""

    at: dt.datetime
    actor: str
    reason: str
    state: str  # the signal's state after the change, as shown ("Snoozed")


@dataclass(frozen=True)
class OpenSignal:
    """An open signal as the customer page shows it: the row, its age in days, who
    handles it and who snoozed it last ("" when nobody), its latest changes (newest
    first), whether older ones exist, and whether the person looking may acknowledge or
    snooze it."""

    signal: HealthSignal
    age: int
    handled_by: str
    snoozed_by: str
    history: list[HistoryLine]
    more_history: bool
    may_handle: bool

    @property
    def age_text(self) -> str:
        return age_text(self.age)


@dataclass(frozen=True)
class CustomerSignals:
    open: list[OpenSignal] = field(default_factory=list)
    resolved: list[HealthSignal] = field(default_factory=list)  # newest first
    more_resolved: bool = False
    resolved_days: int = RESOLVED_DAYS


def age_text(days: int) -> str:
    """How long a signal has been open: "new today", "1 day", "12 days"."""
    return "new today" if days == 0 else count_of(days, "day")


def _handler(signal: HealthSignal) -> str:
    return person_name(signal.acknowledged_by) if signal.acknowledged_by_id else ""


def _changes(open_signals, *, shown: int) -> dict[int, list]:
    """The latest ``shown`` + 1 changes of each signal of ``open_signals`` (a queryset of
    ids), newest first, by signal id. A change is the signal's opening, a change of state
    (snoozed, woken, resolved) or a person's action (acknowledged, snoozed again); the
    sweep's daily new figures (a dormant signal's "16 days" after "15 days") are left to
    the record page's full history. One query."""
    order = ["history_date", "history_id"]
    changes = (
        HealthSignal.history.filter(id__in=open_signals)
        .annotate(_state_before=Window(Lag("state"), partition_by=[F("id")], order_by=order))
        .filter(Q(history_type="+") | Q(history_user__isnull=False) | ~Q(state=F("_state_before")))
        .values("history_id")
    )
    rows = (
        HealthSignal.history.filter(history_id__in=changes)
        .annotate(
            _newest=Window(
                RowNumber(),
                partition_by=[F("id")],
                order_by=[F("history_date").desc(), F("history_id").desc()],
            )
        )
        .filter(_newest__lte=shown + 1)
        .select_related("history_user")
        .order_by("id", "-history_date", "-history_id")
    )
    found: dict[int, list] = {}
    for row in rows:
        found.setdefault(row.id, []).append(row)
    return found


def customer_signals(
    *,
    customer: Customer,
    user,
    today: dt.date,
    history: int = HISTORY_SHOWN,
    resolved_days: int = RESOLVED_DAYS,
    resolved_shown: int = RESOLVED_SHOWN,
) -> CustomerSignals:
    """``customer``'s open signals (unhandled first, then handled, then snoozed; oldest
    first in each), each with its latest ``history`` changes, and up to
    ``resolved_shown`` of the signals resolved in the last ``resolved_days`` days before
    ``today``, newest first. Two queries, whatever the number of signals or the length of
    their history: the signals, and the history of the open ones."""
    since = today - dt.timedelta(days=resolved_days)
    open_ids = HealthSignal.objects.filter(customer=customer).exclude(state=RESOLVED)
    rows = list(
        HealthSignal.objects.filter(customer=customer)
        .filter(~Q(state=RESOLVED) | Q(resolved_on__gte=since))
        .select_related("acknowledged_by", "snoozed_by")
        .order_by("-resolved_on", "opened_on", "kind", "pk")
    )
    changes = _changes(open_ids.values("pk"), shown=history)
    states = dict(HealthSignal.State.choices)
    rank = {HealthSignal.State.OPEN: 0, HealthSignal.State.ACKNOWLEDGED: 1, SNOOZED: 2}
    opened, resolved = [], []
    for row in rows:
        row.customer = customer  # may_handle reads it; it is the page's own
        if row.state == RESOLVED:
            resolved.append(row)
            continue
        lines = [
            HistoryLine(
                at=change.history_date,
                actor=actor_name(change.history_actor, change.history_user),
                reason=change.history_change_reason or "",
                state=states.get(change.state, change.state),
            )
            for change in changes.get(row.pk, [])
        ]
        opened.append(
            OpenSignal(
                signal=row,
                age=(today - row.opened_on).days,
                handled_by=_handler(row),
                snoozed_by=person_name(row.snoozed_by) if row.snoozed_by_id else "",
                history=lines[:history],
                more_history=len(lines) > history,
                may_handle=may_handle(user, row),
            )
        )
    opened.sort(key=lambda o: (rank.get(o.signal.state, 3), o.signal.opened_on, o.signal.kind))
    return CustomerSignals(
        open=opened,
        resolved=resolved[:resolved_shown],
        more_resolved=len(resolved) > resolved_shown,
        resolved_days=resolved_days,
    )


# --- An account manager's open signals ---------------------------------------------------


@dataclass(frozen=True)
class ManagerSignal:
    """One open signal on the manager's home: new on the date, or open for ``age`` days;
    ``handled_by`` names who acknowledged it ("" when nobody)."""

    signal: HealthSignal
    age: int
    handled_by: str

    @property
    def is_new(self) -> bool:
        return self.age == 0

    @property
    def age_text(self) -> str:
        return age_text(self.age)


def sweep_finished(*, date: dt.date) -> bool:
    """Whether the signals' sweep of ``date`` ran to its end. One query."""
    return HealthSweep.objects.filter(date=date, status=HealthSweep.Status.FINISHED).exists()


def manager_open_signals(*, user, date: dt.date) -> list[ManagerSignal]:
    """The open signals of the customers ``user`` manages that the digest of ``date``
    shows: not resolved, and not hidden by a snooze whose date is after ``date``. New on
    ``date`` first, then those nobody handles, then the handled; oldest first in each.
    One query."""
    rows = (
        HealthSignal.objects.filter(customer__account_manager=user)
        .exclude(state=RESOLVED)
        .exclude(state=SNOOZED, snoozed_until__gt=date)
        .filter(opened_on__lte=date)
        .select_related("customer", "acknowledged_by")
        .order_by("opened_on", "customer__name", "kind", "pk")
    )
    shown = [
        ManagerSignal(
            signal=row,
            age=(date - row.opened_on).days,
            handled_by=_handler(row),
        )
        for row in rows
    ]
    shown.sort(key=lambda s: (not s.is_new, bool(s.handled_by)))  # stable: oldest first
    return shown
