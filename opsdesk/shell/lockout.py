"""The page a locked-out sign-in gets (django-axes ``AXES_LOCKOUT_CALLABLE``)."""

from __future__ import annotations

from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone


def lockout_response(request, original_response=None, credentials=None):
    """429 in the admin's look, saying when the person may try again.

    Rendered with the admin site's context (theme, title) because axes' own template
    rendering has none. Every attempt during the lockout restarts the cool-off (axes'
    default), so "now + cool-off" is exactly when the next attempt will be heard.
    """
    cool_off = get_cool_off(request)
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed sign-ins",
        "failure_limit": get_failure_limit(request, credentials),
        "cool_off_minutes": int(cool_off.total_seconds() // 60),
        "retry_at": timezone.localtime(timezone.now() + cool_off),
    }
    response = TemplateResponse(
        request, settings.AXES_LOCKOUT_TEMPLATE, context, status=settings.AXES_HTTP_RESPONSE_CODE
    )
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response.render()
