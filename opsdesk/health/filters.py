"""The customer list's "Needs attention today": the customers the digest would flag
today, computed live with the digest's own rules (``opsdesk.health.flags``)."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from opsdesk.health.flags import customer_health


def health_date():
    """The date whose digest "today" means: the digest's own default (UTC), so the home
    page, the customer list and this morning's email agree."""
    return timezone.now().date()


class NeedsAttentionFilter(admin.SimpleListFilter):
    """Keeps the customers of the list (its other filters applied first) that have at
    least one of the digest's flags today. Two queries for the flags, whatever the number
    of customers (``customer_health``)."""

    title = "health"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("today", "Needs attention today")]

    def queryset(self, request, queryset):
        if self.value() != "today":
            return queryset
        health = customer_health(date=health_date(), customer_ids=queryset.order_by().values("pk"))
        return queryset.filter(pk__in=[h.customer_id for h in health if h.needs_attention])
