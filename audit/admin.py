"""The admin base every opsdesk model uses: the unfold theme, history with a readable
per-field diff and the actor, and changelists whose cost does not grow with the table."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import ValidationError
from django.http import HttpResponseNotAllowed
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin
from unfold.decorators import display

from kit.admin import AdminParamsMixin, CappedCountPaginator
from kit.params import pk_or_404


class _ValidIdsOnly:
    """Django's autocomplete widgets look the submitted ids up to render the form again,
    so a posted ``account_manager=abc`` (invalid, and said so) crashed the page with a
    500. Ids that are not ids of the related model are left out of that lookup."""

    def optgroups(self, name, value, attr=None):
        opts = self.field.remote_field.model._meta
        target = opts.get_field(getattr(self.field.remote_field, "field_name", opts.pk.attname))

        def is_id(item) -> bool:
            try:
                target.get_prep_value(target.to_python(item))
            except (ValidationError, ValueError, TypeError):
                return False
            return True

        return super().optgroups(name, [item for item in value if is_id(item)], attr)


class SafeAutocompleteSelect(_ValidIdsOnly, AutocompleteSelect):
    pass


class SafeAutocompleteSelectMultiple(_ValidIdsOnly, AutocompleteSelectMultiple):
    pass


class RecordPageMixin:
    """For models whose rows change only through workflows: the object's page is the
    record, not a form. Without the change permission on the object, Django's admin shows
    it read-only and refuses a POST to it (403), writing nothing, not even an admin log
    entry; the model permission still gates the list's actions and the workflows, which
    check their own permissions."""

    def has_change_permission(self, request, obj=None):
        if obj is not None:
            return False
        return super().has_change_permission(request, obj)


class AuditedModelAdmin(AdminParamsMixin, SimpleHistoryAdmin, ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    history_list_display = ["actor"]
    history_list_per_page = 50

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelectMultiple(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="Actor")
    def actor(self, record) -> str:
        return record.history_actor

    # History is a record, not a way in. simple-history's version page saves a POSTed
    # form as the current row (its "Revert") having checked only the view permission and
    # none of this admin's rules; SIMPLE_HISTORY_REVERT_DISABLED only hides the button.
    # So the page only shows the version, read-only, to everyone, superusers included;
    # a revert, if ever wanted, is a service with its own permission.

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        # simple-history looks both ids up as typed: ``history/abc/`` was a 500.
        pk_or_404(self.model, unquote(object_id))
        pk_or_404(self.model.history.model, version_id)
        return super().history_form_view(request, object_id, version_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        pk_or_404(self.model, unquote(object_id))  # ``abc/history/`` was a 500
        return super().history_view(request, object_id, extra_context)

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def render_history_view(self, request, template, context, **kwargs):
        adminform = context.get("adminform")
        if adminform is not None:  # the version page: every field shown, none an input
            context = {
                **context,
                "adminform": helpers.AdminForm(
                    adminform.form,
                    adminform.fieldsets,
                    {},
                    flatten_fieldsets(adminform.fieldsets),
                    model_admin=self,
                ),
                "has_add_permission": False,
                "has_change_permission": False,
                "has_delete_permission": False,
            }
        return super().render_history_view(request, template, context, **kwargs)


def choice_badge(field: str, colors: dict[str, str], *, description: str = ""):
    """A list column showing a choice field as a coloured label (``colors``: value -> tone)."""

    @display(
        description=description or field.replace("_", " ").capitalize(),
        ordering=field,
        label=colors,
    )
    def badge(self, obj):
        return getattr(obj, field), getattr(obj, f"get_{field}_display")()

    return badge


def short_text(field: str, *, length: int = 80, description: str = ""):
    """A list column showing the start of a long text field, or "—" when it is empty."""

    @display(description=description or field.replace("_", " ").capitalize())
    def column(self, obj):
        text = getattr(obj, field)
        return (text[:length] + "…") if len(text) > length else (text or "—")

    return column
