"""A contract's scope changes: the checklist follows without losing work already done."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.context import acting_as
from customers.models import Contract
from onboarding import tasks
from onboarding.models import Checklist, ChecklistTask
from onboarding.services import checklist_generate, checklist_sync, checklist_task_done

pytestmark = pytest.mark.django_db


def states(checklist):
    return {t.title: t.state for t in checklist.tasks.all()}


def change(contract, **fields):
    with acting_as("test:fixture"):
        for name, value in fields.items():
            setattr(contract, name, value)
        contract.save()


@pytest.fixture
def contract(templates, acme, agent, ops_lead):
    contract = acme.contracts.get()
    checklist_generate(contract=contract)
    return contract


def test_items_that_now_apply_are_added(contract, manager):
    change(contract, seats=150)

    checklist = checklist_sync(contract=contract)

    training = checklist.tasks.get(title="Train admins for 150 seats")
    assert (training.state, training.owner, training.due_date) == (
        "open",
        manager,
        dt.date(2026, 1, 15),
    )
    assert training.position == 3  # after the three first tasks
    assert checklist.tasks.count() == 4


def test_a_plan_change_adds_the_plans_items_and_template(contract):
    change(contract, plan=Contract.Plan.ENTERPRISE)

    checklist = checklist_sync(contract=contract)

    assert states(checklist) == {
        "Kick-off call with Acme Corp": "open",
        "Configure SSO": "open",
        "Link CRM record CRM-1001": "open",
        "Write the success plan": "open",
        "Security review": "open",
    }


def test_open_tasks_that_no_longer_apply_become_not_applicable_and_are_kept(contract):
    change(contract, integrations=["sso"])

    checklist = checklist_sync(contract=contract)

    crm = checklist.tasks.get(title="Link CRM record CRM-1001")
    assert crm.state == "not_applicable"
    assert (crm.done_by, crm.done_at) == (None, None)
    latest = crm.history.first()
    assert latest.history_change_reason == (
        "no longer applies after a change of the contract's scope"
    )
    assert checklist.tasks.count() == 3


def test_done_tasks_are_never_touched(contract, agent):
    sso = ChecklistTask.objects.get(title="Configure SSO")
    with acting_as("sam", user=agent):
        checklist_task_done(task=sso, user=agent)
    done_at = ChecklistTask.objects.get(pk=sso.pk).done_at
    history = sso.history.count()
    change(contract, integrations=[], seats=5)

    checklist_sync(contract=contract)

    sso.refresh_from_db()
    assert (sso.state, sso.done_by, sso.done_at) == ("done", agent, done_at)
    assert sso.history.count() == history


def test_a_not_applicable_task_that_applies_again_is_reopened(contract):
    crm = ChecklistTask.objects.get(title="Link CRM record CRM-1001")
    change(contract, integrations=["sso"])
    checklist_sync(contract=contract)
    change(contract, integrations=["sso", "crm_sync"])

    checklist = checklist_sync(contract=contract)

    crm.refresh_from_db()
    assert crm.state == "open"
    assert checklist.tasks.count() == 3  # the same task, not a second one
    assert crm.history.first().history_change_reason == (
        "applies again after a change of the contract's scope"
    )


def test_syncing_twice_changes_nothing(contract):
    change(contract, integrations=["sso"], seats=150)
    checklist_sync(contract=contract)
    before = states(Checklist.objects.get())
    history = ChecklistTask.history.count() + Checklist.history.count()

    checklist_sync(contract=contract)

    assert states(Checklist.objects.get()) == before
    assert ChecklistTask.history.count() + Checklist.history.count() == history


def test_a_completed_checklist_reopens_when_a_task_is_added(contract, agent):
    for task in ChecklistTask.objects.all():
        with acting_as("sam", user=agent):
            checklist_task_done(task=task, user=agent)
    checklist = Checklist.objects.get()
    assert checklist.completed_at == max(t.done_at for t in checklist.tasks.all())
    change(contract, seats=150)

    checklist_sync(contract=contract)

    checklist.refresh_from_db()
    assert checklist.completed_at is None


def test_the_last_open_task_becoming_not_applicable_completes_the_checklist(contract, agent):
    for title in ("Kick-off call with Acme Corp", "Configure SSO"):
        with acting_as("sam", user=agent):
            checklist_task_done(task=ChecklistTask.objects.get(title=title), user=agent)
    change(contract, integrations=["sso"])

    checklist = checklist_sync(contract=contract)

    last_done = checklist.tasks.get(title="Configure SSO").done_at
    assert checklist.completed_at == last_done


def test_an_ended_contract_is_left_as_it_was(contract):
    change(contract, status=Contract.Status.ENDED, integrations=[])
    history = ChecklistTask.history.count()

    checklist_sync(contract=contract)

    assert set(states(Checklist.objects.get()).values()) == {"open"}
    assert ChecklistTask.history.count() == history


def test_a_sync_of_a_contract_without_checklist_generates_it(templates, acme, agent, ops_lead):
    contract = acme.contracts.get()
    tasks.checklist_sync.apply(args=[contract.pk])
    checklist = Checklist.objects.get(contract=contract)
    assert checklist.tasks.count() == 3
    assert checklist.history.get().history_actor == "task:checklist_sync"


def test_inactive_templates_add_nothing_on_sync(contract, templates):
    change(contract, seats=151)
    checklist = checklist_sync(contract=contract)
    assert not checklist.tasks.filter(template_item=templates["retired"]).exists()
