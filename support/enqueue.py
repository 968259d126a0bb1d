"""Hand stored events to the worker without ever making the sender wait on the broker.

A paused Redis blocks ``delay()`` for many seconds (measured: 15 s), so the publish
happens on a background thread after the transaction commits. If it fails or stalls,
nothing is lost: the event is in PostgreSQL and the beat sweep processes it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from django.db import transaction

logger = logging.getLogger(__name__)
_publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-enqueue")


def _publish(event_id: int) -> None:
    from support.tasks import process_webhook_event

    try:
        process_webhook_event.apply_async(args=[event_id], retry=False)
    except Exception:
        logger.warning(
            "could not enqueue webhook event %s; the sweep will", event_id, exc_info=True
        )


def enqueue_after_commit(event_id: int) -> None:
    transaction.on_commit(lambda: _publisher.submit(_publish, event_id))
