import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from support.webhooks import EVENT_PUBLISHER, MAX_BODY_BYTES, event_receive

logger = logging.getLogger(__name__)
# While PostgreSQL cannot be reached (a restart, a failover) nothing can be stored: the
# sender is told to retry (a Standard Webhooks provider retries any non-2xx anyway).
RETRY_AFTER_SECONDS = 5


@csrf_exempt
@require_POST
def product_webhook(request):
    """``POST /webhooks/product/``: the response table of ``docs/contracts/webhooks.md``."""
    # Read at most one byte past the limit, whatever Content-Length claims.
    body = request.read(MAX_BODY_BYTES + 1)
    try:
        intake = event_receive(body=body, headers=dict(request.headers))
    except (OperationalError, InterfaceError):
        logger.warning("webhook not stored: the database is unavailable", exc_info=True)
        response = JsonResponse(
            {"error": "the event could not be stored now (database unavailable); retry it"},
            status=503,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if intake.status == 202:
        EVENT_PUBLISHER.add_after_commit(intake.event.pk)
    return JsonResponse(intake.body, status=intake.status)
