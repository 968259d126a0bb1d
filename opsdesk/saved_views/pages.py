"""The pages a view can be saved of, and what a view's filters may be: exactly what that
page's own FilterSet understands.

A view's ``query`` is stored normalised (``query_clean``): the page's filters in the
FilterSet's order, each at most once, none empty or at the page's default, every value one
the FilterSet accepts. So a saved view is always something its page applies, and the
current page and a view compare equal when they show the same rows (``query_normalise``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import QueryDict
from django.urls import reverse

from kit.admin import form_errors
from kit.params import VALUE_MAX_LENGTH
from opsdesk.casework.inbox import CaseInboxFilter, CaseInboxView
from opsdesk.saved_views.models import SavedView
from support.admin_views import TriageQueueView
from support.filters import TicketQueueFilter

QUERY_MAX_LENGTH = SavedView._meta.get_field("query").max_length
# The list pages' own page number: where in the list one is, not what it lists.
PAGE_NUMBER = "page"


class SavedViewError(Exception):
    """A view that cannot be saved, changed or deleted; the message says why. Nothing was
    changed."""


@dataclass(frozen=True)
class ViewPage:
    """One page views are saved of: its FilterSet, the rows it filters for a person (the
    page's own ``rows_for``, its row rule included), who sees it and who may share views
    of it (who works it)."""

    key: str
    label: str  # "the triage queue": how a message names it
    url_name: str
    view_permission: str
    share_permission: str
    filterset: type[django_filters.FilterSet]
    rows: Callable[[Any], QuerySet]
    # What the FilterSet applies when a filter is absent (its __init__): a view leaves it out.
    defaults: Mapping[str, str]

    @property
    def path(self) -> str:
        return reverse(f"admin:{self.url_name}")

    @property
    def filter_names(self) -> list[str]:
        return list(self.filterset.base_filters)


PAGES: dict[str, ViewPage] = {
    SavedView.Page.QUEUE: ViewPage(
        key=SavedView.Page.QUEUE,
        label="the triage queue",
        url_name="support_ticket_queue",
        view_permission="support.view_ticket",
        share_permission="support.change_ticket",
        filterset=TicketQueueFilter,
        rows=TriageQueueView.rows_for,
        defaults={"status": "active"},
    ),
    SavedView.Page.INBOX: ViewPage(
        key=SavedView.Page.INBOX,
        label="the exceptions inbox",
        url_name="support_case_inbox",
        view_permission="support.view_case",
        share_permission="support.change_case",
        filterset=CaseInboxFilter,
        rows=CaseInboxView.rows_for,
        defaults={"state": "active"},
    ),
}


def page_of(key: str) -> ViewPage:
    try:
        return PAGES[key]
    except KeyError:
        raise SavedViewError(f"“{key}” is not a page views are saved of.") from None


def _kept(page: ViewPage, name: str, value: str) -> bool:
    return value != "" and value != page.defaults.get(name)


def query_normalise(page: ViewPage, data: QueryDict) -> str:
    """``data`` (a page's GET) as a view's query: the page's filters in order, the last
    value of each, without the empty ones, those at their default, the page number and
    anything the page does not read. Not validated: for comparing the current page with
    the saved views, and for the "Save this view" form."""
    pairs = []
    for name in page.filter_names:
        value = (data.getlist(name) or [""])[-1].strip()
        if _kept(page, name, value) and len(value) <= VALUE_MAX_LENGTH:
            pairs.append((name, value))
    return _encode(pairs)


def _encode(pairs: list[tuple[str, str]]) -> str:
    query = QueryDict(mutable=True)
    for name, value in pairs:
        query.appendlist(name, value)
    return query.urlencode()


def query_clean(page: ViewPage, raw: str) -> str:
    """``raw`` (a query string) as a view of ``page`` may store it, else ``SavedViewError``
    saying what is wrong: a parameter the page does not have, one given twice, a value too
    long or holding a NUL, a value its filter refuses (a tag or person that does not exist,
    a month that is not one), or nothing left to filter by. The page number is dropped."""
    raw = (raw or "").strip().lstrip("?")
    if len(raw) > QUERY_MAX_LENGTH:
        raise SavedViewError(f"A view's filters are at most {QUERY_MAX_LENGTH} characters long.")
    data = QueryDict(raw)
    names = page.filter_names
    pairs = []
    for name, values in data.lists():
        if name == PAGE_NUMBER:
            continue
        if name not in names:
            raise SavedViewError(
                f"“{_shown(name)}” is not a filter of {page.label}: its filters are "
                f"{', '.join(names)}."
            )
        if len(values) > 1:
            raise SavedViewError(f"“{name}” is given {len(values)} times: a view keeps one value.")
        value = values[0].strip()
        if "\x00" in value or len(value) > VALUE_MAX_LENGTH:
            raise SavedViewError(f"“{name}” is not understood.")
        pairs.append((name, value))
    given = dict(pairs)
    filterset = page.filterset(
        QueryDict(_encode(pairs)), queryset=page.filterset._meta.model.objects.none()
    )
    if not filterset.is_valid():
        raise SavedViewError(
            f"These filters are not understood by {page.label}: {form_errors(filterset.form)}"
        )
    kept = []
    for name in names:
        value = given.get(name, "")
        if not _kept(page, name, value):
            continue
        if filterset.form.cleaned_data.get(name) in (None, ""):
            # Taken by the form but meaning nothing (``overdue=maybe``): the page would
            # ignore it, so the view would not be what was asked for.
            raise SavedViewError(f"“{name}” cannot be “{_shown(value)}”.")
        kept.append((name, value))
    if not kept:
        raise SavedViewError(
            f"These are {page.label} as it opens, unfiltered: choose some filters first, "
            "then save them as a view."
        )
    return _encode(kept)


def _shown(text: str) -> str:
    """Text from the query string, short enough to say back in a message."""
    return text if len(text) <= 40 else text[:40] + "…"


def view_url(view: SavedView) -> str:
    """The view's page with its filters: what its links open, bookmarkable."""
    query = QueryDict(view.query).urlencode()  # encoded again: as stored, not trusted
    return PAGES[view.page].path + (f"?{query}" if query else "")


def view_rows(view: SavedView, request) -> QuerySet | None:
    """The rows the view's page lists to ``request``'s user with the view's filters (its
    ``me`` is that person), unordered; None when the page would not understand the
    filters any more (a tag or person since removed): it would list nothing and say why."""
    page = PAGES[view.page]
    filterset = page.filterset(
        QueryDict(view.query), queryset=page.rows(request.user), request=request
    )
    if not filterset.is_valid():
        return None
    return filterset.qs.order_by()
