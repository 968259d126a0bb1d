import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from support.email_message import MAX_MESSAGE_BYTES
from support.inbound import CONTENT_TYPE, inbound_receive
from support.models import WebhookEvent
from support.webhooks import EVENT_PUBLISHER, MAX_BODY_BYTES, event_receive

logger = logging.getLogger(__name__)
# While PostgreSQL cannot be reached (a restart, a failover) nothing can be stored: the
# sender is told to retry (a Standard Webhooks provider retries any non-2xx anyway).
RETRY_AFTER_SECONDS = 5


def _database_unavailable(what: str) -> JsonResponse:
    logger.warning("%s not stored: the database is unavailable", what, exc_info=True)
    response = JsonResponse(
        {"error": f"the {what} could not be stored now (database unavailable); retry it"},
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _webhook(request, source: str) -> JsonResponse:
    # Read at most one byte past the limit, whatever Content-Length claims.
    body = request.read(MAX_BODY_BYTES + 1)
    try:
        intake = event_receive(body=body, headers=dict(request.headers), source=source)
    except (OperationalError, InterfaceError):
        return _database_unavailable("event")
    if intake.status == 202:
        EVENT_PUBLISHER.add_after_commit(intake.event.pk)
    return JsonResponse(intake.body, status=intake.status)


@csrf_exempt
@require_POST
def product_webhook(request):
    """``POST /webhooks/product/``: the response table of ``docs/contracts/webhooks.md``."""
    return _webhook(request, WebhookEvent.Source.PRODUCT)


@csrf_exempt
@require_POST
def crm_webhook(request):
    """``POST /webhooks/crm/``: the CRM's accounts and contracts (``docs/contracts/crm.md``),
    answered as the product's webhooks are."""
    return _webhook(request, WebhookEvent.Source.CRM)


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@csrf_exempt
@require_POST
def inbound_email_webhook(request):
    """``POST /webhooks/inbound-email/``: one raw email pushed by the mail provider, the
    responses of ``docs/contracts/email.md`` (Inbound 1).

    The body is read from the stream (``request.read``), never ``request.body``, which
    refuses anything over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB) with an error page:
    a message may be 25 MiB. A larger one is refused from its Content-Length before a
    byte is read, and never more than one byte past the limit is read whatever that
    header claims."""
    if _declared_length(request) > MAX_MESSAGE_BYTES:
        error = f"message larger than {MAX_MESSAGE_BYTES} bytes (25 MiB)"
        return JsonResponse({"error": error}, status=413)
    if request.content_type != CONTENT_TYPE:
        error = (
            f"Content-Type must be {CONTENT_TYPE} (the raw message as received), "
            f"not {request.content_type or 'absent'}"
        )
        return JsonResponse({"error": error[:300]}, status=415)
    body = request.read(MAX_MESSAGE_BYTES + 1)
    try:
        intake = inbound_receive(body=body, headers=dict(request.headers))
    except (OperationalError, InterfaceError):
        return _database_unavailable("message")
    return JsonResponse(intake.body, status=intake.status)
