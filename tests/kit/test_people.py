"""kit.people: people by name, picked from active staff without the users' admin, and
linked only where the person looking may open the page."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from audit.admin import AuditedModelAdmin
from audit.context import acting_as
from customers.models import Customer
from kit import roles
from kit.people import actor_name, admin_link, person_html, person_name
from onboarding.models import ChecklistTask
from support.models import Ticket, TriageRule
from tests import builders
from tests.personas import staff_user

pytestmark = pytest.mark.django_db

PEOPLE = reverse("admin:auth_user_people")


def people(client, model: str, field: str, term: str = "") -> list[dict]:
    app_label, model_name = model.split(".")
    query = {"app_label": app_label, "model_name": model_name, "field_name": field}
    response = client.get(PEOPLE, {**query, "term": term})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_a_person_reads_as_their_full_name_else_their_username():
    assert person_name(User(username="asmith", first_name="Alice", last_name="Smith")) == (
        "Alice Smith"
    )
    assert person_name(User(username="asmith", first_name=" ", last_name="")) == "asmith"
    assert person_name(None) == ""


def test_who_made_a_history_row_reads_as_a_name_and_a_system_actor_as_its_label():
    alice = User(username="asmith", first_name="Alice", last_name="Smith")
    assert actor_name("asmith", alice) == "Alice Smith"
    assert actor_name("task:reconciliation_run for asmith", alice) == (
        "task:reconciliation_run for Alice Smith"
    )
    assert actor_name("asmith", User(username="asmith")) == "asmith"  # no name recorded
    assert actor_name("webhook:msg_1", None) == "webhook:msg_1"
    assert actor_name("command:seed_demo", alice) == "command:seed_demo"


def test_support_picks_a_rule_target_from_active_staff_by_name_without_the_users_admin(
    client, agent, manager
):
    staff_user("gone", roles.SUPPORT, is_active=False)
    User.objects.create_user(username="customer-login", first_name="Carl")  # not staff
    client.force_login(agent)

    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert people(client, "support.triagerule", "assign_to") == [
        {"id": str(manager.pk), "text": "Alice"},
        {"id": str(agent.pk), "text": "Sam"},
    ]
    assert people(client, "support.triagerule", "assign_to", "sam@opsdesk") == [
        {"id": str(agent.pk), "text": "Sam"}
    ]


def test_the_ticket_pages_assignee_autocomplete_answers_support(client, agent, ops_lead):
    client.force_login(agent)
    assert [r["text"] for r in people(client, "support.ticket", "assignee")] == ["Olga", "Sam"]


def test_every_person_field_of_every_admin_answers_whoever_may_view_its_model(
    client, agent, manager, ops_lead
):
    fields = [
        (model, field.name)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, AuditedModelAdmin)
        for field in model._meta.get_fields()
        if getattr(field, "remote_field", None)
        and field.remote_field.model is User
        and not field.auto_created
    ]
    assert (Ticket, "assignee") in fields and (Customer, "account_manager") in fields
    for persona in (agent, manager, ops_lead):
        client.force_login(persona)
        for model, name in fields:
            request = type("Request", (), {"user": persona})
            if not admin.site._registry[model].has_view_permission(request):
                continue
            texts = [r["text"] for r in people(client, model._meta.label_lower, name)]
            assert texts == ["Alice", "Olga", "Sam"], (persona, model, name)


def test_the_people_autocomplete_refuses_what_is_not_a_person_field_or_not_viewable(
    client, agent, outsider
):
    client.force_login(agent)
    not_person = {"app_label": "support", "model_name": "ticket", "field_name": "customer"}
    assert client.get(PEOPLE, not_person).status_code == 403
    assert client.get(PEOPLE, {"app_label": "auth", "model_name": "nope"}).status_code == 403
    # Users' own groups: not a model the admin shows any role.
    groups = {"app_label": "auth", "model_name": "user", "field_name": "groups"}
    assert client.get(PEOPLE, groups).status_code == 403
    client.force_login(outsider)
    ticket = {"app_label": "support", "model_name": "ticket", "field_name": "assignee"}
    assert client.get(PEOPLE, ticket).status_code == 302  # to the sign-in page


def test_pickers_lists_and_filters_name_people(client, agent, ops_lead, superuser):
    agent.last_name = "Stone"
    agent.save()
    with acting_as("test:fixture"):
        ticket = builders.ticket(assignee=agent)
        TriageRule.objects.create(name="VIP", assign_to=agent)
    client.force_login(superuser)

    tickets = client.get(reverse("admin:support_ticket_changelist")).content.decode()
    assert "Sam Stone" in tickets
    assert ">sam<" not in tickets
    rules = client.get(reverse("admin:support_triagerule_changelist")).content.decode()
    assert "Sam Stone" in rules
    tasks = client.get(reverse("admin:onboarding_checklisttask_changelist")).content.decode()
    assert tasks.count("Sam Stone") == 0  # no task is Sam's, the filter lists only owners
    page = client.get(reverse("admin:support_ticket_change", args=[ticket.pk])).content.decode()
    assert "Sam Stone" in page
    rule = TriageRule.objects.get()
    form = client.get(reverse("admin:support_triagerule_change", args=[rule.pk])).content.decode()
    assert f'<option value="{agent.pk}" selected>Sam Stone</option>' in form
    assert "auth/user/people/" in form
    assert ChecklistTask  # the onboarding owner's autocomplete is covered by the walk above


def test_a_link_to_a_page_the_viewer_may_not_open_is_text(agent, manager, superuser):
    manager.last_name = "Ames"
    assert admin_link(agent, manager) == "Alice Ames"
    assert admin_link(superuser, manager) == (
        f'<a href="/admin/auth/user/{manager.pk}/change/" class="text-link">Alice Ames</a>'
    )
    assert person_html(agent, manager) == (
        'Alice Ames · <a href="mailto:alice@opsdesk.test" class="text-link">alice@opsdesk.test</a>'
    )
    assert person_html(agent, None) == "nobody"
    evil = User(username="x", first_name="<b>", email="")
    assert person_html(agent, evil) == "&lt;b&gt;"
