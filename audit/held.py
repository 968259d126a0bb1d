"""One history entry for several changes to one record.

A service that changes a record through several other services (each saving it, a
many-to-many change saving its own row) leaves one history row per step; some
operations are one act for the person reading the record's history (a support macro:
status, priority, tags, assignee and a reply, applied together). Inside
``history_as_one(obj, reason=...)`` the changes rows of ``obj`` are held back, and one
row is written when the block ends: ``obj`` as it is then (its many-to-many members
included), with ``reason``, diffing against the row before the block. Rows of other
records are written as usual. When the block raises, nothing is written (its
transaction rolls back the changes too).

The held rows are only ``~`` (changed) rows: creating or deleting ``obj`` inside the
block is recorded as usual. ``audit.models.audited_history`` gives every model the
history that asks ``held_back`` before writing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.db import transaction

# The records held by the blocks running now: (model label, pk).
_holding: ContextVar[frozenset[tuple[str, Any]]] = ContextVar(
    "opsdesk_history_held", default=frozenset()
)
# Each audited model's HistoricalRecords (registered by audit.models), to write the row.
_records: dict[type, Any] = {}


def register(model: type, records: Any) -> None:
    _records[model] = records


def _key(obj: Any) -> tuple[str, Any]:
    return (obj._meta.label_lower, obj.pk)


def held_back(instance: Any, history_type: str) -> bool:
    """Whether the history row ``instance`` is about to get is held by a block."""
    return history_type == "~" and _key(instance) in _holding.get()


@contextlib.contextmanager
def history_as_one(obj: Any, *, reason: str) -> Iterator[None]:
    """Hold ``obj``'s changed rows back while the block runs, then write one row of it as
    it is then, with ``reason``: always one, also when nothing in the block saved it (the
    entry that says the act happened). Must run inside a transaction, which the row
    commits or rolls back with the changes."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("history_as_one writes inside a transaction: open one")
    model = type(obj)
    if model not in _records:
        raise RuntimeError(f"{model._meta.label} has no audited history")
    token = _holding.set(_holding.get() | {_key(obj)})
    try:
        yield
    finally:
        _holding.reset(token)
    fresh = model._base_manager.get(pk=obj.pk)
    fresh._change_reason = reason
    _records[model].create_historical_record(fresh, "~")
