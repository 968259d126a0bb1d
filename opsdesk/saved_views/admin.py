"""Saved views in the admin: the list of the views a person sees ("Saved views"), each
view's page (its owner, or an ops lead for a shared one, renames it, changes its filters,
shares it, moves it, deletes it), and the two endpoints of the queue's and the inbox's
pages: "Save this view" (``save/``) and the sidebar's entries with their counts
(``sidebar/``, fetched by opsdesk/static/opsdesk/saved_views.js after the page shows, so
no page waits on the counts).

Every write goes through ``opsdesk.saved_views.services``; nobody sees another person's
personal view, a superuser included (it is that person's own, like their password).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST
from unfold.decorators import display

from audit.admin import AuditedModelAdmin
from kit.admin import back_redirect, report_refusal
from kit.service_owned import service_owned
from opsdesk.saved_views import selectors, services
from opsdesk.saved_views.models import SavedView
from opsdesk.saved_views.pages import PAGES, SavedViewError, query_clean, view_url

CHANGE_FIELDS = ("name", "query", "shared", "position")


class SavedViewForm(forms.ModelForm):
    """A view's page: what its owner (or an ops lead, for a shared one) may change, each
    value checked as ``saved_view_update`` will check it, said next to its field.
    ``user`` is set per request by ``SavedViewAdmin.get_form``."""

    user = None

    class Meta:
        model = SavedView
        fields = list(CHANGE_FIELDS)
        widgets = {"query": forms.TextInput(attrs={"size": 80})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        page = PAGES.get(self.instance.page)
        if page is not None and "query" in self.fields:
            self.fields["query"].help_text = (
                f"As in the page's address after the “?”: {page.label}'s filters "
                f"({', '.join(page.filter_names)}), each once."
            )

    def clean_name(self) -> str:
        return _checked(services.view_name_clean, self.cleaned_data["name"])

    def clean_query(self) -> str:
        page = PAGES.get(self.instance.page)
        if page is None:
            raise forms.ValidationError("This view's page is not one views are saved of.")
        return _checked(query_clean, page, self.cleaned_data["query"])

    def clean(self):
        data = super().clean()
        page = PAGES.get(self.instance.page)
        shared_before = self.initial.get("shared", False)
        sharing = page and data.get("shared") and not shared_before
        if sharing and (self.user is None or not services.may_share(self.user, page)):
            self.add_error("shared", f"Only who works {page.label} shares views of it.")
        return data


def _checked(function, *args):
    try:
        return function(*args)
    except SavedViewError as error:
        raise forms.ValidationError(str(error)) from None


def _visible(request, obj) -> bool:
    """Whether the person sees ``obj``: theirs, or shared on a page they see."""
    if obj is None or obj.owner_id == request.user.pk:
        return True
    page = PAGES.get(obj.page)
    return obj.shared and page is not None and request.user.has_perm(page.view_permission)


@admin.register(SavedView)
class SavedViewAdmin(AuditedModelAdmin):
    """The views the signed-in person sees: their own and the shared ones."""

    form = SavedViewForm
    list_display = ["name", "page", "filters", "shared_badge", "owner_name", "position", "open"]
    list_filter = ["page", "shared"]
    search_fields = ["name"]
    search_help_text = "Name of the view"
    ordering = ["page", "position", "name", "pk"]
    change_service_fields = CHANGE_FIELDS
    readonly_fields = ["page", "owner", "open", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "page", "query", "open", "shared", "position"]}),
        ("Record", {"fields": ["owner", "created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request):
        visible = selectors.saved_views_visible(user=request.user)
        return visible.select_related("owner")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return [*service_owned(SavedView), "open"]
        return self.readonly_fields

    def has_add_permission(self, request):
        # A view is saved from its page, with the filters it shows ("Save this view").
        return False

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and _visible(request, obj)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or services.saved_view_may_change(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or services.saved_view_may_change(request.user, obj))

    def save_model(self, request, obj, form, change):
        changes = {
            name: form.cleaned_data[name] for name in CHANGE_FIELDS if name in form.changed_data
        }
        try:
            services.saved_view_update(view=obj, by=request.user, **changes)
        except SavedViewError as error:  # changed meanwhile by someone else
            raise PermissionDenied(str(error)) from None

    def delete_model(self, request, obj):
        try:
            services.saved_view_delete(view=obj, by=request.user)
        except SavedViewError as error:
            raise PermissionDenied(str(error)) from None

    def delete_queryset(self, request, queryset):
        # Each through the service (its check, its history); the admin has checked every
        # one of them with has_delete_permission before asking.
        for view in queryset:
            self.delete_model(request, view)

    @display(description="Filters")
    def filters(self, obj):
        return " · ".join(f"{name}={value}" for name, value in QueryDict(obj.query).items()) or "—"

    @display(description="Shared", boolean=True, ordering="shared")
    def shared_badge(self, obj):
        return obj.shared

    @display(description="Owner", ordering="owner__username")
    def owner_name(self, obj):
        return obj.owner.get_full_name() or obj.owner.get_username()

    @display(description="Open")
    def open(self, obj):
        if obj.page not in PAGES:
            return "—"
        return format_html('<a href="{}">Open</a>', view_url(obj))

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("save/", view(saved_view_save_view), name="opsdesk_savedview_save"),
            path("sidebar/", view(saved_view_sidebar_view), name="opsdesk_savedview_sidebar"),
            *super().get_urls(),
        ]


@require_POST
def saved_view_save_view(request):
    """ "Save this view" on the queue and the inbox: the page's current filters under a
    name, personal or shared; then the view opens. A refusal goes back to the page with
    the reason, its filters as they were."""
    if not request.user.has_perm(services.ADD):
        raise PermissionDenied
    key = request.POST.get("page", "")
    back = back_redirect(
        request, PAGES[key].path if key in PAGES else reverse("admin:opsdesk_savedview_changelist")
    )
    shared = request.POST.get("shared") in ("on", "true", "1")
    try:
        saved = services.saved_view_save(
            by=request.user,
            page=key,
            name=request.POST.get("name", ""),
            query=request.POST.get("query", ""),
            shared=shared,
        )
    except SavedViewError as error:
        report_refusal(request, error, lead="Not saved.")
        return back
    messages.success(
        request,
        format_html(
            "Saved the view “{}”{}: it is in the sidebar under {}.",
            saved.name,
            " for everyone who sees this page" if saved.shared else "",
            saved.get_page_display(),
        ),
    )
    return HttpResponseRedirect(view_url(saved))


@require_GET
def saved_view_sidebar_view(request):
    """The sidebar's entries under the queue and the inbox: the person's views with their
    counts, the one ``?here=`` (the page the sidebar is on) shows marked current. A
    fragment of HTML for opsdesk/static/opsdesk/saved_views.js, in a fixed number of
    queries (``saved_view_counts``)."""
    by_page = selectors.saved_views_for_sidebar(user=request.user)
    counts = selectors.saved_view_counts(
        views=[view for views in by_page.values() for view in views], request=request
    )
    here_path, _, here_query = request.GET.get("here", "").partition("?")
    groups = []
    for key, views in by_page.items():
        if not views:
            continue
        page = PAGES[key]
        current = (
            selectors.current_view(views, key, QueryDict(here_query))
            if here_path == page.path
            else None
        )
        groups.append(
            {
                "path": page.path,
                "label": page.label,
                "views": [
                    {
                        "view": view,
                        "url": view_url(view),
                        "count": selectors.count_label(counts.get(view.pk)),
                        "empty": counts.get(view.pk) == 0,
                        "current": view == current,
                    }
                    for view in views
                ],
            }
        )
    return TemplateResponse(request, "opsdesk/saved_views/sidebar.html", {"groups": groups})
