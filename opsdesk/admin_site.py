"""Callbacks of the admin theme (``UNFOLD`` in settings)."""

from django.conf import settings


def environment_badge(request):
    """The badge in the header, so nobody mistakes a demo for production."""
    if settings.DEBUG:
        return ["Local demo", "warning"]
    return None
