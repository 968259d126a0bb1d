"""The admin's kit: what every ModelAdmin and every custom admin page shares, so each
page reads its parameters, lists its rows, returns to where it came from and says what
went wrong the same way.

- ``AdminParamsMixin``: the Django admin's own query parameters never make a 500.
- ``CappedCountPaginator``: lists whose count does not grow with the table;
  ``capped_count``: one such count on its own (a home page's tally).
- ``AdminListView``: a custom list page (unfold's frame, a FilterSet, the capped pager).
- ``back_url`` / ``back_redirect``: the way back to the page a form was posted from.
- ``form_errors``, ``report_refused_filters``, ``report_refusal``: the text of a form or
  filter that is not understood and of an action that was refused.
- ``AsOfForm``: a report's "as of" date and number of weeks (the support report, the
  scorecard).

A path id is read with ``kit.params.object_or_404``; a query parameter with the other
``kit.params`` readers.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import ListView
from unfold.views import UnfoldModelAdminViewMixin

from kit.dates import DateInput
from kit.params import DATE_MIN, date_in_range, page_param

# The lead of the message of an action that was refused and changed nothing.
NOTHING_CHANGED = "Nothing changed."


class AdminParamsMixin:
    """For every ModelAdmin: the admin's own parameters never make a 500.

    - ``?_to_field=`` given empty means the primary key: Django passed the empty text on
      to ``get_object`` as a field name, and a field named "" raised
      ``FieldDoesNotExist`` on every change and delete page.
    - A changelist filter value holding a NUL reached PostgreSQL, which refuses NUL in
      text, and a date hierarchy year of 10**21 overflowed ``datetime``: both are refused
      as any filter the admin cannot apply is (its ``?e=1`` page).
    """

    def get_object(self, request, object_id, from_field=None):
        return super().get_object(request, object_id, from_field or None)

    def get_changelist_instance(self, request):
        if any("\x00" in value for _, values in request.GET.lists() for value in values):
            raise IncorrectLookupParameters("A filter value holds a NUL character.")
        if self.date_hierarchy:
            for part in ("year", "month", "day"):
                for value in request.GET.getlist(f"{self.date_hierarchy}__{part}"):
                    if not (value.isdigit() and len(value) <= 4):
                        raise IncorrectLookupParameters(f"{part} is not a number of a date.")
        return super().get_changelist_instance(request)


class CappedCountPaginator(Paginator):
    """Counts at most ``cap + 1`` rows, so a page never runs an unbounded ``COUNT(*)``.

    On a large table the admin shows ``cap`` pages at most; search and filters narrow it.
    """

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return capped_count(self.object_list, self.cap)


def capped_count(queryset: QuerySet, cap: int) -> int:
    """How many rows ``queryset`` has, counting at most ``cap + 1`` of them (a result
    above ``cap`` means "more than ``cap``"): ``SELECT COUNT(*) FROM (... LIMIT cap + 1)``,
    bounded whatever the table size."""
    return queryset.order_by()[: cap + 1].count()


# --- Errors ---------------------------------------------------------------------------


def form_errors(form: forms.Form) -> str:
    """A form's errors on one line, each field named: "status: Select a valid choice."."""
    return " ".join(f"{name}: {'; '.join(errs)}" for name, errs in form.errors.items())


def report_refused_filters(request, form: forms.Form) -> None:
    """Say which filters of a list were not understood (the list then shows nothing: a
    list of everything would pass for the filtered one)."""
    messages.error(
        request, "Some filters were not understood, so nothing is listed: " + form_errors(form)
    )


def report_refusal(request, why: object, *, lead: str = NOTHING_CHANGED) -> None:
    """Say that an action was refused and why: "Nothing changed. <why>" (``lead``: what
    did not happen, "Not saved.", "Not retried.")."""
    messages.error(request, f"{lead} {why}")


# --- Reports read from history ------------------------------------------------------

WEEKS_DEFAULT = 12
WEEKS_MAX = 52


class AsOfForm(forms.Form):
    """A report's moment and span: ``as_of`` (the end of that day; empty: now), from
    ``DATE_MIN`` to today, and ``weeks`` (1 to ``WEEKS_MAX``; empty: ``WEEKS_DEFAULT``).
    A report that reads history up to a moment cannot read the future."""

    as_of = forms.DateField(
        label="As of (end of day)",
        required=False,
        widget=DateInput(),
        validators=[date_in_range],
    )
    weeks = forms.IntegerField(
        label="Weeks",
        required=False,
        min_value=1,
        max_value=WEEKS_MAX,
        widget=forms.NumberInput(attrs={"placeholder": str(WEEKS_DEFAULT)}),
    )

    def clean_as_of(self):
        as_of = self.cleaned_data["as_of"]
        today = timezone.localdate()
        if as_of is not None and as_of > today:
            raise forms.ValidationError(
                f"Give a date from {DATE_MIN:%Y-%m-%d} to today ({today:%Y-%m-%d})."
            )
        return as_of


# --- The way back ---------------------------------------------------------------------


def back_url(request, url: str | None, fallback: str) -> str:
    """``url`` when it leads to a page of this site, else ``fallback``: a ``next`` or
    ``back`` taken from a form or a link must not send the person to another site or run
    a ``javascript:`` URL (an open redirect)."""
    if url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return fallback


def back_redirect(request, fallback: str, *, field: str = "next") -> HttpResponseRedirect:
    """After a POST: back to the page the form was on (its ``next`` field, this site's
    pages only), else to ``fallback``."""
    return HttpResponseRedirect(back_url(request, request.POST.get(field), fallback))


# --- List pages -----------------------------------------------------------------------


class AdminListView(UnfoldModelAdminViewMixin, ListView):
    """A custom list page of the admin: unfold's frame (``title``,
    ``permission_required``, ``as_view(model_admin=...)``), ``paginate_by`` rows a page
    counted by ``CappedCountPaginator``, the page number read by ``kit.params.page_param``.

    With a ``filterset_class``, ``get_queryset`` passes its rows through
    ``self.filtered(...)``: the FilterSet's rows, or none with a message naming the filters
    that were not understood. The context has ``is_fullwidth``, ``here`` (this page, the
    ``next`` of its forms) and, when filtered, ``filterset`` and ``query`` (the query
    string without the page number, for the pager's links).
    """

    paginate_by = 50
    paginator_class = CappedCountPaginator
    filterset_class: type[django_filters.FilterSet] | None = None
    filterset: django_filters.FilterSet | None = None

    def filtered(self, queryset: QuerySet) -> QuerySet:
        """``queryset`` narrowed by the page's filters; empty when one is not understood."""
        self.filterset = self.filterset_class(
            self.request.GET, queryset=queryset, request=self.request
        )
        if not self.filterset.is_valid():
            report_refused_filters(self.request, self.filterset.form)
            return queryset.none()
        return self.filterset.qs

    def paginate_queryset(self, queryset, page_size):
        """As ``ListView``'s, but a page number that is not one is page 1 and one past the
        end is the last page (a stale or edited link still shows a page), not a 404."""
        paginator = self.get_paginator(
            queryset,
            page_size,
            orphans=self.get_paginate_orphans(),
            allow_empty_first_page=self.get_allow_empty(),
        )
        page = paginator.get_page(page_param(self.request, self.page_kwarg))
        return paginator, page, page.object_list, page.has_other_pages()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(is_fullwidth="1", here=self.request.get_full_path())
        if self.filterset is not None:
            query = self.request.GET.copy()
            query.pop(self.page_kwarg, None)
            context.update(filterset=self.filterset, query=query.urlencode())
        return context
