"""A ticket's service levels kept current (docs/product.md#service-levels): the policy
its customer's contract picks, its timeline read from its history and conversation, and
the clocks of ``support.sla`` stored on it.

Every service that changes what a clock reads (opening, status, priority, customer,
reply, customer message) calls ``ticket_sla_apply`` before it saves the ticket, so one
save writes the change and its deadlines (one history entry); ``ticket_sla_refresh`` does
it alone. What they store holds until the ticket's next event: a running clock's deadline
goes on in the hours of the state it is in.

For the warnings and the queue (item 2 of issue 19), a ticket says on itself
(``Ticket``): ``sla_warn_at`` / ``sla_due_at``: the nearest warning and deadline of the
clocks that run (none while waiting on the customer), and per clock
``<clock>_warn_at`` / ``<clock>_due_at``; ``tickets_at_risk`` and ``tickets_breached`` read
them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from customers.models import Contract
from customers.selectors import contract_current
from support import sla
from support.models import SlaPolicy, Ticket, TicketComment

logger = logging.getLogger(__name__)

# The fields ``ticket_sla_apply`` may change.
SLA_FIELDS = (
    "sla_policy",
    "first_response_due_at",
    "first_response_warn_at",
    "next_response_due_at",
    "next_response_warn_at",
    "resolution_due_at",
    "resolution_warn_at",
    "sla_paused_at",
    "sla_due_at",
    "sla_warn_at",
)


@dataclass(frozen=True)
class PolicyBook:
    """The stored policies as ``support.sla`` reads them: by id, by plan, and the one for
    everyone else. Without any stored policy, the built-in default stands in, so every
    ticket has a service level whatever the table holds."""

    by_pk: dict[int, sla.Policy]
    by_plan: dict[str, sla.Policy]
    default: sla.Policy

    def for_plan(self, plan: str | None) -> sla.Policy:
        """The policy of an active contract's ``plan`` (None: no active contract, or no
        customer), else the default."""
        return self.by_plan.get(plan or "", self.default)


def sla_policy_book() -> PolicyBook:
    """Every stored policy with its targets and holidays (three queries). A priority a
    policy has no target for gets the built-in one; a plan named by two policies (the
    admin refuses it) follows the one that comes first by name; no default stored: the
    first by name that names no plan, else the built-in one."""
    builtin = sla.builtin_policy(settings.TIME_ZONE)
    rows = list(SlaPolicy.objects.prefetch_related("targets", "holidays").order_by("name", "pk"))
    by_pk = {row.pk: _policy(row, builtin) for row in rows}
    by_plan: dict[str, sla.Policy] = {}
    for row in rows:
        for plan in row.plans:
            by_plan.setdefault(plan, by_pk[row.pk])
    default = next((by_pk[r.pk] for r in rows if r.is_default), None)
    if default is None:
        default = next((by_pk[r.pk] for r in rows if not r.plans), builtin)
    return PolicyBook(by_pk=by_pk, by_plan=by_plan, default=default)


def _policy(row: SlaPolicy, builtin: sla.Policy) -> sla.Policy:
    try:
        week = sla.week_parse(row.business_hours)
    except sla.CalendarError as error:  # saved around the admin's check
        logger.error("SLA policy %s has unusable hours (%s): default hours used", row.pk, error)
        week = builtin.calendar.week
    zone = row.time_zone if sla.zone_valid(row.time_zone) else builtin.calendar.zone
    targets = dict(builtin.targets)
    for target in row.targets.all():
        targets[target.priority] = sla.Target(
            first_response=dt.timedelta(minutes=target.first_response_minutes),
            next_response=dt.timedelta(minutes=target.next_response_minutes),
            resolution=dt.timedelta(minutes=target.resolution_minutes),
            business_hours=target.business_hours,
        )
    return sla.Policy(
        name=row.name,
        calendar=sla.Calendar(
            zone=zone, week=week, holidays=frozenset(h.date for h in row.holidays.all())
        ),
        targets=targets,
        pk=row.pk,
    )


def ticket_plan(*, ticket: Ticket) -> str | None:
    """The plan of the ticket's customer's active contract (the current contract of
    ``customers.selectors.contract_current``, when it is active); None without one."""
    if ticket.customer_id is None:
        return None
    contract = contract_current(customer=ticket.customer_id)
    if contract is None or contract.status != Contract.Status.ACTIVE:
        return None
    return contract.plan


def ticket_timeline(
    *, ticket: Ticket, book: PolicyBook, policy: sla.Policy, now: dt.datetime
) -> sla.Timeline:
    """The ticket's timeline: its states from its history (a version's policy unknown to
    the book, as before service levels, is the next known one), the ticket as it is in
    memory from ``now`` on (following ``policy``), its replies and its customer's
    messages. Two queries; none for a ticket not saved yet."""
    opened = ticket.created_at
    states: list[sla.State] = []
    replies: list[dt.datetime] = []
    messages: list[dt.datetime] = []
    if ticket.pk is not None:
        versions = list(
            ticket.history.order_by("history_date", "history_id").values_list(
                "history_date", "status", "priority", "sla_policy_id"
            )
        )
        known = [book.by_pk.get(policy_id) for *_, policy_id in versions]
        following = policy
        for index in reversed(range(len(known))):  # unknown: the next known one
            if known[index] is None:
                known[index] = following
            following = known[index]
        states = [
            sla.State(at, status, priority, versions_policy)
            for (at, status, priority, _), versions_policy in zip(versions, known, strict=True)
        ]
        for kind, at in ticket.comments.filter(
            kind__in=[TicketComment.Kind.REPLY, TicketComment.Kind.CUSTOMER]
        ).values_list("kind", "created_at"):
            (replies if kind == TicketComment.Kind.REPLY else messages).append(at)
    if ticket.first_responded_at is not None and ticket.first_responded_at not in replies:
        # The first response as recorded (an import's, the demo's) is one even without
        # its reply in the conversation.
        replies.append(ticket.first_responded_at)
    if not states:
        states.append(sla.State(opened, ticket.status, ticket.priority, policy))
    states.append(sla.State(max(now, opened), ticket.status, ticket.priority, policy))
    return sla.Timeline(
        opened_at=opened, states=states, replies=replies, customer_messages=messages
    )


def ticket_sla_apply(
    *, ticket: Ticket, now: dt.datetime | None = None, book: PolicyBook | None = None
) -> list[str]:
    """Set the ticket's policy and clock fields (``SLA_FIELDS``) for the ticket as it is
    in memory, as of ``now``; returns the names of those that changed, for the caller's
    ``save(update_fields=...)``. The caller holds the ticket's row lock (or it is not
    saved yet) and saves it right after: the history entry of that save is dated ``now``,
    the moment the clocks counted the change from."""
    now = now or timezone.now()
    book = book or sla_policy_book()
    policy = book.for_plan(ticket_plan(ticket=ticket))
    timeline = ticket_timeline(ticket=ticket, book=book, policy=policy, now=now)
    clocks = sla.ticket_clocks(timeline, now=now, share=settings.OPSDESK_SLA_WARN_SHARE)
    values: dict[str, object] = {"sla_policy_id": policy.pk, **sla.clocks_fields(clocks)}
    changed = []
    for name, value in values.items():
        if getattr(ticket, name) != value:
            setattr(ticket, name, value)
            changed.append(name.removesuffix("_id"))
    ticket._history_date = now
    return changed


@transaction.atomic
def ticket_sla_refresh(
    *, ticket: Ticket, now: dt.datetime | None = None, book: PolicyBook | None = None
) -> list[str]:
    """Bring the ticket's stored clocks up to date with its history, conversation and
    customer's contract (after a customer's message, a contract change, a policy edit;
    ``manage.py sla_refresh`` for every open ticket; ``book``: the policies, read once
    for many tickets). Idempotent: nothing is saved when nothing changed. The system's
    or the caller's service's to call (no permission of its own: it changes no decision,
    only what follows from them). ``ticket`` is updated in memory too; returns what
    changed."""
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    changed = ticket_sla_apply(ticket=locked, now=now, book=book)
    if changed:
        locked._change_reason = "service levels"
        locked.save(update_fields=[*changed, "updated_at"])
    for name in SLA_FIELDS:
        attname = Ticket._meta.get_field(name).attname
        setattr(ticket, attname, getattr(locked, attname))
    return changed


def tickets_sla_fill(*, tickets: list[Ticket], now: dt.datetime | None = None) -> None:
    """Set the service levels of tickets not saved yet that a bulk writer (the demo, an
    import) inserts together, as ``ticket_sla_apply`` would for each: each one's own
    fields are its timeline (its status since it was opened, its first response). Four
    queries however many tickets: the policies and their customers' active plans."""
    now = now or timezone.now()
    book = sla_policy_book()
    customer_of = {id(t): _customer_id(t) for t in tickets}
    customers = {pk for pk in customer_of.values() if pk is not None}
    plans = dict(
        Contract.objects.filter(customer_id__in=customers, status=Contract.Status.ACTIVE)
        .order_by("customer_id", "-start_date", "-pk")  # the current one: the latest active
        .distinct("customer_id")
        .values_list("customer_id", "plan")
    )
    for ticket in tickets:
        policy = book.for_plan(plans.get(customer_of[id(ticket)]))
        timeline = ticket_timeline(ticket=ticket, book=book, policy=policy, now=now)
        clocks = sla.ticket_clocks(timeline, now=now, share=settings.OPSDESK_SLA_WARN_SHARE)
        ticket.sla_policy_id = policy.pk
        for name, value in sla.clocks_fields(clocks).items():
            setattr(ticket, name, value)


def _customer_id(ticket: Ticket) -> int | None:
    """The ticket's customer's id, also when a bulk writer set the customer before it was
    saved (its id was given to the customer, not yet copied to the ticket)."""
    if ticket.customer_id is None and Ticket.customer.is_cached(ticket):
        return getattr(ticket.customer, "pk", None)
    return ticket.customer_id


# --- reads for the queue and the warnings -------------------------------------------------


def tickets_at_risk(*, now: dt.datetime | None = None) -> QuerySet[Ticket]:
    """Open tickets (not waiting on the customer) a clock of which has reached its
    warning share (``OPSDESK_SLA_WARN_SHARE``) and not yet its deadline."""
    now = now or timezone.now()
    return Ticket.objects.filter(
        status=Ticket.Status.OPEN, sla_warn_at__lte=now, sla_due_at__gt=now
    )


def tickets_breached(*, now: dt.datetime | None = None) -> QuerySet[Ticket]:
    """Open tickets (not waiting on the customer) with a clock past its deadline."""
    now = now or timezone.now()
    return Ticket.objects.filter(status=Ticket.Status.OPEN, sla_due_at__lte=now)


def clock_warned_q(clock: str, *, now: dt.datetime) -> Q:
    """Tickets whose ``clock`` (``sla.FIRST_RESPONSE``, ``NEXT_RESPONSE``, ``RESOLUTION``)
    runs and has reached its warning share by ``now``: the per-clock filter a warning
    sends once for."""
    return Q(status=Ticket.Status.OPEN, **{f"{clock}_warn_at__lte": now})


def clock_breached_q(clock: str, *, now: dt.datetime) -> Q:
    """Tickets whose ``clock`` runs and is past its deadline at ``now``."""
    running = {f"{clock}_warn_at__isnull": False}  # a stopped clock keeps no warning
    return Q(status=Ticket.Status.OPEN, **running, **{f"{clock}_due_at__lte": now})
