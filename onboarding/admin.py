from django import forms
from django.contrib import admin
from django.db.models import Count
from django.urls import path
from django.utils import timezone
from unfold.admin import StackedInline
from unfold.contrib.filters.admin import AutocompleteSelectFilter
from unfold.decorators import display

from audit.admin import AuditedModelAdmin, choice_badge
from kit.service_owned import service_owned
from onboarding import admin_views
from onboarding.access import user_may_work_onboarding_task
from onboarding.models import Checklist, ChecklistTask, ChecklistTemplate, TemplateItem
from onboarding.selectors import with_progress


class TemplateItemInline(StackedInline):
    model = TemplateItem
    extra = 0
    fields = [
        "title",
        "text",
        "role",
        "due_offset_days",
        "plan",
        "integration",
        "seats_above",
        "position",
    ]
    ordering = ["position", "pk"]
    formfield_overrides = {
        TemplateItem._meta.get_field("text").__class__: {
            "widget": forms.Textarea(attrs={"rows": 2})
        }
    }


@admin.register(ChecklistTemplate)
class ChecklistTemplateAdmin(AuditedModelAdmin):
    """Templates are data: ops leads change checklists here, without a deploy. An item
    whose text names a placeholder that does not exist is refused when saved."""

    list_display = ["name", "plan_display", "active", "item_count", "updated_at"]
    list_filter = ["active", "plan"]
    search_fields = ["name", "items__title"]
    inlines = [TemplateItemInline]
    readonly_fields = ["created_at", "updated_at"]
    fields = ["name", "description", "plan", "active", "created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_items=Count("items"))

    @display(description="Plan", ordering="plan")
    def plan_display(self, obj):
        return obj.get_plan_display() or "every plan"

    @display(description="Items", ordering="_items")
    def item_count(self, obj):
        return obj._items


STATE_COLORS = {
    ChecklistTask.State.OPEN: "warning",
    ChecklistTask.State.DONE: "success",
    ChecklistTask.State.NOT_APPLICABLE: "info",
}


@admin.register(Checklist)
class ChecklistAdmin(AuditedModelAdmin):
    """Checklists are generated (onboarding.services); their tasks are worked on the
    customer page and in "My onboarding tasks"."""

    list_display = [
        "customer",
        "contract",
        "progress",
        "overdue",
        "activated_at",
        "completed_at",
        "time_to_onboard_display",
    ]
    list_select_related = ["customer", "contract__customer"]
    list_filter = [("customer", AutocompleteSelectFilter), "completed_at"]
    list_filter_submit = True
    search_fields = ["customer__name", "customer__external_id"]
    change_form_outer_after_template = "onboarding/checklist_panel.html"

    def get_queryset(self, request):
        return with_progress(super().get_queryset(request), today=timezone.localdate())

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "overview/",
                self.admin_site.admin_view(admin_views.OverviewView.as_view(model_admin=self)),
                name="onboarding_checklist_overview",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from onboarding.selectors import customer_checklists

        checklist = self.get_object(request, object_id)
        if checklist is not None:
            progress = [
                p
                for p in customer_checklists(customer=checklist.customer)
                if p.checklist.pk == checklist.pk
            ]
            extra_context = {
                **(extra_context or {}),
                "onboarding": progress,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @display(description="Done")
    def progress(self, obj):
        return f"{obj.done_count} of {obj.done_count + obj.open_count}"

    @display(description="Overdue")
    def overdue(self, obj):
        return obj.overdue_count or "—"

    @display(description="Time to onboard")
    def time_to_onboard_display(self, obj):
        from django.utils.timesince import timesince

        if obj.completed_at is None:
            return "in progress"
        return timesince(obj.activated_at, obj.completed_at, depth=2)


@admin.register(ChecklistTask)
class ChecklistTaskAdmin(AuditedModelAdmin):
    list_display = [
        "title",
        "customer",
        "role",
        "owner",
        "due_date",
        "state_badge",
        "done_by",
        "done_at",
    ]
    list_select_related = ["checklist__customer", "owner", "done_by"]
    list_filter = ["state", "role", ("owner", admin.RelatedOnlyFieldListFilter), "due_date"]
    search_fields = ["title", "checklist__customer__name"]
    autocomplete_fields = ["owner"]
    # Only who does it and by when are edited here; done and reopen are buttons.
    fields = [
        "checklist",
        "title",
        "text",
        "role",
        "owner",
        "due_date",
        "state",
        "done_by",
        "done_at",
        "template_item",
    ]
    readonly_fields = service_owned(ChecklistTask)

    state_badge = choice_badge("state", STATE_COLORS)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # An account manager works the tasks of the customers they manage (onboarding.access).
        allowed = super().has_change_permission(request, obj)
        if not allowed or obj is None:
            return allowed
        return user_may_work_onboarding_task(request.user, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @display(description="Customer", ordering="checklist__customer__name")
    def customer(self, obj):
        return obj.checklist.customer

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path(
                "mine/",
                view(admin_views.MyTasksView.as_view(model_admin=self)),
                name="onboarding_checklisttask_mine",
            ),
            path(
                "<path:object_id>/done/",
                view(admin_views.task_done_view),
                name="onboarding_checklisttask_done",
            ),
            path(
                "<path:object_id>/reopen/",
                view(admin_views.task_reopen_view),
                name="onboarding_checklisttask_reopen",
            ),
            *super().get_urls(),
        ]
