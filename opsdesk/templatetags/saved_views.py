"""``{% saved_views_bar "queue" %}``: the saved views of a list page (the triage queue,
the exceptions inbox) above its filters: the views to switch to, the current one marked,
and "Save this view" for the filters the page shows (docs/product.md#saved-views).

A tag, not the pages' views: the queue is support's page, and support builds on no
opsdesk feature (docs/architecture.md#layers). One query (the page's list of views)."""

from __future__ import annotations

from django import template
from django.urls import reverse

from opsdesk.saved_views import selectors, services
from opsdesk.saved_views.pages import PAGES, query_normalise, view_url

register = template.Library()


@register.inclusion_tag("opsdesk/saved_views/bar.html", takes_context=True)
def saved_views_bar(context, key: str) -> dict:
    request = context["request"]
    user = request.user
    page = PAGES[key]
    if not user.has_perm("opsdesk.view_savedview"):
        return {"shown": False}
    views = selectors.saved_views_of_page(user=user, page=key)
    current = selectors.current_view(views, key, request.GET)
    filterset = context.get("filterset")
    query = query_normalise(page, request.GET)
    return {
        "shown": True,
        "page": page,
        "views": [(view, view_url(view), view == current) for view in views],
        "current": current,
        "can_save": user.has_perm(services.ADD) and current is None,
        "filtered": bool(query) and (filterset is None or filterset.is_valid()),
        "can_share": services.may_share(user, page),
        "query": query,
        "here": request.get_full_path(),
        "manage": reverse("admin:opsdesk_savedview_changelist") + f"?page__exact={key}",
        "name_max": services.NAME_MAX_LENGTH,
        "csrf_token": context.get("csrf_token"),
    }
