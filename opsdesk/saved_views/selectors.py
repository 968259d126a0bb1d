"""What the pages and the sidebar read of saved views, each in a fixed number of queries.

- ``saved_views_visible``: the views a person sees (their own, and the shared ones of
  the pages they see); every list of views starts from it.
- ``saved_views_of_page``: the page's list, one query.
- ``saved_views_for_sidebar``: at most ``SIDEBAR_VIEWS_MAX`` views of each page, one query.
- ``saved_view_counts``: the rows of each view, counted up to ``COUNT_CAP + 1`` (never a
  whole table), all views in one query.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When, Window
from django.db.models.functions import Lower, RowNumber
from django.http import QueryDict

from opsdesk.saved_views.models import SavedView
from opsdesk.saved_views.pages import PAGES, query_normalise, view_rows

# A view's count says "99+" beyond this: its query reads at most COUNT_CAP + 1 rows.
COUNT_CAP = 99
# The sidebar shows this many views of each page at most (own first); the page lists all.
SIDEBAR_VIEWS_MAX = 10
# The page's list of views: own first, then the shared ones; never more than this.
PAGE_VIEWS_MAX = 100


def saved_views_visible(*, user) -> QuerySet[SavedView]:
    """The views ``user`` sees: their own, and those shared, of the pages they may open."""
    if not user.is_active or not user.has_perm("opsdesk.view_savedview"):
        return SavedView.objects.none()
    pages = [key for key, page in PAGES.items() if user.has_perm(page.view_permission)]
    return SavedView.objects.filter(Q(owner=user) | Q(shared=True), page__in=pages)


def _order() -> list:
    """Own views first, each person's in their order, then by name."""
    return ["mine", "position", Lower("name"), "pk"]


def _with_mine(views: QuerySet[SavedView], user) -> QuerySet[SavedView]:
    return views.annotate(
        mine=Case(
            When(owner_id=user.pk, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
    )


def saved_views_of_page(*, user, page: str) -> list[SavedView]:
    """The views of ``page`` that ``user`` sees, own first (one query, owners joined)."""
    views = _with_mine(saved_views_visible(user=user).filter(page=page), user)
    return list(views.select_related("owner").order_by(*_order())[:PAGE_VIEWS_MAX])


def saved_views_for_sidebar(*, user) -> dict[str, list[SavedView]]:
    """Per page key, the first ``SIDEBAR_VIEWS_MAX`` views ``user`` sees of it, own first,
    in one query whatever the number of views (a window ranks them per page)."""
    ranked = _with_mine(saved_views_visible(user=user), user).annotate(
        rank=Window(RowNumber(), partition_by=[F("page")], order_by=_order())
    )
    found: dict[str, list[SavedView]] = {key: [] for key in PAGES}
    for view in ranked.filter(rank__lte=SIDEBAR_VIEWS_MAX).order_by("page", "rank"):
        found[view.page].append(view)
    return found


def saved_view_counts(*, views: list[SavedView], request) -> dict[int, int | None]:
    """Each view's rows, as its page lists them to ``request``'s user, counted up to
    ``COUNT_CAP + 1``; None for a view its page no longer understands.

    One query for all of them: ``SELECT (SELECT count(*) FROM (<view 1's rows> LIMIT
    100)), (...)``, each subquery the page's own filtered rows, so PostgreSQL reads them
    through the indexes the page uses and stops at the 100th. Building a view's rows reads
    nothing for most filters; a tag or a customer is looked up first (one query each, as
    on the page), and the assignee and owner choices once per request."""
    counts: dict[int, int | None] = {}
    parts, params, counted = [], [], []
    for view in views:
        rows = view_rows(view, request)
        if rows is None:
            counts[view.pk] = None
            continue
        sql, sql_params = rows.values("pk")[: COUNT_CAP + 1].query.sql_with_params()
        parts.append(f"(SELECT count(*) FROM ({sql}) AS view_{len(parts)})")
        params.extend(sql_params)
        counted.append(view.pk)
    if parts:
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(parts), params)
            counts.update(zip(counted, cursor.fetchone(), strict=True))
    return counts


def count_label(count: int | None) -> str:
    """How the sidebar says a count: "12", "99+" beyond ``COUNT_CAP``, "?" when the
    view's filters are no longer understood."""
    if count is None:
        return "?"
    return f"{COUNT_CAP}+" if count > COUNT_CAP else str(count)


def current_view(views: list[SavedView], page: str, data: QueryDict) -> SavedView | None:
    """The view among ``views`` of ``page`` that shows what ``data`` (the page's GET)
    shows: the same filters, whatever their order, empty ones or page number."""
    here = query_normalise(PAGES[page], data)
    for view in views:
        if view.page == page and query_normalise(PAGES[page], QueryDict(view.query)) == here:
            return view
    return None
