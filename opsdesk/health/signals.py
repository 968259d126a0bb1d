"""Health signals: the flags of the digest as owned, deduplicated work
(docs/product.md#health-signals).

- ``signal_step`` is the lifecycle, one pure function: given a kind's signal as it stands
  (or none), the flag of the day (or none) and the figure that would clear it, it says
  what the day does: open, update, wake from a snooze, resolve, or nothing.
- ``materially_worse`` is the per-kind rule that wakes a snoozed signal early.
- ``signals_sweep`` applies the day to every followed customer once per date (claimed like
  the digest's deliveries), with history attributed to whoever runs it.
- ``signal_acknowledge`` and ``signal_snooze`` are the manager's two actions; each checks
  the person itself.
- ``digest_signals`` is what a digest of a date shows for some customers: the same steps
  applied in memory to the stored signals, so a preview before the sweep shows exactly
  what the sweep and the email will.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from audit.bulk import bulk_create_with_history, bulk_update_with_history
from audit.context import acting_as_user
from customers.access import user_may_edit_customer
from kit.people import person_name
from kit.text import count_of, one_line
from opsdesk.health.flags import CustomerHealth, Flag, customer_health
from opsdesk.health.models import HealthSignal, HealthSweep

HANDLE = "opsdesk.change_healthsignal"
SNOOZE_MAX_DAYS = 90
REASON_MAX_LENGTH = 300

OPEN, ACKNOWLEDGED, SNOOZED, RESOLVED = (
    HealthSignal.State.OPEN,
    HealthSignal.State.ACKNOWLEDGED,
    HealthSignal.State.SNOOZED,
    HealthSignal.State.RESOLVED,
)


class SignalError(Exception):
    """A refused action on a signal; the message says why, in the person's words."""


# --- The lifecycle: pure -----------------------------------------------------------------


@dataclass(frozen=True)
class SignalState:
    """A signal as the lifecycle sees it (a stored row's fields, or one planned today)."""

    kind: str
    label: str
    state: str
    opened_on: dt.date
    opened_reason: str
    reason: str
    value: float
    acknowledged: bool = False
    acknowledged_by: str = ""  # the name of who handles it
    snoozed_until: dt.date | None = None
    snoozed_value: float | None = None
    woke_reason: str = ""
    resolved_on: dt.date | None = None
    resolved_reason: str = ""
    pk: int | None = None

    @property
    def is_open(self) -> bool:
        return self.state != RESOLVED

    def hidden_on(self, date: dt.date) -> bool:
        """Snoozed and its date not reached: left out of the digest of ``date``."""
        return (
            self.state == SNOOZED and self.snoozed_until is not None and date < self.snoozed_until
        )


# What a day does to one kind of one customer.
OPENED, UPDATED, WOKE, RESOLVED_STEP = "opened", "updated", "woke", "resolved"


def _more(by: float) -> Callable[[float, float], bool]:
    """Worse when the value grew by at least ``by`` (absolute) since the snooze."""
    return lambda then, now: now >= then + by


def _fewer_days_left(limit: int) -> Callable[[float, float], bool]:
    """Worse once at most ``limit`` days are left and more were left at the snooze."""
    return lambda then, now: now <= limit < then


def _never(then: float, now: float) -> bool:
    return False


# The documented rule per kind (docs/product.md#health-signals): how much worse than at
# its snooze a signal's value must get to wake it before its date.
WORSE: dict[str, Callable[[float, float], bool]] = {
    # The error rate doubled.
    "error_rate": lambda then, now: now >= 2 * then and now > then,
    # WAU fell a further 15 points (-30% snoozed, -45% now).
    "usage_drop": _more(0.15),
    # One day more each day by definition: only the snooze's date ends it.
    "dormant": _never,
    "no_data": _never,
    # A week or less left.
    "renewal_soon": _fewer_days_left(7),
    "renewal_at_risk": _fewer_days_left(7),
    # One more of them.
    "urgent_tickets": _more(1),
    "billing_finding": _more(1),
    "sla_breach": _more(1),
    # The oldest invoice a further 30 days overdue.
    "overdue_invoice": _more(30),
    # A further 10% of the contracted seats above it.
    "seats_over": _more(0.10),
    # The most overdue task a further 14 days late.
    "onboarding_stalled": _more(14),
}


def materially_worse(kind: str, then: float | None, now: float) -> bool:
    """Whether a snoozed signal of ``kind`` got materially worse: its rule in ``WORSE``
    applied to its value at the snooze and today's. Unknown kinds never wake early."""
    if then is None:
        return False
    return WORSE.get(kind, _never)(then, now)


def signal_step(
    *, date: dt.date, signal: SignalState | None, flag: Flag | None, cleared: str
) -> tuple[str | None, SignalState | None]:
    """What ``date`` does to one kind of one customer: ``(step, signal after)``.

    ``signal`` is the kind's open signal or None; ``flag`` the kind's flag on ``date`` or
    None; ``cleared`` the figure that says the flag is gone (the resolution's reason).
    The step is ``opened``, ``updated`` (new figures, or a snooze kept), ``woke`` (a snooze
    ended: its date came, or the value got materially worse), ``resolved``, or None
    (nothing changed). A date before the signal opened changes nothing.
    """
    if signal is not None and (not signal.is_open or date < signal.opened_on):
        if signal.is_open:
            return None, signal
        signal = None
    if signal is None:
        if flag is None:
            return None, None
        opened = SignalState(
            kind=flag.code,
            label=flag.label,
            state=OPEN,
            opened_on=date,
            opened_reason=flag.reason,
            reason=flag.reason,
            value=flag.value,
        )
        return OPENED, opened
    if flag is None:
        return RESOLVED_STEP, dataclasses.replace(
            signal, state=RESOLVED, resolved_on=date, resolved_reason=cleared
        )
    figures = {"reason": flag.reason, "value": flag.value, "label": flag.label}
    if signal.state == SNOOZED:
        if date >= signal.snoozed_until:
            woke = f"snoozed until {_day(signal.snoozed_until)}"
        elif materially_worse(signal.kind, signal.snoozed_value, flag.value):
            woke = f"worse since the snooze: {flag.reason}"
        else:
            woke = ""
        if woke:
            after = ACKNOWLEDGED if signal.acknowledged else OPEN
            return WOKE, dataclasses.replace(signal, state=after, woke_reason=woke, **figures)
    if (signal.reason, signal.value, signal.label) == (flag.reason, flag.value, flag.label):
        return None, signal
    return UPDATED, dataclasses.replace(signal, **figures)


# --- What clears a flag: the figure the resolution quotes --------------------------------


def _day(date: dt.date | dt.datetime | None) -> str:
    return f"{date.day} {date:%b %Y}" if date else "never"


def cleared_reason(kind: str, health: CustomerHealth | None) -> str:
    """The figure that shows ``kind``'s flag is gone, from the day's health."""
    if health is None:
        return "the customer is no longer followed (churned)"
    rate = health.error_rate
    quotes: dict[str, Callable[[], str]] = {
        "error_rate": lambda: (
            f"error rate {rate:.1%}" if rate is not None else "no requests to rate"
        ),
        "usage_drop": lambda: f"WAU {health.wau} vs {health.wau_week_ago} a week earlier",
        "dormant": lambda: f"last login {_day(health.last_login_at)}",
        "no_data": lambda: "usage reported again",
        "renewal_soon": lambda: (
            f"nearest contract end {_day(health.contract_end)}"
            if health.contract_end
            else "no active contract ending soon"
        ),
        "urgent_tickets": lambda: count_of(health.urgent_open_tickets, "open urgent ticket"),
        "overdue_invoice": lambda: count_of(health.overdue_invoices, "overdue invoice"),
        "billing_finding": lambda: count_of(health.billing_findings, "open billing finding"),
        "seats_over": lambda: (
            f"WAU {health.wau} vs {health.contracted_seats} contracted seats"
            if health.wau is not None and health.contracted_seats
            else "no usage above a contract's seats"
        ),
        "sla_breach": lambda: count_of(
            health.sla_breached_tickets, "open ticket past its SLA", "open tickets past their SLA"
        ),
        "onboarding_stalled": lambda: (
            f"most overdue onboarding task {count_of(health.onboarding_days_overdue, 'day')} late"
        ),
        "renewal_at_risk": lambda: (
            f"no other signal before the contract end of {_day(health.contract_end)}"
            if health.contract_end
            else "no active contract ending soon"
        ),
    }
    quote = quotes.get(kind)
    if quote is not None:
        return quote()
    return "no longer raised by its rule"


# --- Reading and writing the rows ---------------------------------------------------------


def _state_of(row: HealthSignal) -> SignalState:
    return SignalState(
        kind=row.kind,
        label=row.label,
        state=row.state,
        opened_on=row.opened_on,
        opened_reason=row.opened_reason,
        reason=row.reason,
        value=row.value,
        acknowledged=row.acknowledged_at is not None,
        acknowledged_by=person_name(row.acknowledged_by) if row.acknowledged_by_id else "",
        snoozed_until=row.snoozed_until,
        snoozed_value=row.snoozed_value,
        woke_reason=row.woke_reason,
        resolved_on=row.resolved_on,
        resolved_reason=row.resolved_reason,
        pk=row.pk,
    )


def open_signals(customer_ids: Iterable[int] | None = None) -> dict[int, dict[str, HealthSignal]]:
    """The open signals, by customer and kind (one query)."""
    rows = HealthSignal.objects.exclude(state=RESOLVED).select_related("acknowledged_by")
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=customer_ids)
    found: dict[int, dict[str, HealthSignal]] = defaultdict(dict)
    for row in rows.order_by():
        found[row.customer_id][row.kind] = row
    return found


@dataclass(frozen=True)
class CustomerSignals:
    """One customer's signals as a digest of ``date`` shows them."""

    health: CustomerHealth
    new: list[SignalState]
    still_open: list[SignalState]
    snoozed: list[SignalState]
    resolved: list[SignalState]

    @property
    def shown(self) -> bool:
        return bool(self.new or self.still_open)


def _day_plan(
    *, date: dt.date, health: CustomerHealth | None, stored: dict[str, HealthSignal]
) -> list[tuple[str | None, SignalState | None, HealthSignal | None]]:
    flags = {flag.code: flag for flag in (health.flags if health else ())}
    plan = []
    for kind in sorted(set(flags) | set(stored)):
        row = stored.get(kind)
        step, after = signal_step(
            date=date,
            signal=_state_of(row) if row is not None else None,
            flag=flags.get(kind),
            cleared=cleared_reason(kind, health),
        )
        plan.append((step, after, row))
    return plan


def digest_signals(*, date: dt.date, health: list[CustomerHealth]) -> list[CustomerSignals]:
    """The signals of these customers as the digest of ``date`` shows them: new (opened
    on ``date``), still open (opened before; acknowledged ones marked), snoozed (hidden
    until their date), resolved on ``date``. Reads the stored signals (two queries) and
    applies the day's steps in memory, so it is the same before and after the sweep."""
    ids = [h.customer_id for h in health]
    stored = open_signals(ids)
    resolved_today: dict[int, list[SignalState]] = defaultdict(list)
    for row in HealthSignal.objects.filter(state=RESOLVED, resolved_on=date, customer_id__in=ids):
        resolved_today[row.customer_id].append(_state_of(row))
    shown = []
    for h in health:
        new, still, snoozed, resolved = [], [], [], list(resolved_today[h.customer_id])
        for _step, after, _row in _day_plan(date=date, health=h, stored=stored[h.customer_id]):
            if after is None or after.opened_on > date:
                continue
            if after.state == RESOLVED:
                if after.resolved_on == date and after not in resolved:
                    resolved.append(after)
            elif after.hidden_on(date):
                snoozed.append(after)
            elif after.opened_on == date:
                new.append(after)
            else:
                still.append(after)
        shown.append(
            CustomerSignals(
                health=h,
                new=new,
                still_open=sorted(still, key=lambda s: (s.opened_on, s.kind)),
                snoozed=snoozed,
                resolved=sorted(resolved, key=lambda s: s.kind),
            )
        )
    return shown


def _claim(date: dt.date) -> HealthSweep | None:
    """Take the sweep of ``date``, or None when it ran, is running (claimed less than
    ``OPSDESK_DIGEST_CLAIM_MINUTES`` ago), or a later date's sweep finished."""
    stale = timezone.now() - dt.timedelta(minutes=settings.OPSDESK_DIGEST_CLAIM_MINUTES)
    newer = HealthSweep.objects.filter(date__gt=date, status=HealthSweep.Status.FINISHED)
    if newer.exists():
        return None
    with transaction.atomic():
        sweep, created = HealthSweep.objects.get_or_create(
            date=date, defaults={"claimed_at": timezone.now()}
        )
        if created:
            return sweep
        sweep = HealthSweep.objects.select_for_update().get(pk=sweep.pk)
        if sweep.status == HealthSweep.Status.FINISHED:
            return None
        if sweep.status == HealthSweep.Status.RUNNING and sweep.claimed_at > stale:
            return None
        sweep.status = HealthSweep.Status.RUNNING
        sweep.claimed_at = timezone.now()
        sweep.error = ""
        sweep.save()
    return sweep


_FIELDS = (
    "label",
    "state",
    "reason",
    "value",
    "woke_reason",
    "resolved_on",
    "resolved_reason",
)


def signals_sweep(*, date: dt.date) -> HealthSweep | None:
    """Apply ``date`` to every open signal and every followed customer's flags: open the
    new, update the lasting, wake the snoozes that ended or got worse, resolve the
    cleared (churned customers' signals too). Once per date: None when this date's sweep
    ran or runs elsewhere, or a later date's finished. History is written for every
    change, attributed to the caller's actor (``task:digests_send``, a command)."""
    sweep = _claim(date)
    if sweep is None:
        return None
    try:
        health = {h.customer_id: h for h in customer_health(date=date)}
        stored = open_signals()
        counts: dict[str, int] = defaultdict(int)
        created: list[HealthSignal] = []
        changed: list[HealthSignal] = []
        for customer_id in set(health) | set(stored):
            plan = _day_plan(
                date=date, health=health.get(customer_id), stored=stored.get(customer_id, {})
            )
            for step, after, row in plan:
                if step is None:
                    continue
                counts[step] += 1
                if row is None:
                    created.append(
                        HealthSignal(
                            customer_id=customer_id,
                            kind=after.kind,
                            opened_on=after.opened_on,
                            opened_reason=after.opened_reason,
                            **{f: getattr(after, f) for f in _FIELDS},
                        )
                    )
                    continue
                for name in _FIELDS:
                    setattr(row, name, getattr(after, name))
                changed.append(row)
        with transaction.atomic():
            if created:
                bulk_create_with_history(created, HealthSignal, reason="flag appeared")
            if changed:
                bulk_update_with_history(
                    changed, HealthSignal, [*_FIELDS, "updated_at"], reason="daily health sweep"
                )
            sweep.status = HealthSweep.Status.FINISHED
            sweep.finished_at = timezone.now()
            sweep.customers = len(health)
            sweep.opened = counts[OPENED]
            sweep.updated = counts[UPDATED]
            sweep.woke = counts[WOKE]
            sweep.resolved = counts[RESOLVED_STEP]
            sweep.save()
    except Exception as error:
        # Recorded with history (a bare QuerySet.update would be refused by the audit
        # guard and hide the error); the next run takes the failed date over.
        sweep.status = HealthSweep.Status.FAILED
        sweep.error = f"{type(error).__name__}: {error}"
        sweep.save()
        raise
    return sweep


# --- The manager's actions ---------------------------------------------------------------


def may_handle(user: AbstractBaseUser, signal: HealthSignal) -> bool:
    """Who acknowledges and snoozes a signal: who holds ``opsdesk.change_healthsignal``
    and may edit the customer (its account manager; superusers any); ops leads, who hold
    the permission, handle any customer's."""
    if not (user.is_active and user.is_staff and user.has_perm(HANDLE)):
        return False
    return user_may_edit_customer(user, signal.customer) or user.has_perm(
        "opsdesk.handle_any_healthsignal"
    )


def _note(text: str, *, required: bool, what: str) -> str:
    text = one_line(text or "")
    if required and not text:
        raise SignalError(f"Say why you {what}: the reasons are read to tune the rules.")
    if len(text) > REASON_MAX_LENGTH:
        raise SignalError(f"A reason is at most {REASON_MAX_LENGTH} characters long.")
    return text


def _locked(signal: HealthSignal, by: AbstractBaseUser) -> HealthSignal:
    if not may_handle(by, signal):
        raise SignalError(
            "You may not handle this signal: it is for the customer's account manager."
        )
    row = HealthSignal.objects.select_for_update().select_related("customer").get(pk=signal.pk)
    if row.state == RESOLVED:
        raise SignalError(f"This signal was resolved on {_day(row.resolved_on)}: nothing to do.")
    return row


def signal_acknowledge(
    *, signal: HealthSignal, by: AbstractBaseUser, note: str = ""
) -> HealthSignal:
    """Mark the signal as being handled by ``by`` (it stays listed, marked so). A snoozed
    signal stays snoozed; acknowledging twice changes only the note."""
    note = _note(note, required=False, what="acknowledge it")
    with transaction.atomic(), acting_as_user(by, reason="signal acknowledged"):
        row = _locked(signal, by)
        row.acknowledged_by = by
        row.acknowledged_at = timezone.now()
        row.acknowledge_note = note
        if row.state == OPEN:
            row.state = ACKNOWLEDGED
        row.save()
    return row


def signal_snooze(
    *, signal: HealthSignal, by: AbstractBaseUser, until: dt.date, reason: str, today: dt.date
) -> HealthSignal:
    """Hide the signal from the digest until ``until`` (that day's digest shows it again),
    or until it gets materially worse (``WORSE``). ``until`` is after ``today`` and at most
    ``SNOOZE_MAX_DAYS`` ahead; a reason is required."""
    reason = _note(reason, required=True, what="snooze it")
    if until is None or until <= today:
        raise SignalError("Snooze until a day after today.")
    if until > today + dt.timedelta(days=SNOOZE_MAX_DAYS):
        raise SignalError(f"Snooze for at most {SNOOZE_MAX_DAYS} days.")
    with transaction.atomic(), acting_as_user(by, reason=f"signal snoozed: {reason}"):
        row = _locked(signal, by)
        row.state = SNOOZED
        row.snoozed_until = until
        row.snooze_reason = reason
        row.snoozed_by = by
        row.snoozed_value = row.value
        row.woke_reason = ""
        row.save()
    return row


__all__ = [
    "HANDLE",
    "CustomerSignals",
    "SignalError",
    "SignalState",
    "cleared_reason",
    "digest_signals",
    "materially_worse",
    "may_handle",
    "open_signals",
    "signal_acknowledge",
    "signal_snooze",
    "signal_step",
    "signals_sweep",
]
