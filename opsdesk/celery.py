import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsdesk.settings")

app = Celery("opsdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _own_connection_pool(**kwargs) -> None:
    """A prefork child starts with no database connection pool of its own.

    Pools are per process (``DATABASES["default"]["OPTIONS"]["pool"]``). A pool the
    parent opened before forking would hand the child connections whose sockets the
    parent also uses, and closing it here would end the parent's sessions; so the child
    forgets it without any I/O (psycopg does not close a connection collected in another
    process than the one that opened it) and opens its own on first use. Celery's Django
    fixup then closes the child's pool around each task.
    """
    from django.db.backends.postgresql.base import DatabaseWrapper

    DatabaseWrapper._connection_pools.clear()
