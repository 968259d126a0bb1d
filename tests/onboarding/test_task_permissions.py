"""Marking a task done or reopening it checks, inside the service, that the person may
work onboarding tasks (the view's check is not the only one); ``None`` is the system,
refused while a person's request is served."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from audit.context import acting_as, acting_as_user
from onboarding.models import ChecklistTask
from onboarding.services import (
    OnboardingPermissionError,
    checklist_generate,
    checklist_task_done,
    checklist_task_reopen,
)

pytestmark = pytest.mark.django_db
TODAY = dt.datetime(2026, 1, 7, 12, 0, tzinfo=dt.UTC)
FORBIDDEN = "You may not do this: it needs the permission onboarding.change_checklisttask"


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def task(templates, acme, agent, ops_lead) -> ChecklistTask:
    checklist = checklist_generate(contract=acme.contracts.get())
    return checklist.tasks.get(title="Configure SSO")


def everything() -> tuple:
    return (
        list(ChecklistTask.objects.order_by("pk").values_list("pk", "state", "done_by", "done_at")),
        ChecklistTask.history.count(),
    )


def test_someone_who_may_not_work_tasks_cannot_mark_one_done(task, outsider):
    before = everything()

    with acting_as_user(outsider), pytest.raises(OnboardingPermissionError) as refused:
        checklist_task_done(task=task, user=outsider)

    assert str(refused.value) == FORBIDDEN
    assert everything() == before


def test_someone_who_may_not_work_tasks_cannot_reopen_one(task, manager, outsider):
    with acting_as_user(manager):
        checklist_task_done(task=task, user=manager)
    before = everything()

    with acting_as_user(outsider), pytest.raises(OnboardingPermissionError) as refused:
        checklist_task_reopen(task=task, by=outsider)

    assert str(refused.value) == FORBIDDEN
    assert everything() == before


def test_a_persons_request_cannot_reopen_a_task_as_the_system(task, manager):
    with acting_as_user(manager):
        checklist_task_done(task=task, user=manager)
    before = everything()

    with acting_as_user(manager), pytest.raises(OnboardingPermissionError) as refused:
        checklist_task_reopen(task=task, by=None)

    assert str(refused.value) == (
        "A person's request must name who acts: only the system acts as nobody."
    )
    assert everything() == before


@pytest.mark.parametrize("persona", ["agent", "manager", "ops_lead"])
def test_every_role_that_works_tasks_reopens_one(request, task, manager, persona):
    user = request.getfixturevalue(persona)
    with acting_as_user(manager):
        checklist_task_done(task=task, user=manager)

    with acting_as_user(user):
        assert checklist_task_reopen(task=task, by=user) == "Reopened: “Configure SSO”."

    task.refresh_from_db()
    assert (task.state, task.done_by, task.done_at) == ("open", None, None)


def test_the_system_marks_a_task_done_as_nobody(task):
    with acting_as("command:seed_demo"):
        checklist_task_done(task=task, user=None)

    task.refresh_from_db()
    assert (task.state, task.done_by, task.done_at) == ("done", None, TODAY)
