"""Attribution for work that has no signed-in user: Celery tasks and management commands."""

from __future__ import annotations

from celery import signals as celery_signals
from django.core.management.base import BaseCommand

from audit.context import Actor, _current, acting_as, system_label

_task_tokens: dict[str, object] = {}


def _task_started(task_id=None, task=None, **kwargs):
    _task_tokens[task_id] = _current.set(Actor(label=system_label("task", task.name)))


def _task_finished(task_id=None, **kwargs):
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _current.reset(token)


def connect_celery_signals() -> None:
    celery_signals.task_prerun.connect(_task_started, dispatch_uid="audit.task_started", weak=False)
    celery_signals.task_postrun.connect(
        _task_finished, dispatch_uid="audit.task_finished", weak=False
    )


class AuditedCommand(BaseCommand):
    """A management command whose writes are attributed to ``command:<name>``."""

    def execute(self, *args, **options):
        name = self.__class__.__module__.rsplit(".", 1)[-1]
        with acting_as(system_label("command", name)):
            return super().execute(*args, **options)
