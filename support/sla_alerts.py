"""Warnings before a ticket's clock runs out, and escalation when it has
(docs/product.md#warnings-and-escalation).

``sla_alerts_send`` (beat, every ``OPSDESK_SLA_SWEEP_SECONDS``) finds, per clock (first
response, next response, resolution), the open tickets whose warning share
(``OPSDESK_SLA_WARN_SHARE``) of the target has passed, and those past the deadline, that
were not told of that deadline yet. For each it claims a ``SlaAlert`` row (unique per
ticket, clock, kind and deadline: the claim of the digest's deliveries) and, in the same
transaction, stores the notices (``support.notices.ticket_sla_notify``): the assignee, or
the support team for an unassigned ticket, is warned; at the breach the escalation group
(``OPSDESK_SLA_ESCALATE_TO``, the ops leads) hears too. A second sweep, a second scheduler,
or a run after a crash finds the claim and tells nobody twice; a claim whose notices could
not be stored is rolled back with them and tried again.

A deadline that moved (a priority raised, a customer's new message) is a new one and is
told again. One found long after its moment (more than ``OPSDESK_SLA_ALERT_WINDOW_HOURS``:
the sweep was not running, or service levels were just switched on) is recorded without a
notice: the queue shows it first anyway, and a flood of stale alarms helps nobody.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from audit.bulk import insert_with_history
from support import sla
from support.models import SlaAlert, Ticket
from support.notices import ticket_sla_notify
from support.ticket_sla import clock_breached_q, clock_warned_q

logger = logging.getLogger(__name__)

CLOCKS = (sla.FIRST_RESPONSE, sla.NEXT_RESPONSE, sla.RESOLUTION)
# Tickets one sweep takes per clock and kind; the next sweep takes the rest.
SWEEP_LIMIT = 500


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did: warnings and breaches told, and those recorded untold (found
    past the window)."""

    warned: int = 0
    breached: int = 0
    recorded_late: int = 0


def _pending(clock: str, kind: str, *, now: dt.datetime, limit: int) -> list[int]:
    """Ids of open tickets whose ``clock`` is at ``kind`` (a warning: the share passed, the
    deadline not; a breach: the deadline passed) and not told of that deadline yet, the
    longest waiting first. Read from the clock's partial index (``ticket_<clock>_warn``)
    and the alerts' unique index."""
    due_field, warn_field = f"{clock}_due_at", f"{clock}_warn_at"
    if kind == SlaAlert.Kind.BREACH:
        condition = clock_breached_q(clock, now=now) & Q(**{f"{warn_field}__lte": now})
    else:
        condition = clock_warned_q(clock, now=now) & Q(**{f"{due_field}__gt": now})
    told = SlaAlert.objects.filter(
        ticket=OuterRef("pk"), clock=clock, kind=kind, due_at=OuterRef(due_field)
    )
    return list(
        Ticket.objects.filter(condition)
        .filter(~Exists(told))
        .order_by(warn_field, "pk")
        .values_list("pk", flat=True)[:limit]
    )


def _alert(
    ticket_id: int, clock: str, kind: str, *, now: dt.datetime, window: dt.timedelta
) -> str | None:
    """Claim and tell one alert; returns "told", "late" (recorded untold) or None (not
    due any more, being edited right now, or claimed by another sweep)."""
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_related("assignee")
            .select_for_update(of=("self",), skip_locked=True)
            .filter(pk=ticket_id)
            .first()
        )
        if ticket is None:  # a person is saving it: the next sweep sees the result
            return None
        due_at = getattr(ticket, f"{clock}_due_at")
        warn_at = getattr(ticket, f"{clock}_warn_at")
        if ticket.status != Ticket.Status.OPEN or warn_at is None or warn_at > now:
            return None
        breached = due_at <= now
        if breached != (kind == SlaAlert.Kind.BREACH):
            return None
        moment = due_at if breached else warn_at
        notified = now - moment <= window
        claimed = insert_with_history(
            SlaAlert(
                ticket=ticket,
                clock=clock,
                kind=kind,
                due_at=due_at,
                notified=notified,
                created_at=now,
            ),
            unique=("ticket", "clock", "kind", "due_at"),
        )
        if claimed is None:
            return None
        if not notified:
            return "late"
        escalate = settings.OPSDESK_SLA_ESCALATE_TO if breached else ""
        ticket_sla_notify(
            ticket=ticket,
            clock=clock,
            due_at=due_at,
            breached=breached,
            leads=escalate,
            at_once=True,
        )
        return "told"


def sla_alerts_send(*, now: dt.datetime | None = None, limit: int = SWEEP_LIMIT) -> SweepResult:
    """Tell every warning and breach due by ``now`` that was not told yet (see the
    module's docstring). Safe to run twice, or in two schedulers at once. A ticket whose
    alert fails is logged and tried by the next sweep; the others go on."""
    now = now or timezone.now()
    window = dt.timedelta(hours=settings.OPSDESK_SLA_ALERT_WINDOW_HOURS)
    counts = {"warning": 0, "breach": 0, "late": 0}
    for clock in CLOCKS:
        for kind in (SlaAlert.Kind.BREACH, SlaAlert.Kind.WARNING):
            for ticket_id in _pending(clock, kind, now=now, limit=limit):
                try:
                    outcome = _alert(ticket_id, clock, kind, now=now, window=window)
                except Exception:
                    logger.exception("SLA %s of ticket %s (%s) not told", kind, ticket_id, clock)
                    continue
                if outcome == "told":
                    counts[kind] += 1
                elif outcome == "late":
                    counts["late"] += 1
    if counts["late"]:
        logger.warning(
            "%s SLA alerts were due more than %s ago and were recorded without a notice",
            counts["late"],
            window,
        )
    return SweepResult(
        warned=counts["warning"], breached=counts["breach"], recorded_late=counts["late"]
    )
