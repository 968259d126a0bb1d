"""Who is acting: the one place every history row takes its actor from.

A web request acts as the signed-in user; a Celery task as ``task:<name>``; a management
command as ``command:<name>``; webhook processing as ``webhook:<webhook-id>``. Writes made
outside any of these are recorded as ``unattributed`` so the gap is visible, never hidden.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

UNATTRIBUTED = "unattributed"


@dataclass(frozen=True)
class Actor:
    label: str
    user: Any = None  # the auth user for people; None for system actors
    reason: str = ""
    # What the change is done for (a ticket, a case): ``<app_label>.<model>:<pk>``.
    done_for: str = ""


_current: ContextVar[Actor | None] = ContextVar("opsdesk_actor", default=None)
_recorded_at: ContextVar[Any] = ContextVar("opsdesk_recorded_at", default=None)


def current_actor() -> Actor:
    return _current.get() or Actor(label=UNATTRIBUTED)


@contextlib.contextmanager
def acting_as(label: str, *, user: Any = None, reason: str = "") -> Iterator[Actor]:
    """Attribute every write inside the block to ``label`` (and ``user`` for people)."""
    actor = Actor(label=label, user=user, reason=reason, done_for=current_actor().done_for)
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def acting_as_user(user: Any, *, reason: str = "") -> contextlib.AbstractContextManager[Actor]:
    return acting_as(user.get_username(), user=user, reason=reason)


def system_label(kind: str, name: str) -> str:
    """``system_label("task", "opsdesk.health.tasks.digests_send")`` -> ``task:send_digests``."""
    return f"{kind}:{name.rsplit('.', 1)[-1]}"


def record_label(obj: Any) -> str:
    """``support.case:12``: how a history row names the record a change was done for."""
    return f"{obj._meta.label_lower}:{obj.pk}"


@contextlib.contextmanager
def acting_for(obj: Any) -> Iterator[Actor]:
    """Link every change inside the block to ``obj`` (the ticket or case it is done for),
    keeping the current actor: the history rows' ``history_for`` names it."""
    actor = dataclasses.replace(current_actor(), done_for=record_label(obj))
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def require_permission(by: Any, permission: str, error: type[Exception]) -> None:
    """The check a service makes of who asks it: ``by`` is the person, who must be active
    and hold ``permission``; None is the system (webhooks, tasks, commands), which is
    refused while a person's request is being served, so a view that forgot to name its
    user is refused rather than let through. Raises ``error`` with the reason."""
    if by is None:
        if current_actor().user is not None:
            raise error("A person's request must name who acts: only the system acts as nobody.")
        return
    if not by.is_active or not by.has_perm(permission):
        raise error("You may not do this: it needs the permission " + permission)


def recorded_moment() -> Any:
    """The moment ``recorded_at`` names for the history rows written now, or None (now)."""
    return _recorded_at.get()


@contextlib.contextmanager
def recorded_at(moment: Any) -> Iterator[None]:
    """Date every history row written inside the block at ``moment`` instead of now.

    Only for replaying the past (the demo data, ``opsdesk.demo``): a service called inside
    records what it did as having happened then. The application's own writes never
    use it: their history is dated by the clock."""
    token = _recorded_at.set(moment)
    try:
        yield
    finally:
        _recorded_at.reset(token)
