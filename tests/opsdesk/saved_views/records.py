"""Saved views as their tests make and read them: a view made directly (as the service
would store it), the endpoints' URLs, and what the sidebar's fragment lists."""

from __future__ import annotations

import re

from django.urls import reverse

from audit.context import acting_as
from opsdesk.models import SavedView

SAVE = reverse("admin:opsdesk_savedview_save")
SIDEBAR = reverse("admin:opsdesk_savedview_sidebar")
VIEWS = reverse("admin:opsdesk_savedview_changelist")
QUEUE = reverse("admin:support_ticket_queue")
INBOX = reverse("admin:support_case_inbox")


def saved_view(owner, name: str, query: str, *, page: str = "queue", **fields) -> SavedView:
    """``owner``'s view ``name`` of ``page`` with ``query`` stored as given (normalised
    as ``query_clean`` would store it, unless a test wants otherwise)."""
    with acting_as("test:fixture"):
        return SavedView.objects.create(owner=owner, page=page, name=name, query=query, **fields)


ENTRY = re.compile(
    r'<a class="od-sidebar-view[^"]*" href="([^"]*)"[^>]*>\s*'
    r'<span class="od-sidebar-view-name">(.*?)</span>\s*'
    r'<span class="od-sidebar-count[^"]*" data-testid="sidebar-view-count">(.*?)</span>',
    re.S,
)


def sidebar_entries(response) -> list[tuple[str, str, str]]:
    """(link, name as in the HTML, count) of each entry of the sidebar's fragment."""
    return ENTRY.findall(response.content.decode())


def sidebar_counts(response) -> dict[str, str]:
    return {name: count for _, name, count in sidebar_entries(response)}
