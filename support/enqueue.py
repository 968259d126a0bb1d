"""Hand stored work (webhook events, replies) to the worker without ever making the
person or system that caused it wait on the broker.

A paused Redis blocks ``delay()`` for many seconds (measured: 15 s), so the publish
happens on a background thread after the transaction commits. If it fails or stalls,
nothing is lost: the work is in PostgreSQL and a beat sweep picks it up.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from django.db import transaction

logger = logging.getLogger(__name__)
_publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsdesk-enqueue")


def _publish(task_name: str, args: list) -> None:
    from opsdesk.celery import app

    try:
        app.send_task(task_name, args=args, retry=False)
    except Exception:
        logger.warning("could not enqueue %s%s; the sweep will", task_name, args, exc_info=True)


def publish_after_commit(task_name: str, *args) -> None:
    transaction.on_commit(lambda: _publisher.submit(_publish, task_name, list(args)))


def enqueue_after_commit(event_id: int) -> None:
    publish_after_commit("support.process_webhook_event", event_id)
