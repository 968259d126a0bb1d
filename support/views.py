from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from support.enqueue import enqueue_after_commit
from support.webhooks import MAX_BODY_BYTES, event_receive


@csrf_exempt
@require_POST
def product_webhook(request):
    """``POST /webhooks/product/``: the response table of ``contracts/webhooks.md``."""
    # Read at most one byte past the limit, whatever Content-Length claims.
    body = request.read(MAX_BODY_BYTES + 1)
    intake = event_receive(body=body, headers=dict(request.headers))
    if intake.status == 202:
        enqueue_after_commit(intake.event.pk)
    return JsonResponse(intake.body, status=intake.status)
