"""The admin base every opsdesk model uses: the unfold theme, history with a readable
per-field diff and the actor, and changelists whose cost does not grow with the table."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.filters import (
    FieldListFilter,
    RelatedFieldListFilter,
    RelatedOnlyFieldListFilter,
)
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.http import HttpResponseNotAllowed
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.fields import UnfoldAdminReadonlyField

from audit.context import current_actor
from kit.admin import AdminParamsMixin, CappedCountPaginator
from kit.params import pk_or_404
from kit.people import actor_name, admin_link, is_person_field, person_html, person_name


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


class PeopleAutocompleteSelect(SafeAutocompleteSelect):
    """The autocomplete of a field naming a person: kit.people's view (active staff by
    name, allowed to whoever may view the form's model), not the users' admin's."""

    url_name = "%s:auth_user_people"


class PeopleAutocompleteSelectMultiple(SafeAutocompleteSelectMultiple):
    url_name = "%s:auth_user_people"


class _PersonChoices:
    """A changelist filter on a person field lists people by name (kit.people), in one
    query as Django's does."""

    def _people(self, field, request, model_admin):
        return field.remote_field.model._default_manager.complex_filter(
            field.get_limit_choices_to()
        )

    def field_choices(self, field, request, model_admin):
        people = self._people(field, request, model_admin)
        return [
            (person.pk, person_name(person))
            for person in people.order_by("first_name", "last_name", "username")
        ]


class PersonFieldListFilter(_PersonChoices, RelatedFieldListFilter):
    pass


class PersonOnlyFieldListFilter(_PersonChoices, RelatedOnlyFieldListFilter):
    def _people(self, field, request, model_admin):
        pk_qs = (
            model_admin.get_queryset(request)
            .distinct()
            .values_list(f"{self.field_path}__pk", flat=True)
        )
        return super()._people(field, request, model_admin).filter(pk__in=pk_qs)


# Every filter on a person field names people: registered ahead of Django's own.
FieldListFilter.register(
    lambda f: bool(getattr(f, "remote_field", None)) and is_person_field(f),
    PersonFieldListFilter,
    take_priority=True,
)


def _person_column(name: str, description: str):
    @admin.display(description=description, ordering=f"{name}__first_name")
    def column(obj):
        return person_name(getattr(obj, name)) or "-"

    column.__name__ = name
    return column


def _readonly_link(self, remote_field, remote_obj):
    """A read-only foreign key names its record, linked only when the person looking may
    open it (Django links it always, and the page refused them); a person reads as their
    name and email."""
    viewer = current_actor().user
    site = self.model_admin.admin_site
    if isinstance(remote_obj, remote_field.model) and is_person_field(remote_field.field):
        return person_html(viewer, remote_obj, site=site)
    return admin_link(viewer, remote_obj, site=site)


UnfoldAdminReadonlyField.get_admin_url = _readonly_link


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


class SystemMadeMixin:
    """For models whose rows only the system makes (events that arrived, imported
    invoices, reconciliation runs, usage reports): the admin adds none. So no "+" on the
    list, no "Save and add another", no "+" beside a field that picks one, and an empty
    list does not offer to create one. The model's add permission still gates the
    workflow that makes them (an import, a run), which asks ``may_make``."""

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def may_make(self, request) -> bool:
        """The person's model add permission: may they start what makes these rows."""
        return super().has_add_permission(request)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_make": self.may_make(request)}
        return super().changelist_view(request, extra_context)


class AuditedModelAdmin(AdminParamsMixin, SimpleHistoryAdmin, ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    history_list_display = ["actor"]
    history_list_per_page = 50

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        person = is_person_field(db_field)
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            widget = PeopleAutocompleteSelect if person else SafeAutocompleteSelect
            kwargs["widget"] = widget(db_field, self.admin_site, using=kwargs.get("using"))
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if person and field is not None:
            field.label_from_instance = person_name
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        person = is_person_field(db_field)
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            widget = PeopleAutocompleteSelectMultiple if person else SafeAutocompleteSelectMultiple
            kwargs["widget"] = widget(db_field, self.admin_site, using=kwargs.get("using"))
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if person and field is not None:
            field.label_from_instance = person_name
        return field

    def get_list_display(self, request):
        """A column of a person field shows their name (kit.people), not the username."""
        columns = []
        for column in super().get_list_display(request):
            field = _model_field(self.model, column) if isinstance(column, str) else None
            person = field is not None and field.many_to_one and is_person_field(field)
            if person and column not in self.list_editable:
                columns.append(_person_column(column, str(field.verbose_name).capitalize()))
            else:
                columns.append(column)
        return columns

    def get_list_filter(self, request):
        """A person field filtered on "related only" names people too."""
        filters = []
        for spec in super().get_list_filter(request):
            if (
                isinstance(spec, tuple | list)
                and spec[1] is RelatedOnlyFieldListFilter
                and is_person_field(_model_field(self.model, spec[0]))
            ):
                spec = (spec[0], PersonOnlyFieldListFilter)
            filters.append(spec)
        return filters

    @admin.display(description="Changed by")
    def actor(self, record) -> str:
        """Who made the version, as every page names them (a person by their name); the
        history page's "Changed by" (templates/simple_history/object_history_list.html)."""
        return actor_name(record.history_actor, record.history_user)

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


def _model_field(model, name: str):
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:  # a method, an admin attribute or a lookup path
        return None


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
