"""Waiting for kit.publish's background thread, which hands work to the broker after
commit: a test that captures what is published reads it once the thread is done."""

from __future__ import annotations

from kit import publish


def publish_thread_done(timeout: float = 5) -> None:
    """Return once the publish thread has run everything handed to it so far (it runs one
    job at a time, in order, so a no-op job finishing means the earlier ones have)."""
    publish.publishes_sent(timeout=timeout)
