"""The search page (``/admin/search/?q=``) and the admin theme's command palette, both
over ``opsdesk.search.selectors``."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.dataclasses import SearchResult

from opsdesk.search.selectors import (
    EXAMPLES,
    QueryRefused,
    exact_hit,
    kinds_for,
    query_parse,
    search,
)

PALETTE_CAP = 5


def search_view(request):
    """Staff only (``admin.site.admin_view``). The theme's own search (the sidebar's menu
    filter and the command palette, ``?s=``) lives at this address too: it is handed on."""
    if "s" in request.GET:
        return admin.site.search(request)
    request.current_app = admin.site.name
    kinds = kinds_for(request.user)
    if not kinds:
        raise PermissionDenied
    raw = request.GET.get("q", "")
    context = {
        **admin.site.each_context(request),
        "title": "Search",
        "q": " ".join(raw.split())[:200],
        "kinds": kinds,
        "examples": EXAMPLES,
    }
    status = 200
    if raw.strip():
        try:
            query = query_parse(raw)
        except QueryRefused as refusal:
            context["refusal"] = str(refusal)
            status = 400
        else:
            if url := exact_hit(user=request.user, query=query):
                return HttpResponseRedirect(url)
            context["groups"] = search(user=request.user, query=query)
            context["searched"] = True
    return TemplateResponse(request, "opsdesk/search/search.html", context, status=status)


def palette_results(request, search_term: str) -> list[SearchResult]:
    """The command palette's records (``UNFOLD["COMMAND"]["search_callback"]``): the
    first few of each group, and a last entry opening the whole search."""
    if not kinds_for(request.user):
        return []
    # The theme passes the term lowercased; the "Search everything" entry repeats it as
    # typed, so it is taken from the request when it is the same text.
    typed = request.GET.get("s", "")
    if typed.lower() == search_term:
        search_term = typed
    try:
        query = query_parse(search_term)
    except QueryRefused:
        return []
    results = [
        SearchResult(
            title=hit.title,
            description=f"{group.kind.label} · {hit.detail}",
            link=hit.url,
            icon=group.kind.icon,
        )
        for group in search(user=request.user, query=query, cap=PALETTE_CAP)
        for hit in group.hits
    ]
    url = reverse("search")
    results.append(
        SearchResult(
            title=f"Search everything for “{query.text}”",
            description="All matches, grouped by kind",
            link=f"{url}?{urlencode({'q': query.text})}",
            icon="search",
        )
    )
    return results
