"""Every write path leaves history rows naming its actor, its reason and, for a workflow
done for a ticket or case, that record (docs/product.md#audit): one test per path."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from audit.context import acting_as, acting_as_user
from billing.models import Invoice, ReconciliationRun
from billing.tasks import reconciliation_run
from customers.entitlements import entitlement_revoke
from customers.models import Customer, Entitlement, Order, Product, UsageDaily
from customers.tasks import entitlements_expire
from onboarding.models import Checklist, ChecklistTask
from onboarding.tasks import checklist_generate
from support.models import Case, Ticket, WebhookEvent
from tests import builders
from tests.billing.invoice_csv import HEADER, row
from tests.support.sender import SECRET, deliver, support_request

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 14, 30, tzinfo=dt.UTC)


def attribution(records) -> set[tuple]:
    """(type, actor, reason, done for) of history rows."""
    return {
        (r.history_type, r.history_actor, r.history_change_reason or "", r.history_for)
        for r in records
    }


@pytest.fixture
def product(db) -> Product:
    with acting_as("test:fixture"):
        return builders.product(sku="SEAT-PRO-1Y", name="Pro seat", term_days=365)


@pytest.fixture
def seat(customer, product) -> Entitlement:
    with acting_as("test:fixture"):
        return builders.entitlement(
            customer=customer,
            product=product,
            code="ISSU-ED00-0001",
            valid_until=dt.date(2026, 6, 30),
            issued_at=NOW,
        )


@pytest.fixture
def webhooks(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


# --- People: services and the admin ---------------------------------------------------


def test_a_service_run_by_a_person_names_them_and_the_reason(seat, ops_lead):
    with acting_as_user(ops_lead):  # what the middleware does for a web request
        entitlement_revoke(entitlement=seat, reason="left the company", by=ops_lead)
    record = seat.history.latest()
    assert attribution([record]) == {("~", "olga", "left the company", "")}
    assert record.history_user == ops_lead
    assert record.state == "revoked"


def test_an_admin_workflow_done_for_a_case_names_the_user_and_links_the_case(
    client, ops_lead, seat, customer
):
    with acting_as("test:fixture"):
        case = Case.objects.create(
            kind=Case.Kind.PROBLEM_REDEMPTION, customer=customer, dedupe_key="case-1"
        )
    client.force_login(ops_lead)
    url = reverse("admin:customers_entitlement_workflow", args=["revoke"])
    previewed = client.get(f"{url}?ids={seat.pk}").context["form"]["previewed"].value()
    response = client.post(
        f"{url}?ids={seat.pk}",
        {"reason": "seat returned", "done_for": f"case {case.pk}", "previewed": previewed},
    )
    assert response.status_code == 302
    assert attribution([seat.history.latest()]) == {
        ("~", "olga", "seat returned", f"support.case:{case.pk}")
    }
    assert seat.history.latest().history_user == ops_lead


# --- Commands -------------------------------------------------------------------------


def test_seed_demo_bulk_paths_name_who_made_each_change_in_the_demos_story(settings):
    """The demo's records carry the history of their past (opsdesk.demo.pasts): each row
    names the demo person, webhook or task that made the change; what the command itself
    runs (the year's reconciliation) names the command."""
    from kit import roles

    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    roles.roles_sync()  # a transactional test run before this one flushes the groups
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", "--customers=3", "--days=7", stdout=io.StringIO())
    people = {"support", "manager", "opslead", "admin", "dana", "lee"}
    for model in (Customer, Entitlement, Order, Ticket, Case, Invoice, WebhookEvent):
        rows = model.history.model.objects.values_list("history_actor", "history_user__username")
        assert rows.exists(), model._meta.label
        for actor, username in rows:
            if username is not None:
                assert actor == username and username in people, model._meta.label
            else:
                assert actor.startswith(("webhook:msg_", "task:", "command:")), actor
    assert set(ReconciliationRun.history.values_list("history_actor", flat=True)) == {
        "command:seed_demo"
    }
    usage = UsageDaily.history
    assert usage.exists()
    assert set(usage.values_list("history_actor", flat=True)) == {"webhook:usage.daily"}


def test_import_invoices_names_the_command_and_the_admin_upload_the_user(
    tmp_path, customer, ops_lead, client
):
    path = tmp_path / "nov.csv"
    path.write_text(HEADER + row("in_1"), encoding="utf-8")
    call_command("import_invoices", str(path), stdout=io.StringIO())
    reason = "imported from the billing export"
    assert attribution(Invoice.objects.get(external_id="in_1").history.all()) == {
        ("+", "command:import_invoices", reason, "")
    }

    client.force_login(ops_lead)
    upload = SimpleUploadedFile("dec.csv", (HEADER + row("in_2")).encode())
    assert client.post(reverse("admin:billing_invoice_upload"), {"file": upload}).status_code == 200
    record = Invoice.objects.get(external_id="in_2").history.get()
    assert attribution([record]) == {("+", "olga", reason, "")}
    assert record.history_user == ops_lead


# --- Reconciliation -------------------------------------------------------------------


def test_reconciliation_from_the_task_names_the_task(customer):
    """Acme's growth contract has no invoice for October: one missing-invoice case."""
    with time_machine.travel(NOW, tick=False):
        reconciliation_run.apply(args=["2026-10-01"]).get()
    run = ReconciliationRun.objects.get()
    case = Case.objects.get()
    assert attribution(case.history.all()) == {
        ("+", "task:reconciliation_run", f"found by reconciliation run #{run.pk}", "")
    }
    assert {r.history_actor for r in run.history.all()} == {"task:reconciliation_run"}
    assert run.started_by == "task:reconciliation_run"


def test_reconciliation_from_the_command_names_the_command(customer):
    with time_machine.travel(NOW, tick=False):
        call_command("reconcile", "--month", "2026-10", stdout=io.StringIO())
    run = ReconciliationRun.objects.get()
    assert attribution(Case.objects.get().history.all()) == {
        ("+", "command:reconcile", f"found by reconciliation run #{run.pk}", "")
    }
    assert {r.history_actor for r in run.history.all()} == {"command:reconcile"}


# --- Webhooks -------------------------------------------------------------------------


def test_a_processed_support_request_names_its_webhook(webhooks, customer):
    event = deliver(support_request(), webhook_id="msg_support_1")
    ticket = Ticket.objects.get(webhook_event=event)
    assert {r.history_actor for r in ticket.history.all()} == {"webhook:msg_support_1"}
    assert attribution(event.history.all()) == {
        ("+", "webhook:msg_support_1", "", ""),
        ("~", "webhook:msg_support_1", "", ""),
    }


def test_a_processed_order_names_its_webhook_on_the_order_and_its_seats(
    webhooks, customer, product
):
    deliver(
        {
            "type": "order.completed",
            "timestamp": "2026-11-21T09:30:05Z",
            "data": {
                "tenant_id": customer.external_id,
                "order_id": "ord_1001",
                "sku": product.sku,
                "quantity": 2,
                "amount": "800.00",
                "currency": "EUR",
                "paid_at": "2026-11-21T09:30:00Z",
            },
        },
        webhook_id="msg_order_1",
    )
    order = Order.objects.get(external_id="ord_1001")
    assert {r.history_actor for r in order.history.all()} == {"webhook:msg_order_1"}
    seats = Entitlement.history.filter(order_id=order.pk)
    assert seats.count() == 2
    assert {r.history_actor for r in seats} == {"webhook:msg_order_1"}


# --- Celery tasks ---------------------------------------------------------------------


def test_expiring_entitlements_names_the_task_and_the_reason(seat):
    entitlements_expire.apply().get()
    seat.refresh_from_db()
    assert seat.state == "expired"
    assert attribution([seat.history.latest()]) == {
        ("~", "task:entitlements_expire", "past its end date", "")
    }


def test_onboarding_generation_names_the_task(templates, customer, manager):
    contract = customer.contracts.get()
    checklist_generate.apply(args=[contract.pk]).get()
    checklist = Checklist.objects.get(contract=contract)
    assert {r.history_actor for r in checklist.history.all()} == {"task:checklist_generate"}
    tasks = ChecklistTask.history.filter(checklist_id=checklist.pk)
    assert tasks.exists()
    assert {(r.history_type, r.history_actor) for r in tasks} == {("+", "task:checklist_generate")}


def test_a_failed_order_event_opens_its_case_as_the_webhook(webhooks, product):
    deliver(
        {
            "type": "order.completed",
            "timestamp": "2026-11-21T09:30:05Z",
            "data": {
                "tenant_id": "nobody-0000",
                "order_id": "ord_2002",
                "sku": product.sku,
                "quantity": 1,
                "amount": "400.00",
                "currency": "EUR",
                "paid_at": "2026-11-21T09:30:00Z",
            },
        },
        webhook_id="msg_order_2",
    )
    case = Case.objects.get(kind=Case.Kind.FAILED_FULFILMENT)
    assert {(r.history_type, r.history_actor) for r in case.history.all()} == {
        ("+", "webhook:msg_order_2")
    }


def test_the_digest_task_names_itself_on_the_delivery(customer, manager, mailoutbox):
    from opsdesk.health.tasks import digest_send
    from opsdesk.models import DigestDelivery

    digest_send.apply(args=["2026-11-22", f"user:{manager.pk}"]).get()
    delivery = DigestDelivery.objects.get()
    assert delivery.status == "sent"
    assert {r.history_actor for r in delivery.history.all()} == {"task:digest_send"}


def test_after_the_demo_and_the_daily_tasks_no_history_row_is_unattributed(settings):
    from audit.context import UNATTRIBUTED
    from kit import roles
    from onboarding.tasks import checklists_sweep
    from tests.audit.project_models import project_models

    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    roles.roles_sync()  # a transactional test run before this one flushes the groups
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", "--customers=5", "--days=14", stdout=io.StringIO())
        entitlements_expire.apply().get()
        reconciliation_run.apply(args=["2026-10-01"]).get()
        checklists_sweep.apply().get()
    actors = set()
    for model in project_models():
        actors |= set(model.history.values_list("history_actor", flat=True).distinct())
    assert UNATTRIBUTED not in actors
    assert {"command:seed_demo", "task:reconciliation_run"} <= actors
