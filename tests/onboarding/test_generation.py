"""Generating a contract's checklist: which tasks, with which text, owner and due date."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from audit.context import acting_as
from customers.models import Contract
from kit import roles
from onboarding import signals, tasks
from onboarding.models import Checklist, ChecklistTask
from onboarding.services import checklist_generate
from onboarding.tasks import checklists_sweep
from tests.checklists import new_contract, new_customer
from tests.personas import staff_user
from tests.publishing import publish_thread_done

pytestmark = pytest.mark.django_db


def rows(checklist):
    return [
        (t.title, t.text, t.owner.username if t.owner else None, t.due_date, t.state)
        for t in checklist.tasks.order_by("position")
    ]


def test_a_growth_contract_with_sso_and_crm_gets_its_three_tasks_filled_in(
    templates, acme, agent, ops_lead
):
    checklist = checklist_generate(contract=acme.contracts.get())

    assert rows(checklist) == [
        (
            "Kick-off call with Acme Corp",
            "Call Pia Primary <pia@acme.test> to plan the rollout of 50 seats (Growth).",
            "alice",
            dt.date(2026, 1, 3),
            "open",
        ),
        (
            "Configure SSO",
            "Set up single sign-on for Acme Corp with Tom Tech <tom@acme.test>.",
            "sam",
            dt.date(2026, 1, 8),
            "open",
        ),
        (
            "Link CRM record CRM-1001",
            "Sync Single sign-on, CRM sync for tenant acme-7f3a.",
            "olga",
            dt.date(2026, 1, 6),
            "open",
        ),
    ]
    assert checklist.customer == acme
    assert checklist.completed_at is None
    task = checklist.tasks.get(title="Configure SSO")
    assert task.template_item == templates["sso"] and task.role == "support"


def test_an_enterprise_contract_gets_the_seat_plan_and_enterprise_items(templates, ops_lead):
    globex = new_customer("Globex")
    contract = new_contract(globex, plan=Contract.Plan.ENTERPRISE, seats=250)

    checklist = checklist_generate(contract=contract)

    # Items in template name order: "Enterprise extras" before "Standard onboarding".
    assert rows(checklist) == [
        ("Security review", "Starts 1 Mar 2026.", "olga", dt.date(2026, 3, 22), "open"),
        (
            "Kick-off call with Globex",
            "Call (no primary contact) to plan the rollout of 250 seats (Enterprise).",
            None,  # no account manager: unassigned, not someone's by accident
            dt.date(2026, 3, 3),
            "open",
        ),
        (
            "Train admins for 250 seats",
            "Two sessions, scheduled by (no account manager).",
            None,
            dt.date(2026, 3, 15),
            "open",
        ),
        ("Write the success plan", "", None, dt.date(2026, 3, 11), "open"),
    ]


def test_a_small_starter_contract_gets_only_the_unconditional_items(templates, manager):
    initech = new_customer("Initech", manager, crm_id="CRM-7")
    contract = new_contract(
        initech, seats=100, integrations=[Contract.Integration.DATA_IMPORT]
    )  # 100 is not above the threshold of 100

    checklist = checklist_generate(contract=contract)

    assert [t[0] for t in rows(checklist)] == ["Kick-off call with Initech"]
    assert checklist.tasks.get().owner == manager


def test_seats_above_the_threshold_add_the_training(templates, manager):
    contract = new_contract(new_customer("Hooli", manager), seats=101)
    titles = [t[0] for t in rows(checklist_generate(contract=contract))]
    assert titles == ["Kick-off call with Hooli", "Train admins for 101 seats"]


def test_support_tasks_go_to_the_support_member_with_the_fewest_open_tasks(templates, manager):
    sam = staff_user("sam", roles.SUPPORT)
    zoe = staff_user("zoe", roles.SUPPORT)
    staff_user("yan", roles.SUPPORT, is_active=False)
    first = new_contract(new_customer("One", manager), integrations=["sso"])
    second = new_contract(new_customer("Two", manager), integrations=["sso"])

    checklist_generate(contract=first)
    checklist_generate(contract=second)

    assert first.checklist.tasks.get(role="support").owner == sam
    assert second.checklist.tasks.get(role="support").owner == zoe


def test_generating_twice_adds_nothing(templates, acme, agent, ops_lead):
    contract = acme.contracts.get()
    first = checklist_generate(contract=contract)
    history = Checklist.history.count() + ChecklistTask.history.count()

    second = checklist_generate(contract=contract)

    assert second == first
    assert Checklist.objects.count() == 1
    assert ChecklistTask.objects.count() == 3
    assert Checklist.history.count() + ChecklistTask.history.count() == history


def test_a_contract_that_is_not_active_gets_no_checklist(templates, manager):
    contract = new_contract(new_customer("Draft Co", manager), status=Contract.Status.DRAFT)
    assert checklist_generate(contract=contract) is None
    assert not Checklist.objects.exists()


def test_a_template_without_applicable_items_completes_at_activation(manager):
    contract = new_contract(new_customer("Empty", manager))
    checklist = checklist_generate(contract=contract)
    assert checklist.tasks.count() == 0
    assert checklist.completed_at == checklist.activated_at


def test_activation_time_is_when_the_contract_became_active(templates, manager):
    t0 = dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(t0, tick=False):
        contract = new_contract(new_customer("Later", manager), status=Contract.Status.DRAFT)
    with time_machine.travel(t0 + dt.timedelta(days=3), tick=False), acting_as("test"):
        contract.status = Contract.Status.ACTIVE
        contract.save()
    with time_machine.travel(t0 + dt.timedelta(days=3, minutes=1), tick=False):
        checklist = checklist_generate(contract=contract)
    assert checklist.activated_at == t0 + dt.timedelta(days=3)


def test_the_task_generates_with_history_naming_it(templates, acme, agent, ops_lead):
    contract = acme.contracts.get()

    tasks.checklist_generate.apply(args=[contract.pk])
    tasks.checklist_generate.apply(args=[contract.pk])  # a second delivery: nothing more

    checklist = Checklist.objects.get(contract=contract)
    assert checklist.tasks.count() == 3
    assert [h.history_actor for h in checklist.history.all()] == ["task:checklist_generate"]
    assert set(ChecklistTask.history.values_list("history_actor", "history_type").distinct()) == {
        ("task:checklist_generate", "+")
    }


@pytest.fixture
def enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(signals, "publish_after_commit", lambda *args: calls.append(args))
    return calls


def test_activating_a_contract_enqueues_generation(manager, enqueued):
    contract = new_contract(new_customer("Soon", manager), status=Contract.Status.DRAFT)
    assert enqueued == []
    with acting_as("test"):
        contract.status = Contract.Status.ACTIVE
        contract.save()
    assert enqueued == [("onboarding.checklist_generate", contract.pk)]


def test_creating_an_active_contract_enqueues_generation(manager, enqueued):
    contract = new_contract(new_customer("Now", manager))
    assert enqueued == [("onboarding.checklist_generate", contract.pk)]


def test_a_scope_change_of_an_active_contract_enqueues_a_sync(manager, enqueued):
    contract = new_contract(new_customer("Grows", manager))
    enqueued.clear()
    loaded = Contract.objects.get(pk=contract.pk)
    with acting_as("test"):
        loaded.monthly_fee += 1  # not scope: nothing to do
        loaded.save()
        assert enqueued == []
        loaded.integrations = ["sso"]
        loaded.save()
        loaded.seats = 20
        loaded.save()
        loaded.status = Contract.Status.ENDED
        loaded.save()  # an ended contract's checklist is left as it was
    assert enqueued == [
        ("onboarding.checklist_sync", contract.pk),
        ("onboarding.checklist_sync", contract.pk),
    ]


def test_the_enqueue_waits_for_the_commit(manager, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: sent.append((name, args)))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        contract = new_contract(new_customer("Committed", manager))
        assert sent == []
    publish_thread_done()  # the publish thread has run
    assert len(callbacks) == 1
    assert sent == [("onboarding.checklist_generate", [contract.pk])]


def test_the_sweep_generates_for_recent_activations_whose_queueing_was_lost(
    templates, manager, enqueued
):
    t0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(t0, tick=False):
        old = new_contract(new_customer("Onboarded long ago", manager))
    with time_machine.travel(t0 + dt.timedelta(days=20), tick=False):
        lost = new_contract(new_customer("Broker was down", manager))
        draft = new_contract(new_customer("Not yet", manager), status=Contract.Status.DRAFT)
    assert not Checklist.objects.exists()  # nothing ran: the queueing was "lost"

    with time_machine.travel(t0 + dt.timedelta(days=20, hours=2), tick=False):
        assert checklists_sweep.apply().get() == 1
        assert checklists_sweep.apply().get() == 0  # idempotent

    assert list(Checklist.objects.values_list("contract", flat=True)) == [lost.pk]
    assert not Checklist.objects.filter(contract__in=[old, draft]).exists()
    assert Checklist.history.get().history_actor == "task:checklists_sweep"
