"""The freshness panel's page (``/admin/freshness/``, docs/product.md#freshness): each
source of outside data with when it last delivered, what failed and whether it has been
silent longer than usual.

Ops leads and superusers open it (``opsdesk.freshness.PERMISSION``); anyone else on the
staff gets a 403. A count links to the list of exactly its rows when the person may open
that list, else it is plain text. The page reads no parameter: it is always "now"."""

from __future__ import annotations

import dataclasses

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from kit.text import one_line
from opsdesk.freshness import PERMISSION, selectors

# The latest failure's error as the page quotes it (the list shows it whole).
ERROR_SHOWN = 300


def _for(user, source: selectors.SourceFreshness) -> selectors.SourceFreshness:
    """``source`` with the links ``user`` may not follow blanked."""
    if any(user.has_perm(permission) for permission in source.list_permissions):
        return source
    return dataclasses.replace(source, list_url="", failed_url="", pending_url="")


def _quoted(error: str) -> str:
    text = one_line(error)
    return text[:ERROR_SHOWN] + "…" if len(text) > ERROR_SHOWN else text


def freshness_view(request):
    """The panel: one card per source, the silent ones said first in a line above."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    request.current_app = admin.site.name
    now = timezone.now()
    sources = [_for(request.user, source) for source in selectors.sources_freshness(now=now)]
    return TemplateResponse(
        request,
        "opsdesk/freshness/freshness.html",
        {
            **admin.site.each_context(request),
            "title": "Data freshness",
            "now": now,
            "zone": timezone.get_current_timezone_name(),
            "sources": [(source, _quoted(source.last_error)) for source in sources],
            "silent": [s for s in sources if s.state == selectors.SILENT],
            "never": [s for s in sources if s.state == selectors.NEVER],
        },
    )


def admin_urls(site) -> list:
    """The panel's URL in the admin site (unfold's ``extra_urls``, set in opsdesk/admin.py):
    ``admin:freshness``, walked with every other admin page by the permission matrix."""
    return [path("freshness/", site.admin_view(freshness_view), name="freshness")]
