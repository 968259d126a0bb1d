"""kit.admin: the way back after a form, the capped pager, the custom list page and the
text of a refusal, as every custom admin page uses them."""

from __future__ import annotations

import django_filters
import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from kit.admin import (
    AdminListView,
    CappedCountPaginator,
    back_redirect,
    back_url,
    form_errors,
    report_refusal,
)
from support.models import Tag

FALLBACK = "/admin/support/ticket/queue/"


def post(data: dict, *, secure: bool = False):
    request = RequestFactory().post("/admin/support/ticket/1/act/", data, secure=secure)
    request._messages = CookieStorage(request)
    return request


def get(query: dict, user):
    request = RequestFactory().get("/admin/support/tag/list/", query)
    request.user = user
    request._messages = CookieStorage(request)
    return request


# --- The way back ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/admin/",
        "//evil.example/admin/",
        "/\\evil.example/admin/",
        "javascript:alert(1)",
        " JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://testserver/admin/",
        "",
    ],
)
def test_back_redirect_refuses_a_next_that_leaves_the_site_and_goes_to_the_fallback(next_url):
    response = back_redirect(post({"next": next_url}), FALLBACK)
    assert response.status_code == 302
    assert response["Location"] == FALLBACK


def test_back_redirect_goes_to_the_fallback_without_a_next():
    assert back_redirect(post({}), FALLBACK)["Location"] == FALLBACK


@pytest.mark.parametrize(
    "next_url",
    [
        "/admin/support/ticket/queue/?status=open&page=2",
        "http://testserver/admin/support/case/inbox/",
    ],
)
def test_back_redirect_returns_to_a_page_of_this_site(next_url):
    assert back_redirect(post({"next": next_url}), FALLBACK)["Location"] == next_url


def test_back_redirect_reads_the_field_it_is_told():
    request = post({"next": "/admin/a/", "back": "/admin/b/"})
    assert back_redirect(request, FALLBACK, field="back")["Location"] == "/admin/b/"


def test_back_url_on_https_refuses_the_same_host_over_http():
    request = post({}, secure=True)
    assert back_url(request, "http://testserver/admin/", FALLBACK) == FALLBACK
    assert back_url(request, "https://testserver/admin/", FALLBACK) == "https://testserver/admin/"


def test_back_url_refuses_none():
    assert back_url(post({}), None, FALLBACK) == FALLBACK


# --- Errors ---------------------------------------------------------------------------


class TagFilter(django_filters.FilterSet):
    name = django_filters.ChoiceFilter(choices=[("urgent", "urgent"), ("vip", "vip")])

    class Meta:
        model = Tag
        fields = ["name"]


def test_form_errors_names_each_field_on_one_line():
    form = TagFilter({"name": "bogus"}, queryset=Tag.objects.none()).form
    assert form_errors(form) == (
        "name: Select a valid choice. bogus is not one of the available choices."
    )


def test_report_refusal_says_nothing_changed_and_why():
    request = post({})
    report_refusal(request, "It is closed already.")
    report_refusal(request, ValueError("The note is empty."), lead="Not saved.")
    assert [(m.level_tag, str(m)) for m in get_messages(request)] == [
        ("error", "Nothing changed. It is closed already."),
        ("error", "Not saved. The note is empty."),
    ]


# --- The capped pager -----------------------------------------------------------------


class CapOf3(CappedCountPaginator):
    cap = 3


@pytest.mark.django_db
def test_the_paginator_counts_no_further_than_one_row_past_its_cap():
    for name in ["a", "b", "c", "d", "e"]:
        Tag.objects.create(name=name)
    paginator = CapOf3(Tag.objects.all(), 2)
    with CaptureQueriesContext(connection) as queries:
        assert paginator.count == 4  # cap + 1: "more than 3"
        assert paginator.num_pages == 2
    [count] = queries.captured_queries
    assert "LIMIT 4" in count["sql"]
    assert "ORDER BY" not in count["sql"]


@pytest.mark.django_db
def test_the_paginator_counts_exactly_below_its_cap():
    Tag.objects.create(name="a")
    Tag.objects.create(name="b")
    assert CapOf3(Tag.objects.all(), 2).count == 2


# --- The list page --------------------------------------------------------------------


class TagList(AdminListView):
    title = "Tags"
    permission_required = ("support.view_tag",)
    template_name = "opsdesk/pager.html"
    paginate_by = 2
    filterset_class = TagFilter

    def get_queryset(self):
        return self.filtered(Tag.objects.order_by("name"))


class UnfilteredTagList(TagList):
    filterset_class = None

    def get_queryset(self):
        return Tag.objects.order_by("name")


def open_list(view, query: dict, user):
    request = get(query, user)
    response = view.as_view(model_admin=admin.site._registry[Tag])(request)
    return request, response.context_data


@pytest.fixture
def five_tags(db):
    for name in ["a", "b", "c", "d", "e"]:
        Tag.objects.create(name=name)


@pytest.mark.parametrize(
    ("page", "number"),
    [("2", 2), ("abc", 1), ("0", 1), ("-3", 1), ("1" + "0" * 21, 3), ("99", 3), ("", 1)],
)
def test_the_list_reads_its_page_number_through_kit_params_and_never_404s(
    five_tags, superuser, page, number
):
    _, context = open_list(TagList, {"page": page}, superuser)
    assert context["page_obj"].number == number
    assert context["paginator"].num_pages == 3


def test_the_list_shows_the_filtered_rows_and_the_query_without_the_page(five_tags, superuser):
    _, context = open_list(UnfilteredTagList, {}, superuser)
    assert [t.name for t in context["object_list"]] == ["a", "b"]
    Tag.objects.create(name="urgent")
    _, context = open_list(TagList, {"name": "urgent", "page": "1"}, superuser)
    assert [t.name for t in context["object_list"]] == ["urgent"]
    assert context["query"] == "name=urgent"
    assert context["is_fullwidth"] == "1"
    assert context["here"] == "/admin/support/tag/list/?name=urgent&page=1"


def test_the_list_shows_nothing_and_says_which_filter_it_did_not_understand(five_tags, superuser):
    request, context = open_list(TagList, {"name": "bogus"}, superuser)
    assert list(context["object_list"]) == []
    assert [str(m) for m in get_messages(request)] == [
        "Some filters were not understood, so nothing is listed: "
        "name: Select a valid choice. bogus is not one of the available choices."
    ]


def test_an_unfiltered_list_has_no_filterset_nor_query(five_tags, superuser):
    _, context = open_list(UnfilteredTagList, {"page": "2"}, superuser)
    assert "filterset" not in context
    assert "query" not in context
    assert [t.name for t in context["object_list"]] == ["c", "d"]
