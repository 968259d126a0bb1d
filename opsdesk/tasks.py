"""The Celery tasks of opsdesk's features, imported where Celery's autodiscovery looks."""

from opsdesk.health.tasks import digest_send, digests_send

__all__ = ["digest_send", "digests_send"]
