"""Onboarding reads shared by the customer page, the task pages, the overview and the
digest; each takes a fixed number of queries whatever the number of rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Aggregate, Count, DurationField, F, Prefetch, Q, QuerySet
from django.utils import timezone

from onboarding.models import Checklist, ChecklistTask

MEDIAN_WINDOW_DAYS = 90
OPEN = ChecklistTask.State.OPEN
DONE = ChecklistTask.State.DONE
NOT_APPLICABLE = ChecklistTask.State.NOT_APPLICABLE


class Median(Aggregate):
    """PostgreSQL's continuous median (``percentile_cont(0.5)``) of an interval."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


@dataclass
class ChecklistProgress:
    checklist: Checklist
    tasks: list[ChecklistTask] = field(default_factory=list)
    done: int = 0
    open: int = 0
    not_applicable: int = 0
    overdue: int = 0

    @property
    def applicable(self) -> int:
        return self.done + self.open

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.applicable) if self.applicable else 100


def with_progress(checklists: QuerySet[Checklist], *, today: dt.date) -> QuerySet[Checklist]:
    """Checklists annotated with their task counts (``done_count``, ``open_count``,
    ``na_count``, ``overdue_count``): one grouped query."""
    return checklists.annotate(
        done_count=Count("tasks", filter=Q(tasks__state=DONE)),
        open_count=Count("tasks", filter=Q(tasks__state=OPEN)),
        na_count=Count("tasks", filter=Q(tasks__state=NOT_APPLICABLE)),
        overdue_count=Count("tasks", filter=Q(tasks__state=OPEN, tasks__due_date__lt=today)),
    )


def progress_of(checklist: Checklist) -> ChecklistProgress:
    """From a checklist annotated by ``with_progress``."""
    return ChecklistProgress(
        checklist=checklist,
        done=checklist.done_count,
        open=checklist.open_count,
        not_applicable=checklist.na_count,
        overdue=checklist.overdue_count,
    )


def customer_checklists(*, customer, today: dt.date | None = None) -> list[ChecklistProgress]:
    """A customer's checklists, newest first, each with its tasks (owner, due date, who
    did it and when): two queries."""
    today = today or timezone.localdate()
    checklists = (
        Checklist.objects.filter(customer=customer)
        .select_related("contract")
        .prefetch_related(
            Prefetch(
                "tasks",
                queryset=ChecklistTask.objects.select_related("owner", "done_by").order_by(
                    "due_date", "position", "pk"
                ),
            )
        )
        .order_by("-activated_at")
    )
    result = []
    for checklist in checklists:
        progress = ChecklistProgress(checklist=checklist, tasks=list(checklist.tasks.all()))
        for task in progress.tasks:
            task.overdue = task.is_overdue(today)
            progress.overdue += task.overdue
            if task.state == DONE:
                progress.done += 1
            elif task.state == OPEN:
                progress.open += 1
            else:
                progress.not_applicable += 1
        result.append(progress)
    return result


def open_tasks(*, owner=None, today: dt.date | None = None) -> QuerySet[ChecklistTask]:
    """Open tasks by due date (a person's when ``owner`` is given), with their customer
    and contract."""
    tasks = ChecklistTask.objects.filter(state=OPEN).select_related(
        "checklist__customer", "checklist__contract", "owner"
    )
    if owner is not None:
        tasks = tasks.filter(owner=owner)
    return tasks.order_by("due_date", "checklist__customer__name", "position", "pk")


def overdue_tasks_for_manager(*, manager_id: int | None, date: dt.date) -> list[ChecklistTask]:
    """Open tasks past their due date on ``date`` of the customers a manager manages
    (``None``: customers without one), whoever owns them: one query."""
    return list(
        ChecklistTask.objects.filter(
            state=OPEN,
            due_date__lt=date,
            checklist__customer__account_manager_id=manager_id,
            checklist__contract__status="active",
        )
        .select_related("checklist__customer", "owner")
        .order_by("due_date", "checklist__customer__name", "position", "pk")
    )


@dataclass(frozen=True)
class OnboardingStats:
    median: dt.timedelta | None
    completed: int
    in_progress: int


def onboarding_stats(*, now: dt.datetime | None = None) -> OnboardingStats:
    """Median time to onboard (activation to last task done) of the checklists completed
    in the last 90 days, and how many are in progress: one query."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=MEDIAN_WINDOW_DAYS)
    stats = Checklist.objects.aggregate(
        median=Median(
            F("completed_at") - F("activated_at"),
            filter=Q(completed_at__gte=since, completed_at__lte=now),
        ),
        completed=Count("pk", filter=Q(completed_at__gte=since, completed_at__lte=now)),
        in_progress=Count("pk", filter=Q(completed_at__isnull=True)),
    )
    return OnboardingStats(**stats)


def checklists_in_progress(*, today: dt.date | None = None) -> QuerySet[Checklist]:
    today = today or timezone.localdate()
    return with_progress(
        Checklist.objects.filter(completed_at__isnull=True)
        .select_related("customer__account_manager", "contract")
        .order_by("activated_at", "pk"),
        today=today,
    )


def recently_completed(*, now: dt.datetime | None = None, limit: int = 10) -> list[Checklist]:
    now = now or timezone.now()
    since = now - dt.timedelta(days=MEDIAN_WINDOW_DAYS)
    return list(
        Checklist.objects.filter(completed_at__gte=since, completed_at__lte=now)
        .select_related("customer", "contract")
        .order_by("-completed_at")[:limit]
    )
