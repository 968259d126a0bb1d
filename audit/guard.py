"""Make the write paths that skip history fail loudly.

``QuerySet.update()``, ``bulk_create()`` and ``bulk_update()`` write rows without history
(django-simple-history #174, #591). On audited models they raise ``UnauditedWriteError``
unless called from ``audit.bulk``, which writes the history rows in the same transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from django.db import models

_bulk_allowed: ContextVar[bool] = ContextVar("opsdesk_bulk_allowed", default=False)


class UnauditedWriteError(RuntimeError):
    pass


@contextlib.contextmanager
def history_recorded_by_caller() -> Iterator[None]:
    """Only for ``audit.bulk``: the caller writes the history rows itself."""
    token = _bulk_allowed.set(True)
    try:
        yield
    finally:
        _bulk_allowed.reset(token)


def _refuse(model: type[models.Model], operation: str, instead: str) -> None:
    if not _bulk_allowed.get():
        raise UnauditedWriteError(
            f"{model._meta.label}.objects.{operation}() would skip history; use {instead}"
        )


class AuditedQuerySet(models.QuerySet):
    def update(self, **kwargs):
        _refuse(self.model, "update", "audit.bulk.update_with_history() or save()")
        return super().update(**kwargs)

    def bulk_create(self, objs, *args, **kwargs):
        _refuse(self.model, "bulk_create", "audit.bulk.bulk_create_with_history()")
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, *args, **kwargs):
        _refuse(self.model, "bulk_update", "audit.bulk.bulk_update_with_history()")
        return super().bulk_update(objs, *args, **kwargs)


class AuditedManager(models.Manager.from_queryset(AuditedQuerySet)):
    pass
