"""What staff are told about, said by any layer and delivered by opsdesk.

An app that wants a person (or a team) to hear about something builds a ``StaffNotice``
and calls ``notice_after_commit``: once its transaction commits, the ``staff_notice``
signal carries the notice to ``opsdesk.notifications``, which stores it once per
recipient and emails it (or rolls it up, or not, as each person chose) and posts it to
the team's chat webhook. The apps below opsdesk cannot import it (the layers of
``[tool.importlinter]``), so the vocabulary and the signal live here.

A notice is told at most once per recipient: the ``dedupe_key`` names the event
(``sla_warning:<ticket>:<clock>:<due_at>``), and the same key sent again, by a retry or a
second scheduler, reaches nobody twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

TICKET_ASSIGNED = "ticket_assigned"
CUSTOMER_REPLIED = "customer_replied"
SLA_WARNING = "sla_warning"
SLA_BREACH = "sla_breach"
CASE_ASSIGNED = "case_assigned"

# (kind, what a person chooses about it on their preferences page), in the page's order.
KINDS: tuple[tuple[str, str], ...] = (
    (TICKET_ASSIGNED, "A ticket is assigned to me"),
    (CUSTOMER_REPLIED, "A customer replies on my ticket"),
    (SLA_WARNING, "A ticket of mine is about to miss its target"),
    (SLA_BREACH, "A ticket of mine missed its target"),
    (CASE_ASSIGNED, "A case is assigned to me"),
)
KIND_NAMES = frozenset(kind for kind, _ in KINDS)

# Sent once the transaction that made the notice commits, with ``notice=StaffNotice``.
staff_notice = Signal()


@dataclass(frozen=True)
class StaffNotice:
    """One thing to tell staff.

    - ``kind``: one of ``KINDS``.
    - ``recipients``: the ids of the users told, or the name of a group (a team: every
      active member is told) when nobody in particular is, e.g. an unassigned ticket.
    - ``subject``: one line, said of the person, not to them ("Ticket #12 assigned to
      Sam: Export stuck"), as the team's chat shows it too.
    - ``text``: more, plain text (may be empty).
    - ``url``: the path of the record in opsdesk (``/admin/support/ticket/12/change/``).
    - ``dedupe_key``: names the event; told at most once per recipient.
    """

    kind: str
    recipients: tuple[int, ...] | str
    subject: str
    text: str
    url: str
    dedupe_key: str


def notice_after_commit(notice: StaffNotice) -> None:
    """Tell ``notice`` once the current transaction commits (at once outside one); a
    rolled-back transaction tells nothing. Never raises into the caller: a notice that
    cannot be told is logged, and the work that caused it stands."""
    try:
        if notice.kind not in KIND_NAMES:
            raise ValueError(f"unknown kind {notice.kind!r}")
        if not notice.dedupe_key:
            raise ValueError("a notice needs a dedupe_key")
        transaction.on_commit(lambda: _notice_send(notice), robust=True)
    except Exception:
        logger.exception("staff notice not sent: %r", notice)


def notice_now(notice: StaffNotice) -> None:
    """Tell ``notice`` now, inside the caller's transaction: its records are stored with
    the caller's (a sweep's claim and its notices commit, or roll back, together). Raises
    what a receiver raised, so the caller's transaction can roll back and try again."""
    if notice.kind not in KIND_NAMES:
        raise ValueError(f"unknown kind {notice.kind!r}")
    if not notice.dedupe_key:
        raise ValueError("a notice needs a dedupe_key")
    staff_notice.send(sender=StaffNotice, notice=notice)


def _notice_send(notice: StaffNotice) -> None:
    try:
        results = staff_notice.send_robust(sender=StaffNotice, notice=notice)
    except Exception:  # pragma: no cover - send_robust catches the receivers' errors
        logger.exception("staff notice not sent: %r", notice)
        return
    for receiver, result in results:
        if isinstance(result, Exception):
            logger.error(
                "staff notice %s failed in %r", notice.dedupe_key, receiver, exc_info=result
            )
