"""opsdesk's URLs plus the baseline of ``make bench``: a view that only inserts one row."""

from django.db import connection
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from opsdesk.urls import urlpatterns as opsdesk_urlpatterns


@csrf_exempt
@require_POST
def bare_insert(request):
    """Store the body with one raw INSERT: no signature check, no ORM, no Celery."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_bare_insert (body) VALUES (%s)",
            [request.body.decode(errors="replace")],
        )
    return HttpResponse(status=204)


urlpatterns = [*opsdesk_urlpatterns, path("bench/bare-insert/", bare_insert)]
