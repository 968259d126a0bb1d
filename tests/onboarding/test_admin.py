"""Onboarding in the admin: templates, the customer's checklist, my tasks, the overview,
per role, with the number of queries pinned."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from audit.context import acting_as
from onboarding.models import Checklist, ChecklistTask, ChecklistTemplate, TemplateItem
from onboarding.services import checklist_generate, checklist_task_done
from tests.checklists import new_contract, new_customer

pytestmark = pytest.mark.django_db
TODAY = dt.datetime(2026, 1, 7, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def checklist(templates, acme, agent, ops_lead):
    return checklist_generate(contract=acme.contracts.get())


def template_form(**item):
    data = {
        "name": "Data onboarding",
        "description": "",
        "plan": "",
        "active": "on",
        "items-TOTAL_FORMS": "1",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
    }
    fields = {
        "position": "1",
        "title": "Import for {customer}",
        "text": "Ask {primary_contact}.",
        "role": "ops",
        "due_offset_days": "5",
        "plan": "",
        "integration": "data_import",
        "seats_above": "",
        **item,
    }
    data.update({f"items-0-{name}": value for name, value in fields.items()})
    return data


def test_an_ops_lead_adds_a_template_with_items(client, ops_lead):
    client.force_login(ops_lead)
    response = client.post("/admin/onboarding/checklisttemplate/add/", template_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    item = TemplateItem.objects.get()
    assert (item.template.name, item.title, item.integration) == (
        "Data onboarding",
        "Import for {customer}",
        "data_import",
    )
    assert item.history.get().history_actor == "olga"


def test_an_unknown_placeholder_is_refused_when_saved_with_the_allowed_ones(client, ops_lead):
    client.force_login(ops_lead)
    response = client.post(
        "/admin/onboarding/checklisttemplate/add/", template_form(text="Hello {contact_name}")
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "Unknown placeholder {contact_name}. Allowed: {customer}, {tenant_id}" in content
    assert not ChecklistTemplate.objects.exists() and not TemplateItem.objects.exists()


def test_a_broken_brace_is_refused_with_how_to_write_one(client, ops_lead):
    client.force_login(ops_lead)
    response = client.post(
        "/admin/onboarding/checklisttemplate/add/", template_form(title="Import {customer")
    )
    assert "Write a literal brace as {{ or }}." in response.content.decode()
    assert not TemplateItem.objects.exists()


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_only_ops_leads_edit_templates(client, request, persona, templates):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/admin/onboarding/checklisttemplate/").status_code == 200
    assert (
        client.post("/admin/onboarding/checklisttemplate/add/", template_form()).status_code == 403
    )
    assert ChecklistTemplate.objects.count() == 3


def test_the_customer_page_shows_the_checklist_with_owner_due_and_overdue(
    client, agent, acme, checklist
):
    client.force_login(agent)
    content = client.get(f"/admin/customers/customer/{acme.pk}/change/").content.decode()
    assert 'data-testid="overview-onboarding"' in content
    assert "Kick-off call with Acme Corp" in content
    assert "Call Pia Primary &lt;pia@acme.test&gt; to plan the rollout of 50 seats" in content
    # On 7 Jan the kick-off (due 3 Jan) and the CRM link (due 6 Jan) are overdue.
    assert "0 of 3 done" in content and "2 overdue" in content
    assert content.count("od-task-overdue") == 2
    assert "overdue by 4\xa0days" in content and "overdue by 1\xa0day" in content
    assert content.count('data-testid="mark-done"') == 3


def test_the_customer_page_offers_no_buttons_to_who_may_only_view(
    client, superuser, acme, checklist
):
    from django.contrib.auth.models import Group

    viewer = superuser
    viewer.is_superuser = False
    viewer.save()
    viewer.groups.set([])
    viewer.user_permissions.set(
        Group.objects.get(name="Support").permissions.exclude(codename="change_checklisttask")
    )
    client.force_login(viewer)
    content = client.get(f"/admin/customers/customer/{acme.pk}/change/").content.decode()
    assert "Kick-off call with Acme Corp" in content
    assert 'data-testid="mark-done"' not in content
    task = checklist.tasks.first()
    assert client.post(f"/admin/onboarding/checklisttask/{task.pk}/done/").status_code == 403
    task.refresh_from_db()
    assert task.state == "open"


@pytest.mark.parametrize(
    "persona, name", [("agent", "sam"), ("manager", "alice"), ("ops_lead", "olga")]
)
def test_support_managers_and_ops_leads_mark_tasks_done(client, request, persona, name, checklist):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    task = checklist.tasks.get(title="Configure SSO")
    page = f"/admin/customers/customer/{checklist.customer_id}/change/"

    response = client.post(
        f"/admin/onboarding/checklisttask/{task.pk}/done/", {"next": page + "#onboarding"}
    )

    assert response.status_code == 302 and response["Location"] == page + "#onboarding"
    task.refresh_from_db()
    assert (task.state, task.done_by, task.done_at) == ("done", user, timezone.now())
    assert task.history.first().history_actor == name
    content = client.get(page).content.decode()
    assert "1 of 3 done" in content
    assert "Done: “Configure SSO”." in content


def test_marking_a_done_task_again_says_by_whom_and_changes_nothing(
    client, agent, manager, checklist
):
    task = checklist.tasks.get(title="Configure SSO")
    with acting_as("sam", user=agent):
        checklist_task_done(task=task, user=agent)
    history = task.history.count()
    client.force_login(manager)

    response = client.post(f"/admin/onboarding/checklisttask/{task.pk}/done/", follow=True)

    assert "Nothing changed. “Configure SSO” was already done by Sam on 7 Jan 2026 12:00." in (
        response.content.decode()
    )
    task.refresh_from_db()
    assert (task.done_by, task.history.count()) == (agent, history)


def test_an_outsider_cannot_mark_done(client, outsider, checklist):
    client.force_login(outsider)
    task = checklist.tasks.first()
    response = client.post(f"/admin/onboarding/checklisttask/{task.pk}/done/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    task.refresh_from_db()
    assert task.state == "open"


def test_reopening_a_done_task_reopens_the_checklist(client, agent, checklist):
    client.force_login(agent)
    for task in checklist.tasks.all():
        client.post(f"/admin/onboarding/checklisttask/{task.pk}/done/")
    checklist.refresh_from_db()
    assert checklist.completed_at == timezone.now()
    task = checklist.tasks.first()

    client.post(f"/admin/onboarding/checklisttask/{task.pk}/reopen/")

    task.refresh_from_db()
    checklist.refresh_from_db()
    assert (task.state, task.done_by, task.done_at) == ("open", None, None)
    assert checklist.completed_at is None


def my_tasks(client):
    return client.get("/admin/onboarding/checklisttask/mine/").content.decode()


def test_my_tasks_lists_only_my_open_tasks_most_urgent_first(client, manager, checklist, agent):
    other = new_contract(new_customer("Globex", manager), seats=150)
    checklist_generate(contract=other)
    with acting_as("alice", user=manager):
        checklist_task_done(
            task=ChecklistTask.objects.get(title="Train admins for 150 seats"), user=manager
        )
    client.force_login(manager)

    content = my_tasks(client)

    assert content.index("Kick-off call with Acme Corp") < content.index(
        "Kick-off call with Globex"
    )
    assert "Configure SSO" not in content  # Sam's
    assert "Train admins" not in content  # done
    assert "2 open tasks" in content
    assert "overdue by 4\xa0days" in content  # Acme's kick-off, due 3 Jan


def test_my_tasks_costs_the_same_for_2_tasks_and_6(
    client, manager, templates, django_assert_num_queries
):
    client.force_login(manager)
    contracts = [new_contract(new_customer(f"C{i}", manager), seats=150) for i in range(3)]
    checklist_generate(contract=contracts[0])  # 2 tasks for Alice
    my_tasks(client)
    with django_assert_num_queries(6):
        assert my_tasks(client).count('data-testid="task"') == 2
    for contract in contracts[1:]:
        checklist_generate(contract=contract)
    with django_assert_num_queries(6):
        assert my_tasks(client).count('data-testid="task"') == 6


def test_the_overview_shows_the_median_time_to_onboard_and_what_is_in_progress(
    client, ops_lead, manager, templates
):
    start = TODAY - dt.timedelta(days=30)
    durations = [dt.timedelta(days=d) for d in (2, 4, 10)]
    for i, duration in enumerate(durations):
        contract = new_contract(new_customer(f"Done {i}", manager))
        checklist = checklist_generate(contract=contract, activated_at=start)
        with acting_as("alice", user=manager):
            checklist_task_done(task=checklist.tasks.get(), user=manager, at=start + duration)
    old = checklist_generate(
        contract=new_contract(new_customer("Long ago", manager)),
        activated_at=start - dt.timedelta(days=200),
    )
    with acting_as("alice", user=manager):  # completed 100 days before "today": not counted
        checklist_task_done(task=old.tasks.get(), user=manager, at=TODAY - dt.timedelta(days=100))
    checklist_generate(contract=new_contract(new_customer("Busy", manager), seats=150))
    client.force_login(ops_lead)

    content = client.get("/admin/onboarding/checklist/overview/").content.decode()

    median = content.split('data-testid="median-time-to-onboard"')[1].split("</div>")[0]
    assert "<strong>4\xa0days</strong>" in median
    assert "over 3 completed checklists" in median
    assert content.count('data-testid="in-progress"') == 1
    assert "Busy" in content and "0 of 2 done" in content
    assert content.count('data-testid="completed"') == 3


def test_the_overview_costs_the_same_for_1_checklist_and_4(
    client, ops_lead, manager, templates, django_assert_num_queries
):
    client.force_login(ops_lead)
    checklist_generate(contract=new_contract(new_customer("C0")))  # no account manager
    client.get("/admin/onboarding/checklist/overview/")
    with django_assert_num_queries(8):
        client.get("/admin/onboarding/checklist/overview/")
    for i in range(1, 4):
        checklist_generate(contract=new_contract(new_customer(f"C{i}", manager), seats=150))
    with django_assert_num_queries(8):
        content = client.get("/admin/onboarding/checklist/overview/").content.decode()
    assert content.count('data-testid="in-progress"') == 4


def test_the_customer_page_costs_the_same_with_a_small_and_a_big_checklist(
    client, superuser, manager, templates
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    small = new_customer("Small", manager)
    checklist_generate(contract=new_contract(small))
    big = new_customer("Big", manager)
    for plan in ("starter", "enterprise"):
        checklist_generate(
            contract=new_contract(big, plan=plan, seats=300, integrations=["sso", "crm_sync"])
        )
    client.force_login(superuser)
    url = "/admin/customers/customer/{}/change/"
    client.get(url.format(small.pk))
    counts = []
    for customer in (small, big):
        with CaptureQueriesContext(connection) as queries:
            client.get(url.format(customer.pk))
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert Checklist.objects.filter(customer=big).count() == 2


@pytest.mark.parametrize("persona", ["agent", "manager", "ops_lead"])
def test_every_role_sees_the_onboarding_pages(client, request, persona, checklist):
    client.force_login(request.getfixturevalue(persona))
    for url in (
        "/admin/onboarding/checklisttask/mine/",
        "/admin/onboarding/checklist/overview/",
        "/admin/onboarding/checklist/",
        f"/admin/onboarding/checklist/{checklist.pk}/change/",
        "/admin/onboarding/checklisttask/",
        "/admin/onboarding/checklisttemplate/",
    ):
        assert client.get(url).status_code == 200, url
    assert "My onboarding tasks" in client.get("/admin/").content.decode()


def test_the_sidebar_offers_templates_to_everyone_who_may_view_them(agent):
    from django.test import RequestFactory

    from opsdesk.shell.admin_site import navigation

    request = RequestFactory().get("/admin/onboarding/checklisttask/mine/")
    request.user = agent
    [onboarding] = [g for g in navigation(request) if g["title"] == "Onboarding"]
    assert [(i["title"], i["active"]) for i in onboarding["items"]] == [
        ("My onboarding tasks", True),
        ("Onboarding overview", False),
        ("Checklist templates", False),
    ]
