"""What support tells staff (kit.notify): a ticket assigned to them, a customer's answer on
their ticket, a ticket about to miss (or missing) its target, a case given to them.

Each function builds the notice and hands it over with ``notice_after_commit``: it is told
only if the caller's transaction commits, and never raises into the caller. A ticket
nobody is assigned to is the support team's (every member of ``kit.roles.SUPPORT``).
opsdesk.notifications delivers it as each person chose.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse
from django.utils import timezone

from kit import notify, roles
from kit.dates import moment_text
from kit.text import count_of, one_line
from support.models import Case, Ticket

# The start of a customer's message a notice carries (the ticket has all of it).
EXCERPT_CHARS = 500
# The cases one notice lists; more are counted.
CASES_LISTED = 20


def _name(user: AbstractBaseUser) -> str:
    return user.get_full_name() or user.get_username()


def _ticket_url(ticket: Ticket) -> str:
    return reverse("admin:support_ticket_change", args=[ticket.pk])


def _ticket_people(ticket: Ticket) -> tuple[int, ...] | str:
    """Who hears about a ticket: its assignee, else the support team."""
    return (ticket.assignee_id,) if ticket.assignee_id else roles.SUPPORT


def _excerpt(text: str) -> str:
    text = (text or "").strip()
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rstrip() + " …"


def ticket_assigned_notify(
    *, ticket: Ticket, assignee: AbstractBaseUser, by: AbstractBaseUser | None
) -> None:
    """Tell ``assignee`` the ticket is theirs now, unless they took it themselves."""
    if by is not None and by.pk == assignee.pk:
        return
    stamp = (ticket.updated_at or timezone.now()).isoformat()
    who = f" by {_name(by)}" if by is not None else ""
    notify.notice_after_commit(
        notify.StaffNotice(
            kind=notify.TICKET_ASSIGNED,
            recipients=(assignee.pk,),
            subject=f"Ticket #{ticket.pk} assigned to {_name(assignee)}: "
            + one_line(ticket.subject),
            text=f"Assigned{who}. Priority {ticket.get_priority_display().lower()}, "
            f"status {ticket.get_status_display().lower()}.",
            url=_ticket_url(ticket),
            dedupe_key=f"{notify.TICKET_ASSIGNED}:{ticket.pk}:{assignee.pk}:{stamp}",
        )
    )


def customer_replied_notify(*, ticket: Ticket, message_id: int, sender: str, text: str) -> None:
    """Tell the ticket's assignee (unassigned: the support team) that the customer wrote;
    ``message_id`` is the stored inbound email's (one notice per message)."""
    notify.notice_after_commit(
        notify.StaffNotice(
            kind=notify.CUSTOMER_REPLIED,
            recipients=_ticket_people(ticket),
            subject=f"{one_line(sender)} replied on ticket #{ticket.pk}: "
            + one_line(ticket.subject),
            text=_excerpt(text),
            url=_ticket_url(ticket),
            dedupe_key=f"{notify.CUSTOMER_REPLIED}:{ticket.pk}:{message_id}",
        )
    )


def ticket_sla_notify(
    *,
    ticket: Ticket,
    clock: str,
    due_at: dt.datetime,
    breached: bool,
    leads: Sequence[int] | str = (),
    at_once: bool = False,
) -> None:
    """Warn that ``ticket``'s ``clock`` (``first_response``, ``next_response``,
    ``resolution``) is due at ``due_at`` (``breached=False``), or say it was missed
    (``breached=True``). The assignee hears, else the support team; ``leads`` (user ids,
    or a group's name) hear too, e.g. the team lead at a breach.

    Once per clock and deadline: a sweep that runs twice, or two schedulers, tell nobody
    twice (the key is the kind, ticket, clock and deadline); a deadline that moved (a
    priority raised) is a new one. ``at_once``: stored inside the caller's transaction
    (``kit.notify.notice_now``, for the sweep of ``support.sla_alerts``), else after it
    commits.
    """
    kind = notify.SLA_BREACH if breached else notify.SLA_WARNING
    label = clock.replace("_", " ")
    local = timezone.localtime(due_at)
    when = f"{moment_text(local)} {local.tzname()}"
    if breached:
        subject = f"Ticket #{ticket.pk} missed its {label} target ({when})"
    else:
        subject = f"Ticket #{ticket.pk}: {label} due {when}"
    assigned = (
        "unassigned" if ticket.assignee_id is None else f"assigned to {_name(ticket.assignee)}"
    )
    key = f"{kind}:{ticket.pk}:{clock}:{due_at.isoformat()}"
    tell = notify.notice_now if at_once else notify.notice_after_commit
    for recipients in (_ticket_people(ticket), leads):
        if not recipients:
            continue
        tell(
            notify.StaffNotice(
                kind=kind,
                recipients=recipients if isinstance(recipients, str) else tuple(recipients),
                subject=f"{subject}: {one_line(ticket.subject)}",
                text=f"Priority {ticket.get_priority_display().lower()}, {assigned}.",
                url=_ticket_url(ticket),
                dedupe_key=key,
            )
        )


def cases_assigned_notify(
    *, cases: Sequence[Case], owner: AbstractBaseUser, by: AbstractBaseUser | None
) -> None:
    """Tell ``owner`` these cases are theirs now (one notice for the lot), unless they
    took them themselves."""
    if not cases or (by is not None and by.pk == owner.pk):
        return
    who = f" by {_name(by)}" if by is not None else ""
    lines = [f"#{case.pk} {case.get_kind_display()}: {one_line(case.summary)}" for case in cases]
    if len(cases) > CASES_LISTED:
        lines = [*lines[:CASES_LISTED], f"and {len(cases) - CASES_LISTED} more"]
    if len(cases) == 1:
        subject = f"Case #{cases[0].pk} assigned to {_name(owner)}: {one_line(cases[0].summary)}"
        url = reverse("admin:support_case_change", args=[cases[0].pk])
    else:
        subject = f"{count_of(len(cases), 'case')} assigned to {_name(owner)}"
        url = reverse("admin:support_case_inbox") + "?owner=me"
    event = ",".join(str(case.pk) for case in cases) + f"@{timezone.now().isoformat()}"
    digest = hashlib.sha256(event.encode()).hexdigest()[:24]
    notify.notice_after_commit(
        notify.StaffNotice(
            kind=notify.CASE_ASSIGNED,
            recipients=(owner.pk,),
            subject=subject,
            text=f"Assigned{who}:\n" + "\n".join(lines),
            url=url,
            dedupe_key=f"{notify.CASE_ASSIGNED}:{owner.pk}:{digest}",
        )
    )
