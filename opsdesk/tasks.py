"""The Celery tasks of opsdesk's features, imported where Celery's autodiscovery looks."""

from opsdesk.health.tasks import digest_send, digests_send, team_rollup_send, team_rollups_send
from opsdesk.notifications.tasks import (
    chat_post_send,
    notification_rollups_send,
    notification_send,
    notifications_sweep,
)

__all__ = [
    "chat_post_send",
    "digest_send",
    "digests_send",
    "notification_rollups_send",
    "notification_send",
    "notifications_sweep",
    "team_rollup_send",
    "team_rollups_send",
]
