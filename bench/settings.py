"""opsdesk's settings plus the bench's URLs and its own Celery queue."""

from bench import QUEUE
from opsdesk.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
CELERY_TASK_DEFAULT_QUEUE = QUEUE
