"""The Celery tasks of opsdesk's features, imported where Celery's autodiscovery looks."""

from opsdesk.health.tasks import send_digest, send_digests

__all__ = ["send_digest", "send_digests"]
