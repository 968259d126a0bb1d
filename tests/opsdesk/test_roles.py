"""What each role can and cannot do (docs/product.md#roles); a denied action changes nothing."""

import sys

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from customers.models import Customer, Entitlement
from kit import roles
from support.models import Case, Ticket
from tests import builders
from tests.records import populate

pytestmark = pytest.mark.django_db


# Each role's permissions, written out. First dumped from a database freshly migrated
# by opsdesk.0001 to 0007, before their grants moved to kit.roles.GRANTS (29 + 26 + 38
# permissions), so a database migrated before or after that move ends with exactly these.
# A later grant change edits GRANTS and this, and adds a sync migration (kit.roles):
# opsdesk.0009 the grants of inbound email (support 3, ops leads 2); opsdesk.0011 those of
# the service levels (every role reads the three SLA models, ops leads edit them: 7); the
# next those of support's macros (every role reads them, support and ops leads write them:
# 7) and of problems (every role reads them, support and ops leads work them: 5); and
# those of saved views (every role keeps its own: 4 each; ops leads manage shared ones: 1).
EXPECTED_GRANTS = {
    roles.SUPPORT: {
        "opsdesk.view_healthsignal",
        "billing.view_invoice",
        "billing.view_invoiceimport",
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
        "opsdesk.add_savedview",
        "opsdesk.change_savedview",
        "opsdesk.delete_savedview",
        "opsdesk.view_digestdelivery",
        "opsdesk.view_savedview",
        "support.add_macro",
        "support.add_ticket",
        "support.add_triagecondition",
        "support.add_triagerule",
        "support.change_inboundemail",
        "support.change_macro",
        "support.change_problem",
        "support.change_ticket",
        "support.change_triagecondition",
        "support.change_triagerule",
        "support.delete_triagecondition",
        "support.delete_triagerule",
        "support.view_case",
        "support.view_emailattachment",
        "support.view_inboundemail",
        "support.view_macro",
        "support.view_problem",
        "support.view_slaholiday",
        "support.view_slapolicy",
        "support.view_slatarget",
        "support.view_tag",
        "support.view_ticket",
        "support.view_triagecondition",
        "support.view_triagerule",
        "support.view_webhookevent",
    },
    roles.ACCOUNT_MANAGERS: {
        "opsdesk.view_healthsignal",
        "opsdesk.change_healthsignal",
        "billing.view_invoice",
        "billing.view_invoiceimport",
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
        "opsdesk.add_savedview",
        "opsdesk.change_savedview",
        "opsdesk.delete_savedview",
        "opsdesk.view_digestdelivery",
        "opsdesk.view_savedview",
        "support.view_case",
        "support.view_macro",
        "support.view_problem",
        "support.view_slaholiday",
        "support.view_slapolicy",
        "support.view_slatarget",
        "support.view_tag",
        "support.view_ticket",
        "support.view_triagecondition",
        "support.view_triagerule",
        "support.view_webhookevent",
    },
    roles.OPS_LEADS: {
        "opsdesk.view_healthsignal",
        "opsdesk.change_healthsignal",
        "opsdesk.handle_any_healthsignal",
        "opsdesk.view_healthsweep",
        "customers.link_crm_account",
        "billing.add_invoice",
        "billing.add_reconciliationrun",
        "billing.change_invoice",
        "billing.view_invoice",
        "billing.view_invoiceimport",
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
        "opsdesk.add_savedview",
        "opsdesk.change_savedview",
        "opsdesk.delete_savedview",
        "opsdesk.manage_shared_savedview",
        "opsdesk.view_digestdelivery",
        "opsdesk.view_savedview",
        "opsdesk.view_scorecard",
        "support.add_case",
        "support.add_macro",
        "support.add_slaholiday",
        "support.add_slapolicy",
        "support.add_slatarget",
        "support.change_case",
        "support.change_macro",
        "support.change_problem",
        "support.change_slaholiday",
        "support.change_slapolicy",
        "support.change_slatarget",
        "support.change_webhookevent",
        "support.delete_slaholiday",
        "support.view_case",
        "support.view_emailattachment",
        "support.view_inboundemail",
        "support.view_macro",
        "support.view_problem",
        "support.view_slaholiday",
        "support.view_slapolicy",
        "support.view_slatarget",
        "support.view_tag",
        "support.view_ticket",
        "support.view_triagecondition",
        "support.view_triagerule",
        "support.view_webhookevent",
    },
}


GRANT_APPS = {p.split(".", 1)[0] for perms in EXPECTED_GRANTS.values() for p in perms}


def granted() -> dict[str, set[str]]:
    """The database's groups of the three roles and their permissions, as app_label.codename."""
    table = {}
    for group in Group.objects.filter(name__in=EXPECTED_GRANTS).prefetch_related(
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


def test_the_table_grants_each_role_exactly_its_permissions():
    assert {name: set(perms) for name, perms in roles.GRANTS.items()} == EXPECTED_GRANTS


def apply_the_sync_migration() -> None:
    """Run the latest sync migration (opsdesk.0019_roles_sync_issue22) as `migrate` does:
    its code on the historical models of that point of the history, in the test's
    transaction."""
    executor = MigrationExecutor(connection)
    node = ("opsdesk", "0019_roles_sync_issue22")
    state = executor.loader.project_state(node, at_end=False)
    with connection.schema_editor() as editor:
        executor.loader.get_migration(*node).apply(state, editor)


@pytest.fixture
def groups_as_granted():
    """The three groups with exactly the permissions written out above, as migrations
    0001 to 0007 left them; built here rather than read from the database, which a
    transactional test of an earlier run (with --reuse-db) may have flushed."""
    Group.objects.filter(name__in=EXPECTED_GRANTS).delete()
    for name, perms in EXPECTED_GRANTS.items():
        group = Group.objects.create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def grant_rows() -> list[tuple[int, int, int]]:
    grants = Group.permissions.through.objects.order_by("pk")
    return list(grants.values_list("pk", "group", "permission"))


def test_the_sync_migration_writes_nothing_where_the_groups_are_already_as_granted(
    groups_as_granted,
):
    """As on every database that ran the grants of migrations 0001 to 0007."""
    before = grant_rows()
    apply_the_sync_migration()
    assert grant_rows() == before


def test_the_sync_migration_makes_the_three_groups_on_a_fresh_database():
    # Fresh: no groups and, as during `migrate`, no permissions yet (post_migrate makes them).
    Group.objects.filter(name__in=roles.GRANTS).delete()
    Permission.objects.filter(content_type__app_label__in=GRANT_APPS).delete()
    apply_the_sync_migration()
    assert granted() == EXPECTED_GRANTS


def test_a_sync_earlier_in_the_history_than_a_granted_model_leaves_that_grant_to_a_later_sync():
    # Before onboarding's first migration its models and permissions do not exist.
    executor = MigrationExecutor(connection)
    state = executor.loader.project_state(("opsdesk", "0006_reconciliation_roles"), at_end=True)
    assert "onboarding" not in state.apps.app_configs
    Group.objects.filter(name__in=roles.GRANTS).delete()
    Permission.objects.filter(content_type__app_label="onboarding").delete()

    roles.roles_sync(state.apps)
    assert granted() == {
        name: {p for p in perms if not p.startswith("onboarding.")}
        for name, perms in EXPECTED_GRANTS.items()
    }

    roles.roles_sync()
    assert granted() == EXPECTED_GRANTS


def test_sync_is_idempotent(groups_as_granted, django_assert_num_queries):
    # Its savepoint, the permissions, the groups, their grants, the release; no write.
    with django_assert_num_queries(5):
        assert roles.roles_sync() == {}
    assert granted() == EXPECTED_GRANTS


def test_sync_removes_a_permission_the_table_does_not_grant(
    groups_as_granted, django_assert_num_queries
):
    support = Group.objects.get(name=roles.SUPPORT)
    support.permissions.add(Permission.objects.get(codename="delete_case"))

    assert roles.roles_sync() == {
        roles.SUPPORT: roles.GroupChange(
            created=False, added=frozenset(), removed=frozenset({"support.delete_case"})
        )
    }
    assert granted() == EXPECTED_GRANTS
    with django_assert_num_queries(5):
        assert roles.roles_sync() == {}


def test_sync_restores_a_removed_permission(groups_as_granted):
    manager = Group.objects.get(name=roles.ACCOUNT_MANAGERS)
    manager.permissions.remove(Permission.objects.get(codename="change_contract"))

    assert roles.roles_sync() == {
        roles.ACCOUNT_MANAGERS: roles.GroupChange(
            created=False, added=frozenset({"customers.change_contract"}), removed=frozenset()
        )
    }
    assert granted() == EXPECTED_GRANTS


def test_sync_creates_a_missing_group(groups_as_granted):
    Group.objects.filter(name=roles.OPS_LEADS).delete()

    assert roles.roles_sync() == {
        roles.OPS_LEADS: roles.GroupChange(
            created=True, added=frozenset(EXPECTED_GRANTS[roles.OPS_LEADS]), removed=frozenset()
        )
    }
    assert granted() == EXPECTED_GRANTS


def test_sync_leaves_groups_the_table_does_not_name_alone(groups_as_granted):
    contractors = Group.objects.create(name="Contractors")
    contractors.permissions.add(Permission.objects.get(codename="delete_case"))

    assert roles.roles_sync() == {}
    assert list(contractors.permissions.values_list("codename", flat=True)) == ["delete_case"]


def test_sync_refuses_a_misspelt_permission_and_writes_nothing(groups_as_granted, monkeypatch):
    Group.objects.filter(name=roles.OPS_LEADS).delete()
    Group.objects.get(name=roles.SUPPORT).permissions.remove(
        Permission.objects.get(codename="add_ticket")
    )
    before = granted()
    misspelt = roles.GRANTS[roles.SUPPORT] | {"support.chnage_ticket"}
    monkeypatch.setitem(roles.GRANTS, roles.SUPPORT, misspelt)

    with pytest.raises(LookupError, match=r"\['support.chnage_ticket'\]"):
        roles.roles_sync()
    assert granted() == before
    assert not Permission.objects.filter(codename="chnage_ticket").exists()


def test_the_latest_sync_migration_was_written_for_the_table():
    """A grant changed in kit.roles.GRANTS reaches databases already migrated only through
    a new migration calling roles_sync; each records the digest of the table it applies."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    digests = {
        key: sys.modules[type(migration).__module__].GRANTS_DIGEST
        for key, migration in loader.disk_migrations.items()
        if hasattr(sys.modules[type(migration).__module__], "GRANTS_DIGEST")
    }
    latest = max(key for key in digests if key[0] == "opsdesk")
    assert digests[latest] == roles.grants_digest(), (
        f"kit.roles.GRANTS changed since {latest}: add an opsdesk migration that calls "
        f"kit.roles.roles_sync with GRANTS_DIGEST = {roles.grants_digest()!r}"
    )


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
    ticket = builders.ticket(customer=customer, subject="Cannot log in")
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
    case = builders.case(customer=customer, summary="x")
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
        "Health",
        "Billing",
        "Audit",
        "Notifications",
    ]
    assert titles(agent)["Notifications"] == ["My notifications", "Notification settings"]
    assert titles(agent)["Support"] == [
        "Triage queue",
        "All tickets",
        "Support report",
        "Problems",
        "Exceptions",
        "Saved views",
        "Webhook events",
        "Inbound emails",
        "Tags",
        "Triage rules",
        "Macros",
        "SLA policies",
    ]
    assert titles(superuser)["Administration"] == ["Users", "Groups"]
    # Support reads signals and the digest; the sweeps' log is for ops leads.
    assert titles(agent)["Health"] == [
        "Health signals",
        "Why snoozed",
        "Digest preview",
        "Deliveries",
    ]
    assert titles(superuser)["Health"][-1] == "Health sweeps"


@pytest.mark.parametrize(
    ("persona", "shown"),
    [("agent", False), ("manager", False), ("ops_lead", True), ("superuser", True)],
)
def test_the_freshness_panel_is_in_the_sidebar_of_whoever_may_open_it(
    client, request, persona, shown
):
    """Its entry names the permission its page checks (opsdesk.freshness.PERMISSION)."""
    from django.test import RequestFactory

    from opsdesk.shell.admin_site import navigation

    user = request.getfixturevalue(persona)
    factory = RequestFactory().get("/admin/")
    factory.user = user
    support = next(group for group in navigation(factory) if group["title"] == "Support")
    titles = [item["title"] for item in support["items"]]
    assert ("Data freshness" in titles) is shown
    client.force_login(user)
    assert client.get("/admin/freshness/").status_code == (200 if shown else 403)


@pytest.mark.parametrize(
    ("persona", "shown"),
    [("agent", False), ("manager", False), ("ops_lead", True), ("superuser", True)],
)
def test_the_crm_imports_are_in_the_sidebar_of_whoever_may_upload_them(
    client, request, persona, shown
):
    """Its entry names the permission its pages check (customers.link_crm_account)."""
    from django.test import RequestFactory

    from opsdesk.shell.admin_site import navigation

    user = request.getfixturevalue(persona)
    factory = RequestFactory().get("/admin/")
    factory.user = user
    customers = next(group for group in navigation(factory) if group["title"] == "Customers")
    titles = [item["title"] for item in customers["items"]]
    assert ("CRM imports" in titles) is shown
    client.force_login(user)
    for url in ("/admin/customers/crmimport/", "/admin/customers/crmimport/upload/"):
        assert client.get(url).status_code == (200 if shown else 403)


def test_the_invoice_imports_are_in_the_billing_section(superuser):
    from django.test import RequestFactory

    from opsdesk.shell.admin_site import navigation

    request = RequestFactory().get("/admin/")
    request.user = superuser
    billing = next(group for group in navigation(request) if group["title"] == "Billing")
    assert [item["title"] for item in billing["items"]] == [
        "Invoices",
        "Invoice imports",
        "Reconciliation runs",
    ]


def test_every_model_of_the_admin_has_its_place_in_the_sidebar():
    from django.contrib import admin

    from opsdesk.shell.admin_site import SIDEBAR

    listed = {(item[2], item[3]) for _, items in SIDEBAR for item in items}
    registered = {(m._meta.app_label, m._meta.model_name) for m in admin.site._registry}
    assert sorted(registered - listed) == []
