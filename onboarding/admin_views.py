"""Onboarding's admin pages: my open tasks, the overview, and marking a task done."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from kit.admin import AdminListView, back_redirect, report_refusal
from kit.params import object_or_404
from onboarding import selectors, services
from onboarding.access import user_may_work_onboarding_task
from onboarding.models import ChecklistTask


def _task_action(request, object_id: str, action) -> HttpResponseRedirect:
    if not request.user.has_perm("onboarding.change_checklisttask"):
        raise PermissionDenied
    task = object_or_404(
        ChecklistTask, object_id, ChecklistTask.objects.select_related("checklist")
    )
    if not user_may_work_onboarding_task(request.user, task):
        raise PermissionDenied  # an account manager's rights stop at their customers
    back = back_redirect(
        request,
        reverse("admin:customers_customer_change", args=[task.checklist.customer_id])
        + "#onboarding",
    )
    try:
        message = action(task)
    except services.OnboardingError as error:
        report_refusal(request, error)
    else:
        messages.success(request, message)
    return back


@require_POST
def task_done_view(request, object_id: str):
    """The "Mark done" button of a task (customer page, my tasks)."""
    return _task_action(
        request, object_id, lambda task: services.checklist_task_done(task=task, user=request.user)
    )


@require_POST
def task_reopen_view(request, object_id: str):
    """The "Reopen" button of a done task: a done mark made by mistake is undone."""
    return _task_action(
        request, object_id, lambda task: services.checklist_task_reopen(task=task, by=request.user)
    )


class MyTasksView(AdminListView):
    """The signed-in person's open onboarding tasks, most urgent first."""

    title = "My onboarding tasks"
    permission_required = ("onboarding.view_checklisttask",)
    template_name = "onboarding/my_tasks.html"

    def get_queryset(self):
        return selectors.open_tasks(owner=self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        today = timezone.localdate()
        for task in context["object_list"]:
            task.overdue = task.is_overdue(today)
        context.update(
            today=today,
            can_change=self.request.user.has_perm("onboarding.change_checklisttask"),
        )
        return context


class OverviewView(AdminListView):
    """Time to onboard (median over 90 days) and the checklists in progress."""

    title = "Onboarding overview"
    permission_required = ("onboarding.view_checklist",)
    template_name = "onboarding/overview.html"

    def get_queryset(self):
        return selectors.checklists_in_progress()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            stats=selectors.onboarding_stats(),
            window=selectors.MEDIAN_WINDOW_DAYS,
            rows=[selectors.progress_of(c) for c in context["object_list"]],
            completed=selectors.recently_completed(),
        )
        return context
