import datetime as dt

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import IntegrityError, transaction

from audit import bulk
from audit.context import UNATTRIBUTED, acting_as
from audit.guard import UnauditedWriteError
from customers.models import Customer, UsageDaily
from tests.records import populate

PROJECT_APPS = ["customers", "support", "billing", "onboarding", "audit", "opsdesk"]


def project_models():
    for label in PROJECT_APPS:
        for model in apps.get_app_config(label).get_models():
            if not model.__name__.startswith("Historical"):
                yield model


def test_every_model_of_every_app_keeps_history_with_an_actor():
    models = list(project_models())
    assert len(models) >= 12
    for model in models:
        history = getattr(model, "history", None)
        assert history is not None, f"{model._meta.label} has no history"
        history_model = history.model
        assert history_model._meta.get_field("history_actor"), model._meta.label


@pytest.mark.parametrize("model", list(project_models()), ids=lambda m: m._meta.label)
def test_unsafe_write_paths_fail_loudly(model):
    with pytest.raises(UnauditedWriteError, match="would skip history"):
        model.objects.update(pk=1)
    with pytest.raises(UnauditedWriteError, match="bulk_create_with_history"):
        model.objects.bulk_create([])
    with pytest.raises(UnauditedWriteError, match="bulk_update_with_history"):
        model.objects.bulk_update([], ["pk"])


@pytest.mark.django_db
def test_a_related_manager_update_fails_and_changes_nothing(customer):
    with pytest.raises(UnauditedWriteError):
        customer.contracts.update(seats=999)
    assert list(customer.contracts.values_list("seats", flat=True)) == [50]


@pytest.mark.django_db
def test_a_write_names_its_actor_and_reason(customer):
    with acting_as("task:send_digests", reason="nightly run"):
        customer.crm_id = "CRM-2002"
        customer.save()
    record = customer.history.latest()
    assert record.history_type == "~"
    assert record.history_actor == "task:send_digests"
    assert record.history_change_reason == "nightly run"
    assert record.history_user is None


@pytest.mark.django_db
def test_a_write_outside_any_actor_is_recorded_as_unattributed(manager):
    customer = Customer.objects.create(external_id="x-1", name="X")
    assert customer.history.get().history_actor == UNATTRIBUTED


@pytest.mark.django_db
def test_bulk_create_with_history_writes_one_attributed_row_each(customer):
    days = [
        UsageDaily(
            customer=customer,
            date=dt.date(2026, 11, d),
            active_users_1d=1,
            active_users_7d=2,
            requests=10,
            errors=0,
        )
        for d in (1, 2, 3)
    ]
    with acting_as("command:seed_demo"):
        bulk.bulk_create_with_history(days, UsageDaily, reason="demo")
    history = UsageDaily.history.order_by("date")
    assert [
        (h.date.day, h.history_type, h.history_actor, h.history_change_reason) for h in history
    ] == [
        (1, "+", "command:seed_demo", "demo"),
        (2, "+", "command:seed_demo", "demo"),
        (3, "+", "command:seed_demo", "demo"),
    ]


@pytest.mark.django_db
def test_update_with_history_records_only_rows_that_changed(manager):
    populate(3, manager=manager)
    first = Customer.objects.get(external_id="tenant-0")
    with acting_as("test:fixture"):
        first.status = Customer.Status.ACTIVE
        first.save()
    before = Customer.history.count()
    with acting_as("task:reconcile"):
        changed = bulk.update_with_history(
            Customer.objects.all(), status=Customer.Status.ACTIVE, reason="activate all"
        )
    assert changed == 2
    assert set(Customer.objects.values_list("status", flat=True)) == {"active"}
    new = Customer.history.order_by("-history_id")[:2]
    assert Customer.history.count() == before + 2
    assert {(h.external_id, h.history_actor, h.history_change_reason) for h in new} == {
        ("tenant-1", "task:reconcile", "activate all"),
        ("tenant-2", "task:reconcile", "activate all"),
    }


@pytest.mark.django_db
def test_deleting_a_row_keeps_its_history(customer):
    contact_count = customer.contacts.count()
    with acting_as("alice"):
        customer.contacts.create(name="Dee", email="dee@acme.test").delete()
    records = customer.contacts.model.history.filter(email="dee@acme.test").order_by("history_id")
    assert [r.history_type for r in records] == ["+", "-"]
    assert customer.contacts.count() == contact_count


@pytest.mark.django_db
def test_a_change_in_the_admin_names_the_signed_in_user(client, customer, manager):
    client.force_login(manager)
    url = f"/admin/customers/customer/{customer.pk}/change/"
    response = client.post(
        url,
        {
            "name": "Acme Corporation",
            "external_id": customer.external_id,
            "status": customer.status,
            "account_manager": manager.pk,
            "crm_id": customer.crm_id,
        },
    )
    assert response.status_code == 302, response.content
    record = customer.history.latest()
    assert record.name == "Acme Corporation"
    assert record.history_actor == "alice"
    assert record.history_user == manager


@pytest.mark.django_db
def test_the_history_page_shows_the_actor_and_a_field_diff(client, customer, superuser):
    with acting_as("task:reconcile"):
        contract = customer.contracts.get()
        contract.seats = 75
        contract.save()
    client.force_login(superuser)
    response = client.get(f"/admin/customers/contract/{contract.pk}/history/")
    content = response.content.decode()
    assert response.status_code == 200
    assert "task:reconcile" in content
    import re

    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", content))
    assert "seats: 50 arrow_right_alt 75" in text.lower(), text[-3000:]


@pytest.mark.django_db
def test_the_history_page_names_the_person_who_changed_it_not_their_username(
    client, customer, manager, agent
):
    from bs4 import BeautifulSoup

    from audit.context import acting_as_user

    manager.last_name = "Martin"
    manager.save(update_fields=["last_name"])
    contract = customer.contracts.get()
    with acting_as_user(manager):
        contract.seats = 60
        contract.save()
    with acting_as(f"task:reconciliation_run for {manager.username}", user=manager):
        contract.seats = 61
        contract.save()
    client.force_login(agent)
    response = client.get(f"/admin/customers/contract/{contract.pk}/history/")
    assert response.status_code == 200
    page = BeautifulSoup(response.content, "html.parser")
    assert [
        " ".join(cell.get_text().split()) for cell in page.select('[data-testid="history-actor"]')
    ] == ["task:reconciliation_run for Alice Martin", "Alice Martin", "test:fixture"]
    assert "None" not in page.select_one("#change-history").get_text()
    # One column says who; no link to the users' admin, which Sam may not open.
    assert "/admin/auth/user/" not in response.content.decode()


@pytest.mark.django_db
def test_celery_tasks_are_attributed_to_the_task(customer):
    from opsdesk.celery import app

    @app.task(name="tests.rename_customer")
    def rename_customer(customer_id):
        target = Customer.objects.get(pk=customer_id)
        target.name = "Renamed by task"
        target.save()

    rename_customer.apply(args=[customer.pk]).get()
    assert customer.history.latest().history_actor == "task:rename_customer"


@pytest.mark.django_db
def test_management_commands_are_attributed_to_the_command(customer):
    from audit.attribution import AuditedCommand

    class Command(AuditedCommand):
        def handle(self, *args, **options):
            customer.name = "Renamed by command"
            customer.save()

    Command.__module__ = "customers.management.commands.rename"
    call_command(Command())
    assert customer.history.latest().history_actor == "command:rename"


@pytest.mark.django_db
def test_history_and_row_are_written_in_one_transaction(customer):
    before = Customer.history.count()
    with pytest.raises(RuntimeError), transaction.atomic(), acting_as("alice"):
        customer.name = "Half-written"
        customer.save()
        raise RuntimeError("crash mid-way")
    assert Customer.history.count() == before
    customer.refresh_from_db()
    assert customer.name == "Acme Corp"


@pytest.mark.django_db
def test_copy_with_history_writes_rows_and_their_attributed_history(customer):
    days = [
        UsageDaily(
            customer=customer,
            date=dt.date(2026, 10, d),
            active_users_1d=d,
            active_users_7d=d + 1,
            requests=100,
            errors=d,
        )
        for d in (1, 2, 3)
    ]
    with acting_as("command:seed_demo"):
        copied = bulk.copy_with_history(days, UsageDaily, reason="demo data")
    assert all(row.pk for row in copied)
    stored = list(UsageDaily.objects.order_by("date").values_list("pk", "date", "errors"))
    assert stored == [(row.pk, row.date, row.errors) for row in days]
    assert all(row.reported_at is not None for row in UsageDaily.objects.all())  # auto_now
    history = UsageDaily.history.order_by("date")
    assert [
        (h.id, h.errors, h.history_type, h.history_actor, h.history_change_reason) for h in history
    ] == [(row.pk, row.errors, "+", "command:seed_demo", "demo data") for row in days]


@pytest.mark.django_db
def test_copy_with_history_writes_nothing_when_a_row_is_refused(customer):
    good = UsageDaily(
        customer=customer, date=dt.date(2026, 10, 1), active_users_1d=1, active_users_7d=1,
        requests=5, errors=0,
    )  # fmt: skip
    bad = UsageDaily(
        customer=customer, date=dt.date(2026, 10, 2), active_users_1d=1, active_users_7d=1,
        requests=5, errors=9,
    )  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk.copy_with_history([good, bad], UsageDaily)
    assert UsageDaily.objects.count() == 0
    assert UsageDaily.history.count() == 0


def test_insert_with_history_writes_the_row_and_its_history_or_nothing(db):
    with acting_as("webhook:msg_1", reason="received"):
        # A tenant id is unique where it is set (a partial index): every unique index decides.
        first = bulk.insert_with_history(Customer(external_id="t-1", name="First"), unique=())
        again = bulk.insert_with_history(Customer(external_id="t-1", name="Second"), unique=())

    assert again is None
    stored = Customer.objects.get()
    assert (stored.pk, stored.name) == (first.pk, "First")
    assert stored.created_at is not None
    [record] = stored.history.all()
    assert (record.history_type, record.history_actor, record.history_change_reason) == (
        "+",
        "webhook:msg_1",
        "received",
    )
    assert (record.name, record.external_id) == ("First", "t-1")


def test_both_sql_paths_respect_a_models_excluded_history_fields(db):
    from support.models import WebhookEvent

    with acting_as("test:import"):
        [copied] = bulk.copy_with_history(
            [WebhookEvent(webhook_id="msg_c", type="usage.daily", payload={"big": "body"})],
            WebhookEvent,
        )
        inserted = bulk.insert_with_history(
            WebhookEvent(webhook_id="msg_i", type="usage.daily", payload={"big": "body"}),
            unique=["webhook_id", "source"],
        )

    for event in (copied, inserted):
        [record] = event.history.all()
        assert (record.webhook_id, record.history_actor) == (event.webhook_id, "test:import")
        assert not hasattr(record, "payload")
    assert WebhookEvent.objects.get(pk=copied.pk).payload == {"big": "body"}
