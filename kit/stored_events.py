"""Work stored before it is done, done by the worker exactly once, with retries: webhook
events (``support.webhooks``) and inbound email (``support.inbound``).

A stored row has ``status`` (its model's ``Status`` with ``PENDING``, ``PROCESSED`` and
``FAILED``), ``attempts``, ``error``, ``next_attempt_at`` and ``processed_at``. A pending
row whose ``next_attempt_at`` has come is due; ``stored_process`` claims it, runs its
effect and records the outcome in one transaction; a failed effect is tried again with
backoff and, after the last attempt, parked as failed until a person retries it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.db import models, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# The fields every stored row records its processing in.
OUTCOME_FIELDS = ("status", "attempts", "error", "next_attempt_at", "processed_at")


def stored_backoff(attempts: int) -> dt.timedelta:
    """30 s, 2 min, 8 min, 32 min, ... capped at 6 h."""
    return dt.timedelta(seconds=min(30 * 4 ** (attempts - 1), 6 * 3600))


def stored_process(
    *,
    model: type[models.Model],
    pk: int,
    apply: Callable[[Any], None],
    acting: Callable[[Any], contextlib.AbstractContextManager],
    max_attempts: int,
    effect_fields: Sequence[str] | None = None,
) -> str | None:
    """Run ``apply(row)`` for one stored row at most once; safe to call any number of
    times, from any number of workers.

    The row is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and only while it is
    pending and due, so two workers (or a task and the sweep) never both run it. The
    effect's writes and the outcome commit together; a failing effect's writes are rolled
    back (its savepoint) and so are the fields it set on the row, then the row stays
    pending with its error and a backed-off ``next_attempt_at``, or is parked as failed
    at its ``max_attempts``-th attempt. Everything runs inside ``acting(row)`` (who the
    history names). ``effect_fields``, when given, are the row's fields ``apply`` may set:
    only they and the outcome are written back (so a large column is not rewritten);
    else the whole row is. Returns the new status, or None when there was nothing to do.
    """
    now = timezone.now()
    Status = model.Status
    with transaction.atomic():
        row = (
            model.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, status=Status.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if row is None:
            return None
        with acting(row):
            before = {f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields}
            try:
                with transaction.atomic():
                    apply(row)
            except Exception as exc:  # any failure is recorded, never lost
                logger.exception("%s %s failed", model._meta.label, pk)
                row.__dict__.update(before)
                # Related rows it assigned may be gone with its savepoint; a cached one
                # would be set back on the row by save().
                row._state.fields_cache = {}
                row.attempts += 1
                row.error = f"{type(exc).__name__}: {exc}"
                if row.attempts >= max_attempts:
                    row.status = Status.FAILED
                    row.next_attempt_at = None
                else:
                    row.next_attempt_at = now + stored_backoff(row.attempts)
            else:
                row.attempts += 1
                row.status = Status.PROCESSED
                row.processed_at = timezone.now()
                row.error = ""
                row.next_attempt_at = None
            if effect_fields is None:
                row.save()
            else:
                row.save(update_fields=[*OUTCOME_FIELDS, *effect_fields])
    return row.status


def stored_due(*, model: type[models.Model], order: Sequence[str], limit: int) -> list[int]:
    """Ids of pending rows whose attempt is due, in ``order`` (the sweep)."""
    return list(
        model.objects.filter(status=model.Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by(*order)
        .values_list("pk", flat=True)[:limit]
    )


def stored_retry(*, model: type[models.Model], pk: int, reason: str, publish) -> bool:
    """Put a failed row back in the queue (a person's "retry"): ``publish(pk)`` hands it to
    the workers once this commits, the sweep finds it if the broker is down. False (and
    nothing changed) when it had not failed."""
    with transaction.atomic():
        large = [f.name for f in model._meta.concrete_fields if isinstance(f, models.BinaryField)]
        row = model.objects.select_for_update().defer(*large).filter(pk=pk).first()
        if row is None or row.status != model.Status.FAILED:
            return False
        row.status = model.Status.PENDING
        row.next_attempt_at = timezone.now()
        row._change_reason = reason
        row.save(update_fields=["status", "next_attempt_at"])
        publish(pk)
    return True
