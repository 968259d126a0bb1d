"""Saved views (docs/product.md#saved-views): a person's named filters of the triage
queue or the exceptions inbox, personal or shared.

Imported by ``opsdesk.models``: a model of the opsdesk app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from audit.models import AuditedModel, audited_history


class SavedView(AuditedModel):
    """One named set of filters of one page, kept by its owner; a shared one is seen by
    everyone who sees that page. ``query`` is the page's query string as
    ``opsdesk.saved_views.pages`` normalised and validated it: only that page's filters,
    each once, none empty or at its default. Written only by
    ``opsdesk.saved_views.services``."""

    class Page(models.TextChoices):
        QUEUE = "queue", "Triage queue"
        INBOX = "inbox", "Exceptions"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    page = models.CharField(max_length=10, choices=Page)
    name = models.CharField(max_length=60)
    query = models.CharField("filters", max_length=1000)
    shared = models.BooleanField(
        default=False, help_text="Seen by everyone who sees the page, not only its owner."
    )
    # The owner's order of their views of a page (smallest first).
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = audited_history()

    class Meta:
        ordering = ["page", "position", "name", "pk"]
        permissions = [
            ("manage_shared_savedview", "Can edit and delete anyone's shared saved views"),
        ]
        constraints = [
            models.UniqueConstraint(
                "owner", "page", Lower("name"), name="savedview_name_once_per_owner_and_page"
            ),
            models.CheckConstraint(
                condition=Q(page__in=["queue", "inbox"]), name="savedview_page_valid"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="savedview_has_name"),
        ]
        indexes = [
            # A person's own views of a page in their order (the page's list, the sidebar).
            models.Index(fields=["owner", "page", "position"], name="savedview_owner_page"),
            # The views shared on a page, in order (the same lists, everyone's part).
            models.Index(
                fields=["page", "position"], condition=Q(shared=True), name="savedview_shared"
            ),
        ]

    def __str__(self) -> str:
        return self.name
