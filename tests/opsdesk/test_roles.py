"""What each role can and cannot do (PRODUCT.md "Roles"); a denied action changes nothing."""

import pytest
from django.contrib.auth.models import Group

from audit.context import acting_as
from customers.models import Customer, Entitlement
from kit import roles
from support.models import Case, Ticket
from tests.records import populate

pytestmark = pytest.mark.django_db


# What migrations opsdesk.0001 to 0007 granted, dumped from a database freshly migrated
# with them (before the grants moved to kit.roles.GRANTS): 29 + 26 + 38 permissions. A
# database migrated before or after that move must end with exactly these.
MIGRATED_GRANTS = {
    roles.SUPPORT: {
        "billing.view_invoice",
        "billing.view_reconciliationrun",
        "customers.view_contact",
        "customers.view_contract",
        "customers.view_customer",
        "customers.view_entitlement",
        "customers.view_order",
        "customers.view_product",
        "customers.view_usagedaily",
        "onboarding.change_checklisttask",
        "onboarding.view_checklist",
        "onboarding.view_checklisttask",
        "onboarding.view_checklisttemplate",
        "onboarding.view_templateitem",
        "opsdesk.view_digestdelivery",
        "support.add_ticket",
        "support.add_triagecondition",
        "support.add_triagerule",
        "support.change_ticket",
        "support.change_triagecondition",
        "support.change_triagerule",
        "support.delete_triagecondition",
        "support.delete_triagerule",
        "support.view_case",
        "support.view_tag",
        "support.view_ticket",
        "support.view_triagecondition",
        "support.view_triagerule",
        "support.view_webhookevent",
    },
    roles.ACCOUNT_MANAGERS: {
        "billing.view_invoice",
        "billing.view_reconciliationrun",
        "customers.add_contact",
        "customers.add_contract",
        "customers.change_contact",
        "customers.change_contract",
        "customers.change_customer",
        "customers.view_contact",
        "customers.view_contract",
        "customers.view_customer",
        "customers.view_entitlement",
        "customers.view_order",
        "customers.view_product",
        "customers.view_usagedaily",
        "onboarding.change_checklisttask",
        "onboarding.view_checklist",
        "onboarding.view_checklisttask",
        "onboarding.view_checklisttemplate",
        "onboarding.view_templateitem",
        "opsdesk.view_digestdelivery",
        "support.view_case",
        "support.view_tag",
        "support.view_ticket",
        "support.view_triagecondition",
        "support.view_triagerule",
        "support.view_webhookevent",
    },
    roles.OPS_LEADS: {
        "billing.add_invoice",
        "billing.add_reconciliationrun",
        "billing.change_invoice",
        "billing.view_invoice",
        "billing.view_reconciliationrun",
        "customers.change_entitlement",
        "customers.change_order",
        "customers.migrate_account",
        "customers.transfer_entitlement",
        "customers.view_contact",
        "customers.view_contract",
        "customers.view_customer",
        "customers.view_entitlement",
        "customers.view_order",
        "customers.view_product",
        "customers.view_usagedaily",
        "onboarding.add_checklisttemplate",
        "onboarding.add_templateitem",
        "onboarding.change_checklisttask",
        "onboarding.change_checklisttemplate",
        "onboarding.change_templateitem",
        "onboarding.delete_checklisttemplate",
        "onboarding.delete_templateitem",
        "onboarding.view_checklist",
        "onboarding.view_checklisttask",
        "onboarding.view_checklisttemplate",
        "onboarding.view_templateitem",
        "opsdesk.change_digestdelivery",
        "opsdesk.view_digestdelivery",
        "support.add_case",
        "support.change_case",
        "support.change_webhookevent",
        "support.view_case",
        "support.view_tag",
        "support.view_ticket",
        "support.view_triagecondition",
        "support.view_triagerule",
        "support.view_webhookevent",
    },
}


def granted() -> dict[str, set[str]]:
    """The database's groups of the three roles and their permissions, as app_label.codename."""
    table = {}
    for group in Group.objects.filter(name__in=MIGRATED_GRANTS).prefetch_related(
        "permissions__content_type"
    ):
        table[group.name] = {
            f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()
        }
    return table


def customer_form(customer, **changes):
    data = {
        "name": customer.name,
        "external_id": customer.external_id,
        "status": customer.status,
        "account_manager": customer.account_manager_id or "",
        "crm_id": customer.crm_id,
    }
    return {**data, **changes}


def test_the_migration_creates_the_three_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {
        roles.SUPPORT,
        roles.ACCOUNT_MANAGERS,
        roles.OPS_LEADS,
    }


def test_the_migrations_grant_each_role_exactly_its_permissions():
    assert granted() == MIGRATED_GRANTS


@pytest.mark.parametrize("persona", ["agent", "manager", "ops_lead", "superuser"])
def test_every_role_reads_the_customer_page(client, request, customer, persona):
    client.force_login(request.getfixturevalue(persona))
    response = client.get(f"/admin/customers/customer/{customer.pk}/change/")
    assert response.status_code == 200
    assert b"Acme Corp" in response.content


def test_an_outsider_cannot_open_the_admin(client, outsider, customer):
    client.force_login(outsider)
    response = client.get(f"/admin/customers/customer/{customer.pk}/change/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_support_reads_customers_but_cannot_edit_them(client, agent, customer):
    client.force_login(agent)
    response = client.post(
        f"/admin/customers/customer/{customer.pk}/change/", customer_form(customer, name="Hacked")
    )
    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.name == "Acme Corp"
    assert customer.history.count() == 1


def test_support_works_tickets(client, agent, customer):
    with acting_as("test:fixture"):
        ticket = Ticket.objects.create(customer=customer, subject="Cannot log in")
    client.force_login(agent)
    # Priority, status and assignee are the ticket's actions (support.tickets).
    for action in (
        {"action": "priority", "priority": "high"},
        {"action": "status", "status": "pending"},
        {"action": "assign_me"},
    ):
        response = client.post(f"/admin/support/ticket/{ticket.pk}/act/", action)
        assert response.status_code == 302, response.content
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.status, ticket.assignee) == ("high", "pending", agent)
    assert ticket.history.latest().history_actor == "sam"


def test_support_cannot_resolve_cases(client, agent, customer):
    with acting_as("test:fixture"):
        case = Case.objects.create(kind="failed_fulfilment", customer=customer, summary="x")
    client.force_login(agent)
    response = client.get(f"/admin/support/case/{case.pk}/change/")
    assert response.status_code == 200
    assert not agent.has_perm("support.change_case")
    response = client.post(f"/admin/support/case/{case.pk}/change/", {"state": "waived"})
    assert response.status_code == 403
    case.refresh_from_db()
    assert case.state == "open"


def test_an_account_manager_edits_their_own_customer(client, manager, customer):
    client.force_login(manager)
    response = client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        customer_form(customer, name="Acme Corporation"),
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Acme Corporation"


def test_an_account_manager_cannot_edit_another_managers_customer(client, manager, other_manager):
    [bobs] = populate(1, manager=other_manager)
    client.force_login(manager)
    response = client.post(
        f"/admin/customers/customer/{bobs.pk}/change/", customer_form(bobs, name="Taken over")
    )
    assert response.status_code == 403
    bobs.refresh_from_db()
    assert bobs.name == "Customer 0"
    assert bobs.history.count() == 1


def test_an_account_manager_cannot_edit_another_managers_contract(client, manager, other_manager):
    [bobs] = populate(1, manager=other_manager)
    contract = bobs.contracts.get()
    client.force_login(manager)
    response = client.get(f"/admin/customers/contract/{contract.pk}/change/")
    assert response.status_code == 200  # may read it
    assert b'name="seats"' not in response.content  # but gets no form to change it
    assert b"_save" not in response.content


def test_ops_leads_cannot_edit_customers(client, ops_lead, customer):
    client.force_login(ops_lead)
    response = client.post(
        f"/admin/customers/customer/{customer.pk}/change/", customer_form(customer, name="X")
    )
    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.name == "Acme Corp"


def test_only_ops_leads_transfer_entitlements_and_migrate_accounts(
    agent, manager, ops_lead, outsider
):
    def can(user):
        return (
            user.has_perm("customers.transfer_entitlement"),
            user.has_perm("customers.migrate_account"),
        )

    assert can(ops_lead) == (True, True)
    assert can(agent) == (False, False)
    assert can(manager) == (False, False)
    assert can(outsider) == (False, False)


def test_ops_leads_work_cases_and_entitlements(ops_lead):
    assert ops_lead.has_perm("support.change_case")
    assert ops_lead.has_perm("customers.change_entitlement")
    assert not ops_lead.has_perm("support.delete_case")


@pytest.mark.parametrize("persona", ["agent", "manager", "ops_lead"])
def test_nobody_but_superusers_deletes_records(client, request, persona, customer):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    response = client.post(f"/admin/customers/customer/{customer.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert not any(
        user.has_perm(f"{model._meta.app_label}.delete_{model._meta.model_name}")
        for model in (Customer, Entitlement, Ticket, Case)
    )


def test_the_sidebar_shows_only_what_the_person_may_open(agent, superuser):
    from django.test import RequestFactory

    from opsdesk.shell.admin_site import navigation

    def titles(user):
        request = RequestFactory().get("/admin/")
        request.user = user
        return {
            group["title"]: [i["title"] for i in group["items"]] for group in navigation(request)
        }

    assert list(titles(agent)) == [
        "Support",
        "Customers",
        "Onboarding",
        "Digest",
        "Billing",
        "Audit",
    ]
    assert titles(agent)["Support"] == [
        "Triage queue",
        "All tickets",
        "Exceptions",
        "Webhook events",
        "Tags",
        "Triage rules",
    ]
    assert titles(superuser)["Administration"] == ["Users", "Groups"]
