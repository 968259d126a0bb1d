"""Problems (docs/product.md#problems): one error seen at several customers, worked once.

An ``incident.error_spike`` fingerprint recorded for a second tenant while another
tenant's ticket for it is open makes a problem of the open tickets of that fingerprint
(``problem_spike_link``, the last step of the spike's handler); a spike that opens a ticket
while the problem is open links it too. Support links and unlinks tickets by hand
(``problem_link``, ``problem_unlink``), sends one update to the requester of every linked
open ticket (``problem_update_send``: one reply per ticket through the ticket's reply
service, so threading and delivery are a reply's) and solves the problem with its open
tickets (``problem_solve``, through ``ticket_set_status``). Each change of a ticket says
in its history which problem it was done for and why.

Who may: ``support.change_problem`` (support and ops leads), checked in each service; a
refusal raises ``ProblemPermissionError`` (a 403) or ``ProblemActionError`` (a message)
and changes nothing. ``by=None`` is the system (webhook processing).

Locks, in this order everywhere: the fingerprint's advisory lock (``fingerprint_lock``,
taken by every spike of the fingerprint and every service here), the problem's row, the
tickets' rows in id order. Two tenants' spikes at once are serialized by the first, so
the second sees the first's ticket and one problem is made, never two (the partial
unique constraint is the backstop).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import OuterRef
from django.utils import timezone

from audit.context import acting_as, acting_for, current_actor, require_permission
from audit.previews import PreviewState, preview_changes, stale_message
from customers.models import Contract, Customer
from customers.selectors import current_contract_subquery, renewal_is_soon
from kit.text import one_line
from support import tickets as ticket_services
from support.models import Problem, Ticket, TicketComment

VIEW = "support.view_problem"
CHANGE = "support.change_problem"


class ProblemActionError(Exception):
    """A request staff can correct (the message says how); nothing was changed."""


class ProblemPermissionError(PermissionDenied):
    """``by`` may not work problems; nothing was changed (a 403 in a view)."""


def _may(by: AbstractBaseUser | None) -> None:
    require_permission(by, CHANGE, ProblemPermissionError)


def fingerprint_lock(fingerprint: str) -> None:
    """Serialize, until the transaction ends, everything done about one error fingerprint:
    its spikes (at any tenant) and the work on its problem. Taken before any row lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"error-spike:{fingerprint}"]
        )


@contextlib.contextmanager
def _for_problem(problem: Problem, reason: str) -> Iterator[None]:
    """History rows written inside name ``problem`` (``history_for``) and ``reason``, the
    actor staying who acts."""
    actor = current_actor()
    with acting_as(actor.label, user=actor.user, reason=reason), acting_for(problem):
        yield


def _link(ticket: Ticket, problem: Problem, reason: str) -> None:
    with _for_problem(problem, reason):
        ticket.problem = problem
        ticket.save(update_fields=["problem", "updated_at"])


def _locked_problem(problem: Problem) -> Problem:
    return Problem.objects.select_for_update().get(pk=problem.pk)


def _locked_ticket(ticket: Ticket) -> Ticket | None:
    return Ticket.objects.select_for_update(of=("self",)).filter(pk=ticket.pk).first()


def _title(fingerprint: str) -> str:
    return one_line(f"Error spike at several customers: {fingerprint}")[:200]


# --- From error spikes ------------------------------------------------------------------


def problem_spike_link(*, ticket: Ticket, opened: bool) -> Problem | None:
    """The problem step of an ``incident.error_spike`` (support.ticket_events), run in the
    spike's transaction with ``fingerprint_lock`` held, after ``ticket`` (open, of the
    spike's tenant and fingerprint) was saved; ``opened``: the spike opened it.

    With an open problem for the fingerprint, a ticket the spike opened joins it (one a
    person took off the problem stays off). Without one, when the open tickets of the
    fingerprint that are part of no open problem come from two tenants or more, a problem
    is opened and all of them join it. Returns the open problem, or None."""
    fingerprint = ticket.fingerprint
    problem = (
        Problem.objects.select_for_update()
        .filter(fingerprint=fingerprint, status=Problem.Status.OPEN)
        .first()
    )
    if problem is not None:
        if opened and ticket.problem_id != problem.pk:
            _link(ticket, problem, f"part of problem #{problem.pk}: its error at another tenant")
        return problem
    candidates = list(
        Ticket.objects.select_for_update(of=("self",))
        .filter(status__in=Ticket.OPEN_STATES, fingerprint=fingerprint)
        .order_by("pk")
    )
    linked = {t.problem_id for t in candidates if t.problem_id is not None}
    taken = set(
        Problem.objects.filter(pk__in=linked, status=Problem.Status.OPEN).values_list(
            "pk", flat=True
        )
    )
    free = [t for t in candidates if t.problem_id not in taken]
    tenants = {t.tenant_id for t in free}
    if len(tenants) < 2:
        return None
    actor = current_actor()
    with acting_as(actor.label, user=actor.user, reason=f"its error at {len(tenants)} tenants"):
        problem = Problem.objects.create(
            fingerprint=fingerprint, title=_title(fingerprint), opened_at=timezone.now()
        )
    for each in free:
        _link(each, problem, f"part of problem #{problem.pk}: the same error at several tenants")
        if each.pk == ticket.pk:
            ticket.problem = problem
    return problem


# --- By hand ------------------------------------------------------------------------------


@transaction.atomic
def problem_link(*, problem: Problem, ticket: Ticket, by: AbstractBaseUser | None) -> str:
    """Make an open ticket part of an open problem (a customer who wrote in about the same
    error, a spike the fingerprint did not catch). A ticket part of another open problem
    is taken off there first, by hand."""
    _may(by)
    fingerprint_lock(problem.fingerprint)
    problem = _locked_problem(problem)
    if not problem.is_open:
        raise ProblemActionError(f"Problem #{problem.pk} is solved: tickets no longer join it.")
    locked = _locked_ticket(ticket)
    if locked is None:
        raise ProblemActionError(f"There is no ticket #{ticket.pk}.")
    if locked.problem_id == problem.pk:
        return f"Ticket #{locked.pk} was already part of problem #{problem.pk}."
    if locked.status not in Ticket.OPEN_STATES:
        raise ProblemActionError(
            f"Ticket #{locked.pk} is {locked.get_status_display().lower()}: "
            "only an open ticket joins a problem."
        )
    other = Problem.objects.filter(pk=locked.problem_id, status=Problem.Status.OPEN).first()
    if other is not None:
        raise ProblemActionError(
            f"Ticket #{locked.pk} is part of problem #{other.pk}; take it off there first."
        )
    _link(locked, problem, f"linked to problem #{problem.pk} by hand")
    return f"Ticket #{locked.pk} is now part of problem #{problem.pk}."


@transaction.atomic
def problem_unlink(*, problem: Problem, ticket: Ticket, by: AbstractBaseUser | None) -> str:
    """Take a ticket off an open problem: its updates and solve no longer reach it, and
    its later spikes do not put it back (only a ticket a spike opens joins by itself)."""
    _may(by)
    fingerprint_lock(problem.fingerprint)
    problem = _locked_problem(problem)
    if not problem.is_open:
        raise ProblemActionError(f"Problem #{problem.pk} is solved: its tickets stay its record.")
    locked = _locked_ticket(ticket)
    if locked is None or locked.problem_id != problem.pk:
        return f"Ticket #{ticket.pk} was not part of problem #{problem.pk}."
    with _for_problem(problem, f"taken off problem #{problem.pk} by hand"):
        locked.problem = None
        locked.save(update_fields=["problem", "updated_at"])
    return f"Ticket #{locked.pk} is no longer part of problem #{problem.pk}."


# --- Send an update -----------------------------------------------------------------------


def problem_open_tickets(*, problem: Problem, lock: bool = False) -> list[Ticket]:
    """The problem's open tickets (open or waiting on the customer) in id order, with their
    customers; ``lock``: inside a service's transaction, their rows are locked (without
    joins, so a row changed meanwhile is re-read as it is now)."""
    tickets = Ticket.objects.filter(problem=problem, status__in=Ticket.OPEN_STATES).order_by("pk")
    if lock:
        return list(tickets.select_for_update())
    return list(tickets.select_related("customer"))


@dataclass(frozen=True)
class UpdatePreview:
    """Who an update of the problem reaches: the requester of each open ticket, and the
    open tickets without a requester it cannot reach."""

    problem: Problem
    recipients: list[Ticket]
    unreachable: list[Ticket]


def problem_update_preview(*, problem: Problem, lock: bool = False) -> UpdatePreview:
    """What ``problem_update_send`` would do right now; changes nothing. Two queries."""
    open_tickets = problem_open_tickets(problem=problem, lock=lock)
    return UpdatePreview(
        problem=problem,
        recipients=[t for t in open_tickets if t.requester_email],
        unreachable=[t for t in open_tickets if not t.requester_email],
    )


def update_preview_state(preview: UpdatePreview) -> PreviewState:
    """What the update page shows, for its form's token (audit.previews)."""
    problem = preview.problem
    return (
        PreviewState()
        .add("problem", f"problem #{problem.pk}", status=problem.status)
        .group(
            "recipients",
            "who gets the update",
            [(t.pk, t.status, t.requester_email) for t in preview.recipients],
        )
        .group(
            "unreachable",
            "the open tickets without a requester",
            [(t.pk, t.status) for t in preview.unreachable],
        )
    )


@transaction.atomic
def problem_update_send(
    *, problem: Problem, body: str, by: AbstractBaseUser, previewed: str | None = None
) -> UpdatePreview:
    """Send one text to the requester of every open ticket of the problem: a reply on each
    ticket (``ticket_comment``: its clocks, its thread, emailed by the worker after
    commit), its history naming the problem. All or nothing. ``previewed``: the token of
    the page that was confirmed; who gets it changed since refuses it."""
    _may(by)
    body = (body or "").strip()
    if not body:
        raise ProblemActionError("Write the update first: it is empty.")
    fingerprint_lock(problem.fingerprint)
    problem = _locked_problem(problem)
    if not problem.is_open:
        raise ProblemActionError(f"Problem #{problem.pk} is solved; nothing was sent.")
    preview = problem_update_preview(problem=problem, lock=True)
    if previewed is not None:
        changes = preview_changes(previewed, update_preview_state(preview))
        if changes:
            raise ProblemActionError("Nothing was sent. " + stale_message(changes))
    if not preview.recipients:
        raise ProblemActionError(
            "No open ticket of this problem has a requester to write to; nothing was sent."
        )
    with _for_problem(problem, f"update of problem #{problem.pk}"):
        for ticket in preview.recipients:
            try:
                ticket_services.ticket_comment(
                    ticket=ticket,
                    author=by,
                    kind=TicketComment.Kind.REPLY,
                    body=body,
                    permission=CHANGE,
                )
            except ticket_services.TicketActionError as error:
                raise ProblemActionError(
                    f"Nothing was sent. Ticket #{ticket.pk}: {error}"
                ) from None
    return preview


# --- Solve --------------------------------------------------------------------------------


def solve_preview_state(problem: Problem, open_tickets: list[Ticket]) -> PreviewState:
    """What the solve page shows, for its form's token (audit.previews)."""
    return (
        PreviewState()
        .add("problem", f"problem #{problem.pk}", status=problem.status)
        .group("tickets", "the open tickets", [(t.pk, t.status) for t in open_tickets])
    )


@transaction.atomic
def problem_solve(*, problem: Problem, by: AbstractBaseUser, previewed: str | None = None) -> str:
    """Solve the problem and every open ticket of it (``ticket_set_status``: their clocks
    stop), each ticket's history naming the problem. All or nothing; solving a solved
    problem is refused. ``previewed``: the token of the page that was confirmed."""
    _may(by)
    fingerprint_lock(problem.fingerprint)
    problem = _locked_problem(problem)
    if not problem.is_open:
        raise ProblemActionError(f"Problem #{problem.pk} is solved already.")
    open_tickets = problem_open_tickets(problem=problem, lock=True)
    if previewed is not None:
        changes = preview_changes(previewed, solve_preview_state(problem, open_tickets))
        if changes:
            raise ProblemActionError("Nothing was solved. " + stale_message(changes))
    with _for_problem(problem, f"solved with problem #{problem.pk}"):
        for ticket in open_tickets:
            try:
                ticket_services.ticket_set_status(
                    ticket=ticket, status=Ticket.Status.SOLVED, by=by, permission=CHANGE
                )
            except ticket_services.TicketActionError as error:
                raise ProblemActionError(
                    f"Nothing was solved. Ticket #{ticket.pk}: {error}"
                ) from None
        problem.status = Problem.Status.SOLVED
        problem.solved_at = timezone.now()
        problem.save(update_fields=["status", "solved_at"])
    count = len(open_tickets)
    return (
        f"Problem #{problem.pk} is solved, and with it "
        f"{count} open ticket{'' if count == 1 else 's'}."
    )


# --- The problem page ---------------------------------------------------------------------


@dataclass(frozen=True)
class AffectedCustomer:
    """One customer (or tenant opsdesk does not know) with tickets in the problem, and its
    current contract (customers.selectors: the active one, else the latest)."""

    customer: Customer | None
    tenant_id: str
    contract: Contract | None
    tickets: list[Ticket]
    renewal_soon: bool

    @property
    def value(self) -> Decimal | None:
        return self.contract.monthly_fee if self.contract else None

    @property
    def open_tickets(self) -> int:
        return sum(t.status in Ticket.OPEN_STATES for t in self.tickets)


def problem_tickets(*, problem: Problem) -> list[Ticket]:
    """Every ticket of the problem, open ones first, then by when they were opened, each
    with its customer, assignee and the id of its customer's current contract
    (``current_contract_id``); one query."""
    rows = (
        Ticket.objects.filter(problem=problem)
        .select_related("customer", "assignee")
        .annotate(current_contract_id=current_contract_subquery(OuterRef("customer"), "pk"))
        .order_by("created_at", "pk")
    )
    return sorted(rows, key=lambda t: t.status not in Ticket.OPEN_STATES)


def problem_customers(
    *, tickets: list[Ticket], today: dt.date | None = None
) -> list[AffectedCustomer]:
    """The customers of ``tickets`` (``problem_tickets``), each with its current contract's
    plan, value (monthly fee) and renewal (end date), the highest value first (amounts
    compared as they are, whatever their currency), then by name; tenants opsdesk does not
    know last. One query (the contracts) whatever the number of customers."""
    today = today or timezone.localdate()
    contracts = Contract.objects.in_bulk(
        {t.current_contract_id for t in tickets if t.current_contract_id is not None}
    )
    grouped: dict[tuple, list[Ticket]] = {}
    for ticket in tickets:
        key = (
            ("customer", ticket.customer_id) if ticket.customer_id else ("tenant", ticket.tenant_id)
        )
        grouped.setdefault(key, []).append(ticket)
    rows = []
    for group in grouped.values():
        first = group[0]
        contract = contracts.get(first.current_contract_id)
        days_left = (contract.end_date - today).days if contract and contract.end_date else None
        rows.append(
            AffectedCustomer(
                customer=first.customer,
                tenant_id=first.customer.external_id if first.customer else first.tenant_id,
                contract=contract,
                tickets=group,
                renewal_soon=bool(
                    contract
                    and contract.status == Contract.Status.ACTIVE
                    and renewal_is_soon(days_left)
                ),
            )
        )
    return sorted(
        rows,
        key=lambda row: (
            row.customer is None,
            row.value is None,
            -(row.value or 0),
            (row.customer.name.lower() if row.customer else row.tenant_id),
        ),
    )
