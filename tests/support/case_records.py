"""Cases made directly for the case lifecycle tests, and what those tests read back: the
stored state a refusal must leave, and the history rows written after a case opened."""

from __future__ import annotations

import datetime as dt

from audit.context import acting_as
from support.models import Case
from tests import builders

# When the tests act, and when their cases were opened.
NOW = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
OPENED = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


def make_case(summary: str, *, state: str = Case.State.OPEN, owner=None, **fields) -> Case:
    """A failed-fulfilment case opened at OPENED in ``state``, acknowledged or closed (with
    the note "done before") at OPENED too when the state says so."""
    if state in Case.CLOSED_STATES:
        fields = {"closed_at": OPENED, "closing_note": "done before", **fields}
    if state == Case.State.ACKNOWLEDGED:
        fields = {"acknowledged_at": OPENED, **fields}
    with acting_as("test:fixture"):
        return builders.case(summary=summary, state=state, owner=owner, opened_at=OPENED, **fields)


def everything() -> tuple:
    """Every case as stored, and how many history rows there are: what a refusal keeps."""
    return (
        list(
            Case.objects.order_by("pk").values_list(
                "pk", "state", "owner_id", "acknowledged_at", "closed_at", "closing_note"
            )
        ),
        Case.history.count(),
    )


def changes(case: Case) -> list[tuple]:
    """The history rows written after the case was opened, oldest first."""
    return [
        (
            row.history_type,
            row.history_actor,
            row.history_user_id,
            row.history_change_reason,
            row.history_for,
            row.state,
            row.owner_id,
        )
        for row in case.history.order_by("history_id")[1:]
    ]
