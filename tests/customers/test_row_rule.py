"""An account manager's rights stop at the customers they manage (docs/product.md#roles),
including the customer chosen in a form: on add, on change, moving a row, handing a
customer over, in admin actions, autocompletes and the onboarding task buttons.

``test_alice_cannot_write_onto_bobs_customer_through_any_admin`` walks every ModelAdmin
of ``admin.site`` whose model has a path to Customer (found from the models' foreign
keys, not a list here) and, as Alice, tries to add a row to Bob's customer, change Bob's
row and move her own row to Bob's customer, with the form a browser would post. Each is
refused and changes no row anywhere; the same form aimed at her own customer is accepted
wherever she may add or change, so a refusal is the rule's and not a broken form's.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from bs4 import BeautifulSoup
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied
from django.db import models
from django.test import Client, RequestFactory
from django.urls import reverse
from webtest.forms import Form as WebTestForm

from audit.context import acting_as
from billing.models import ReconciliationRun
from customers.models import Contact, Contract, Customer
from onboarding.models import ChecklistTask
from onboarding.services import checklist_generate, checklist_task_done
from opsdesk.models import HealthSignal
from tests import builders
from tests.records import populate

pytestmark = pytest.mark.django_db


def path_to_customer(model, depth: int = 3) -> list[str] | None:
    """The shortest chain of foreign keys from ``model`` to Customer ([] for Customer
    itself), or None when it has none."""
    if model is Customer:
        return []
    frontier = [(model, [])]
    for _ in range(depth):
        following = []
        for current, path in frontier:
            for field in current._meta.concrete_fields:
                if field.is_relation and (field.many_to_one or field.one_to_one):
                    if field.related_model is Customer:
                        return [*path, field.name]
                    following.append((field.related_model, [*path, field.name]))
        frontier = following
    return None


def customer_admins() -> list[tuple[type, admin.ModelAdmin, list[str]]]:
    return [
        (model, model_admin, path)
        for model, model_admin in admin.site._registry.items()
        if (path := path_to_customer(model)) is not None
    ]


def row_of(model, path: list[str], customer: Customer):
    if not path:
        return customer
    return model.objects.filter(**{"__".join(path): customer}).order_by("pk").first()


def table_counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_models() if m is not Session}


def form_body(client: Client, url: str) -> dict[str, list[str]]:
    """The fields a browser posts with the page's main form (WebTest parses it)."""
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    soup = BeautifulSoup(page.content.decode(), "html.parser")
    forms = [f for f in soup.find_all("form") if f.get("method", "").lower() == "post"]
    main = next(f for f in forms if f.get("id", "").endswith("_form"))
    del main["id"]  # WebTest looks for form="<id>" fields in a response it is not given
    body: dict[str, list[str]] = {}
    for name, value in WebTestForm(None, str(main)).submit_fields():
        if name and name != "csrfmiddlewaretoken":
            body.setdefault(name, []).append(value)
    return body


def made_new(model, body: dict[str, list[str]]) -> dict[str, list[str]]:
    """Free text (names, ids, emails) of ``body`` made new, so an added copy of a row
    breaks no uniqueness: "n" + the value stays valid for every such field."""
    fresh = {}
    for name, values in body.items():
        try:
            field = model._meta.get_field(name)
        except Exception:
            field = None
        if (
            isinstance(field, models.CharField)
            and not field.choices
            and not field.is_relation
            and all(len(value) < field.max_length for value in values)
        ):
            values = ["n" + value if value else value for value in values]
        fresh[name] = values
    return fresh


def values_of(model, pk) -> dict:
    return model.objects.filter(pk=pk).values().get()


def refused(response, field: str, model) -> bool:
    """403, the form shown again with an error on ``field``, or a page that takes no
    form (a redirect elsewhere than where a save sends: ``billing``'s add is its start
    page). The caller checks that nothing changed."""
    if response.status_code in (403, 405):
        return True
    if response.status_code == 302:
        opts = model._meta
        saved = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        return (
            not response["Location"].startswith(saved + "?")
            and response["Location"] not in {saved}
            and "/change/" not in response["Location"]
        )
    if response.status_code != 200 or response.context_data is None:
        return False
    form = response.context_data["adminform"].form
    return field in form.errors or bool(form.non_field_errors())


@pytest.fixture
def world(db, manager, other_manager, superuser, templates):
    """Alice's customer and Bob's, each with one of everything."""
    [alices] = populate(1, manager=manager, start=10)
    [bobs] = populate(1, manager=other_manager, start=20)
    with acting_as("test:fixture"):
        for customer in (alices, bobs):
            ReconciliationRun.objects.create(
                month=dt.date(2026, 10, 1),
                customer=customer,
                status=ReconciliationRun.Status.SUCCEEDED,
            )
            builders.inbound_email(ticket=customer.tickets.get())
            HealthSignal.objects.create(
                customer=customer,
                kind="dormant",
                label="Dormant",
                opened_on=dt.date(2026, 11, 2),
                opened_reason="no login for 14 days",
                reason="no login for 14 days",
            )
    for customer in (alices, bobs):
        checklist_generate(contract=customer.contracts.get())
    return alices, bobs


def test_the_walk_finds_the_models_of_a_customer():
    labels = {model._meta.label for model, _, _ in customer_admins()}
    assert {
        "customers.Customer",
        "customers.Contact",
        "customers.Contract",
        "onboarding.ChecklistTask",
        "support.Ticket",
        "billing.Invoice",
    } <= labels
    assert "customers.Product" not in labels


def test_alice_cannot_write_onto_bobs_customer_through_any_admin(
    world, manager, other_manager, superuser
):
    alices, bobs = world
    alice = Client(raise_request_exception=False)
    alice.force_login(manager)
    root = Client()
    root.force_login(superuser)
    as_alice = RequestFactory().get("/admin/")
    as_alice.user = manager
    wrong, tried, accepted = [], 0, 0

    def attempt(what, url, body, field, model, pk=None):
        nonlocal tried
        tried += 1
        before = table_counts()
        row = values_of(model, pk) if pk else None
        response = alice.post(url, body)
        if not refused(response, field, model):
            wrong.append(f"{what}: answered {response.status_code}, not refused")
        if table_counts() != before or (pk and values_of(model, pk) != row):
            wrong.append(f"{what}: a row changed")

    def control(what, url, body):
        nonlocal accepted
        response = alice.post(url, body)
        if response.status_code != 302:
            context = getattr(response, "context_data", None)
            errors = context["adminform"].form.errors if context else ""
            wrong.append(f"{what} (her own customer): answered {response.status_code} {errors}")
        accepted += 1

    for model, model_admin, path in customer_admins():
        opts, label = model._meta, model._meta.label
        mine, bobs_row = row_of(model, path, alices), row_of(model, path, bobs)
        assert mine is not None and bobs_row is not None, f"the world has no {label} of each"
        change = f"admin:{opts.app_label}_{opts.model_name}_change"
        # The field that says whose the row is, and its value for Bob and for Alice.
        if path:
            field, rest = path[0], path[1:]
            target = row_of(opts.get_field(field).related_model, rest, bobs).pk
            own = row_of(opts.get_field(field).related_model, rest, alices).pk
        else:
            field, target, own = "account_manager", other_manager.pk, manager.pk

        # Add a row to Bob's customer.
        body = made_new(model, form_body(root, reverse(change, args=[mine.pk])))
        add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        attempt(f"{label} add", add, {**body, field: [str(target)]}, field, model)
        if model_admin.has_add_permission(as_alice):
            control(f"{label} add", add, {**body, field: [str(own)]})

        # Change Bob's row (its text changed).
        body = made_new(model, form_body(root, reverse(change, args=[bobs_row.pk])))
        url = reverse(change, args=[bobs_row.pk])
        attempt(f"{label} change of Bob's", url, body, field, model, bobs_row.pk)

        # Move her own row to Bob's customer.
        body = form_body(root, reverse(change, args=[mine.pk]))
        url = reverse(change, args=[mine.pk])
        if model_admin.has_change_permission(as_alice, mine):
            editable = field in model_admin.get_form(as_alice, mine, change=True).base_fields
            if editable:
                attempt(f"{label} move", url, {**body, field: [str(target)]}, field, model, mine.pk)
            else:  # a read-only field: the save may go through, the move may not
                tried += 1
                alice.post(url, {**body, field: [str(target)]})
                if row_of(model, path, alices) is None or (
                    path and getattr(model.objects.get(pk=mine.pk), field).pk != own
                ):
                    wrong.append(f"{label} move: the read-only {field} changed")
            control(f"{label} change", url, body)
        else:
            attempt(f"{label} move", url, {**body, field: [str(target)]}, field, model, mine.pk)

    assert not wrong, "\n".join(wrong)
    # Customer, contact and contract add and change, her task's change: the rule refused
    # only what was Bob's.
    assert (tried, accepted) == (3 * len(customer_admins()), 6)


def contact_form(customer, **changes) -> dict[str, str]:
    return {
        "customer": str(customer.pk),
        "name": "Nora New",
        "email": "nora@example.com",
        "role": Contact.Role.BILLING,
        **changes,
    }


def test_a_crafted_post_naming_another_managers_customer_is_a_form_error(client, manager, world):
    alices, bobs = world
    client.force_login(manager)

    response = client.post("/admin/customers/contact/add/", contact_form(bobs))

    assert response.status_code == 200
    assert response.context_data["adminform"].form.errors["customer"] == [
        "Select a valid choice. That choice is not one of the available choices."
    ]
    assert not Contact.objects.filter(email="nora@example.com").exists()
    assert client.post("/admin/customers/contact/add/", contact_form(alices)).status_code == 302
    assert Contact.objects.get(email="nora@example.com").customer == alices


def test_an_account_manager_does_not_hand_his_customer_to_another(
    client, manager, other_manager, world
):
    alices, _ = world
    client.force_login(manager)
    body = {
        "name": alices.name,
        "external_id": alices.external_id,
        "status": alices.status,
        "account_manager": str(other_manager.pk),
        "crm_id": "",
    }

    response = client.post(f"/admin/customers/customer/{alices.pk}/change/", body)

    assert response.status_code == 200
    assert response.context_data["adminform"].form.errors["account_manager"] == [
        "Account managers may not hand a customer to someone else or take one over: "
        "ask a superuser to change the account manager."
    ]
    alices.refresh_from_db()
    assert (alices.account_manager, alices.history.count()) == (manager, 1)


def test_a_superuser_hands_a_customer_to_another_manager(
    client, superuser, manager, other_manager, world
):
    alices, _ = world
    client.force_login(superuser)
    body = {
        "name": alices.name,
        "external_id": alices.external_id,
        "status": alices.status,
        "account_manager": str(other_manager.pk),
        "crm_id": "",
    }
    response = client.post(f"/admin/customers/customer/{alices.pk}/change/", body)
    assert response.status_code == 302
    alices.refresh_from_db()
    assert alices.account_manager == other_manager


def autocomplete(client, **params) -> list[str]:
    query = {"app_label": "customers", "model_name": "contact", "field_name": "customer"}
    response = client.get("/admin/autocomplete/", {**query, **params})
    assert response.status_code == 200
    return [row["text"] for row in response.json()["results"]]


def test_the_customer_field_offers_an_account_manager_only_his_customers(client, manager, world):
    client.force_login(manager)
    page = client.get("/admin/customers/contact/add/").content.decode()
    assert 'data-ajax--url="/admin/autocomplete/?editable=1"' in page

    assert autocomplete(client, editable="1") == ["Customer 10"]
    # The list filter by customer (reading) still finds every customer.
    assert sorted(autocomplete(client)) == ["Customer 10", "Customer 20"]


def test_an_admin_action_on_another_managers_rows_does_nothing(client, manager, world):
    alices, bobs = world
    manager.user_permissions.add(Permission.objects.get(codename="delete_contact"))
    client.force_login(manager)
    bobs_contact, alices_contact = Contact.objects.get(customer=bobs), alices.contacts.get()

    response = client.post(
        "/admin/customers/contact/",
        {
            "action": "delete_selected",
            "_selected_action": [str(bobs_contact.pk), str(alices_contact.pk)],
            "post": "yes",
        },
        follow=True,
    )

    assert "Nothing was done: the selection has records of customers you do not manage." in (
        response.content.decode()
    )
    assert Contact.objects.filter(pk__in=[bobs_contact.pk, alices_contact.pk]).count() == 2
    response = client.post(
        "/admin/customers/contact/",
        {"action": "delete_selected", "_selected_action": [str(alices_contact.pk)], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Contact.objects.filter(pk=alices_contact.pk).exists()


def bobs_task(bobs) -> ChecklistTask:
    return ChecklistTask.objects.filter(checklist__customer=bobs).order_by("pk").first()


def test_an_account_manager_does_not_mark_another_managers_task_done_or_reopen_it(
    client, manager, other_manager, world
):
    _, bobs = world
    task = bobs_task(bobs)
    client.force_login(manager)

    assert client.post(f"/admin/onboarding/checklisttask/{task.pk}/done/").status_code == 403
    task.refresh_from_db()
    assert (task.state, task.history.count()) == ("open", 1)

    with acting_as("bob", user=other_manager):
        checklist_task_done(task=task, user=other_manager)
    assert client.post(f"/admin/onboarding/checklisttask/{task.pk}/reopen/").status_code == 403
    task.refresh_from_db()
    assert (task.state, task.done_by, task.history.count()) == ("done", other_manager, 2)


@pytest.mark.parametrize("persona", ["agent", "ops_lead"])
def test_support_and_ops_leads_work_every_customers_tasks(client, request, persona, world):
    _, bobs = world
    task = bobs_task(bobs)
    user = request.getfixturevalue(persona)
    client.force_login(user)
    assert client.post(f"/admin/onboarding/checklisttask/{task.pk}/done/").status_code == 302
    task.refresh_from_db()
    assert (task.state, task.done_by) == ("done", user)


def test_a_task_given_to_an_account_manager_by_name_is_his_to_do(client, manager, world):
    _, bobs = world
    task = bobs_task(bobs)
    with acting_as("test:fixture"):
        task.owner = manager
        task.save()
    client.force_login(manager)
    assert client.post(f"/admin/onboarding/checklisttask/{task.pk}/done/").status_code == 302
    task.refresh_from_db()
    assert (task.state, task.done_by) == ("done", manager)


def test_an_account_manager_cannot_move_his_contract_to_another_managers_customer(
    client, manager, world
):
    alices, bobs = world
    contract = alices.contracts.get()
    client.force_login(manager)
    body = form_body(client, f"/admin/customers/contract/{contract.pk}/change/")

    response = client.post(
        f"/admin/customers/contract/{contract.pk}/change/", {**body, "customer": [str(bobs.pk)]}
    )

    assert response.status_code == 200
    assert "customer" in response.context_data["adminform"].form.errors
    contract.refresh_from_db()
    assert (contract.customer, contract.history.count()) == (alices, 1)
    assert Contract.objects.filter(customer=bobs).count() == 1


def test_the_customer_page_offers_task_buttons_only_where_the_click_is_accepted(
    client, manager, world
):
    alices, bobs = world
    client.force_login(manager)

    def buttons(customer) -> int:
        page = client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
        assert 'data-testid="overview-onboarding"' in page
        return page.count('data-testid="mark-done"')

    assert (buttons(alices), buttons(bobs)) == (alices.checklists.get().tasks.count(), 0)


def as_request(user):
    request = RequestFactory().post("/admin/")
    request.user = user
    return request


def test_a_save_through_the_admin_of_a_row_onto_another_managers_customer_is_refused(
    manager, world
):
    """The last line behind the form, for any path that saves through the admin."""
    alices, bobs = world
    contact = alices.contacts.get()
    contact.customer = bobs
    with pytest.raises(PermissionDenied):
        admin.site.get_model_admin(Contact).save_model(as_request(manager), contact, None, True)
    contact.refresh_from_db()
    assert (contact.customer, contact.history.count()) == (alices, 1)


def test_an_inline_row_onto_another_managers_customer_is_refused(manager, world):
    _, bobs = world
    inline_row = Contact(customer=bobs, name="Inline", email="inline@example.com")
    formset = SimpleNamespace(forms=[SimpleNamespace(instance=inline_row)])
    model_admin = admin.site.get_model_admin(Customer)
    with pytest.raises(PermissionDenied):
        model_admin.save_formset(as_request(manager), None, formset, True)
    assert not Contact.objects.filter(email="inline@example.com").exists()


def test_the_changelist_with_the_autocomplete_parameter_is_no_error(client, manager, world):
    client.force_login(manager)
    response = client.get("/admin/customers/customer/", {"editable": "1"})
    assert response.status_code in (200, 302)


def test_the_onboarding_services_refuse_another_managers_task_whoever_calls_them(
    manager, other_manager, world
):
    from onboarding.services import OnboardingPermissionError, checklist_task_reopen

    _, bobs = world
    task = bobs_task(bobs)
    with acting_as("alice", user=manager), pytest.raises(OnboardingPermissionError):
        checklist_task_done(task=task, user=manager)
    with acting_as("bob", user=other_manager):
        checklist_task_done(task=task, user=other_manager)
    with acting_as("alice", user=manager), pytest.raises(OnboardingPermissionError):
        checklist_task_reopen(task=task, by=manager)
    task.refresh_from_db()
    assert (task.state, task.done_by, task.history.count()) == ("done", other_manager, 2)
