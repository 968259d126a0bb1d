"""Hand stored work (webhook events, replies, checklists) to the worker without ever making
the person or system that caused it wait on the broker.

A paused Redis blocks ``delay()`` for many seconds (measured: 15 s), so the publish
happens on a background thread after the transaction commits. If it fails or stalls,
nothing is lost: the work is in PostgreSQL and a beat sweep picks it up. Tasks are sent
by name through Celery's current app, so no layer imports the project's Celery module.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)
_publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsdesk-enqueue")

PUBLISH_PAUSE_SECONDS = 0.05


def _publish(task_name: str, args: list) -> None:
    try:
        current_app.send_task(task_name, args=args, retry=False)
    except Exception:
        logger.warning("could not enqueue %s%s; the sweep will", task_name, args, exc_info=True)


def publish_after_commit(task_name: str, *args) -> None:
    """Send ``task_name(*args)`` once the current transaction commits (at once outside
    one), from the background thread."""
    transaction.on_commit(lambda: _publisher.submit(_publish, task_name, list(args)))


def publishes_sent(timeout: float = 5) -> None:
    """Return once everything handed to the background thread so far has been sent (it
    runs one publish at a time, in order, so a no-op finishing means the earlier ones
    have); for a caller that must know the work reached the broker, e.g. a test."""
    _publisher.submit(lambda: None).result(timeout=timeout)


class BatchPublisher:
    """Sends ``task_name([id, ...])`` for ids handed over after commit. Ids handed over
    during the previous publish and the pause after it travel together in one task, so
    under load the broker round trip is paid per batch, not per id (it was a third of
    webhook intake's CPU); a quiet sender still publishes each id at once."""

    def __init__(self, task_name: str) -> None:
        self.task_name = task_name
        self._ids: list[int] = []
        self._lock = threading.Lock()

    def add_after_commit(self, item_id: int) -> None:
        transaction.on_commit(lambda: self.add(item_id))

    def add(self, item_id: int) -> None:
        with self._lock:
            self._ids.append(item_id)
            first = len(self._ids) == 1
        if first:
            _publisher.submit(self._publish_batch)

    def _publish_batch(self) -> None:
        with self._lock:
            ids = self._ids.copy()
            self._ids.clear()
        _publish(self.task_name, [ids])
        time.sleep(PUBLISH_PAUSE_SECONDS)
