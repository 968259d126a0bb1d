import logging

from django.db import connection
from django.http import HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.http import require_GET

from opsdesk.celery import app as celery_app

logger = logging.getLogger(__name__)


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=1)
            return True
    except Exception:  # any failure to reach the broker means "down"
        logger.warning("healthz: broker unreachable", exc_info=True)
        return False


@require_GET
def healthz(request):
    """200 while the database answers; the broker's state is reported, not fatal."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        logger.exception("healthz: database unreachable")
        return JsonResponse({"database": "down", "broker": "unknown"}, status=503)
    return JsonResponse({"database": "ok", "broker": "ok" if _broker_ok() else "down"})


@require_GET
def favicon(request):
    """/favicon.ico: the icon the pages link to. A temporary redirect: the static file's
    name carries its hash in production and changes with it."""
    return HttpResponseRedirect(static("opsdesk/favicon.svg"))
