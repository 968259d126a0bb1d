"""simple-history's version pages (``<app>/<model>/<id>/history/<history_id>/``) show a
past version read-only, to every persona, superusers included: no POST through them
changes a row (it once let support set an invoice to 999999.00 and void there, an account
manager changed another manager's contract and took over another's customer).

Every ModelAdmin of ``admin.site`` that has history is walked from the registry, so a new
audited model is covered without a line here.
"""

from __future__ import annotations

import datetime as dt

import pytest
from bs4 import BeautifulSoup
from django.apps import apps
from django.contrib import admin
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin
from webtest.forms import Form as WebTestForm

from audit.admin import AuditedModelAdmin
from audit.context import acting_as
from billing.models import Invoice, InvoiceImport, ReconciliationRun
from customers.models import Contract, CrmImport
from onboarding.services import checklist_generate
from opsdesk.models import DigestDelivery, HealthSignal, HealthSweep, SavedView
from support.models import Macro, TriageRule
from tests import builders
from tests.records import populate

pytestmark = pytest.mark.django_db

PERSONAS = ["agent", "manager", "other_manager", "ops_lead", "superuser"]
# Text fields a changed form changes when the model has them ("n" + the value stays valid).
CHANGED = ("name", "subject", "title", "summary", "description", "email", "number")


def history_admins() -> list[tuple[type, SimpleHistoryAdmin]]:
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, SimpleHistoryAdmin)
    ]


def table_counts() -> dict[str, int]:
    """Rows of every table (history and the admin log included), sessions aside."""
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model is not Session
    }


def form_fields(html: str) -> list[tuple[str, str]]:
    """What a browser submits with the page's main POST form (WebTest parses it)."""
    soup = BeautifulSoup(html, "html.parser")
    forms = [f for f in soup.find_all("form") if f.get("method", "").lower() == "post"]
    forms = [f for f in forms if not f.get("id", "").startswith("logout")]
    if not forms:
        return []
    main = next((f for f in forms if f.get("id", "").endswith("_form")), forms[0])
    del main["id"]  # WebTest looks for form="<id>" fields in a response it is not given
    return [(name, value) for name, value in WebTestForm(None, str(main)).submit_fields() if name]


def changed_form(superuser_client: Client, model, obj) -> dict[str, list[str]]:
    """The superuser's change form of ``obj`` as a browser would post it, with its text
    fields changed: the body of a "revert" that would overwrite the row."""
    opts = model._meta
    page = superuser_client.get(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    )
    assert page.status_code == 200, (opts.label, page.status_code)
    body: dict[str, list[str]] = {}
    for name, value in form_fields(page.content.decode()):
        if name == "csrfmiddlewaretoken":
            continue
        if name in CHANGED and value:
            value = "n" + value
        body.setdefault(name, []).append(value)
    return body


@pytest.fixture
def world(db, manager, other_manager, superuser, templates, sla_policies):
    """A row of every model with history: Bob's customer with one of everything, its
    onboarding checklist, a reconciliation run, a triage rule, an email to support and a
    digest delivery."""
    [bobs] = populate(1, manager=other_manager)
    with acting_as("test:fixture"):
        ReconciliationRun.objects.create(month=dt.date(2026, 10, 1))
        InvoiceImport.objects.create(file_name="invoices.csv", status="succeeded", created=1)
        CrmImport.objects.create(accounts_file_name="accounts.csv", status="succeeded")
        TriageRule.objects.create(name="VIP first")
        Macro.objects.create(name="Escalate", set_queue="escalations")
        builders.problem(tickets=[builders.ticket()])
        builders.inbound_email(ticket=bobs.tickets.get())
        DigestDelivery.objects.create(
            digest_date=dt.date(2026, 11, 2),
            recipient_key=f"user:{other_manager.pk}",
            recipient=other_manager,
            email=other_manager.email,
        )
        builders.notification(recipient=superuser)
        HealthSignal.objects.create(
            customer=bobs,
            kind="dormant",
            label="Dormant",
            opened_on=dt.date(2026, 11, 2),
            opened_reason="no login for 14 days",
            reason="no login for 14 days",
        )
        HealthSweep.objects.create(
            date=dt.date(2026, 11, 2), status="finished", claimed_at=dt.datetime.now(dt.UTC)
        )
        # The superuser's own, shared (another's personal view is nobody else's page).
        SavedView.objects.create(
            owner=superuser, page="queue", name="Urgent", query="priority=urgent", shared=True
        )
    checklist_generate(contract=bobs.contracts.get())
    return bobs


def test_every_admin_with_history_pages_is_an_audited_model_admin():
    """The read-only version page lives in AuditedModelAdmin: an admin registered with
    simple-history's own base would bring back its saving "Revert" page."""
    found = history_admins()
    assert len(found) >= 18
    assert [
        model._meta.label
        for model, model_admin in found
        if not isinstance(model_admin, AuditedModelAdmin)
    ] == []


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_post_to_any_history_page_is_refused_and_changes_nothing(request, world, persona):
    superuser_client = Client()
    superuser_client.force_login(request.getfixturevalue("superuser"))
    client = Client(raise_request_exception=False)
    client.force_login(request.getfixturevalue(persona))
    tried, wrong = 0, []
    for model, _ in history_admins():
        obj = model.objects.order_by("pk").first()
        assert obj is not None, f"the world has no {model._meta.label}: add one"
        version = obj.history.order_by("history_date").first()
        opts = model._meta
        url = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_simple_history",
            args=[obj.pk, version.history_id],
        )
        body = changed_form(superuser_client, model, obj)
        values = model.objects.filter(pk=obj.pk).values().get()
        before = table_counts()

        response = client.post(url, body)

        tried += 1
        if response.status_code not in (403, 405):
            wrong.append(f"{opts.label}: POST answered {response.status_code}")
        if table_counts() != before or model.objects.filter(pk=obj.pk).values().get() != values:
            wrong.append(f"{opts.label}: a row changed")
    assert not wrong, "\n".join(wrong)
    assert tried == len(history_admins())


def test_the_invoice_support_set_to_999999_through_its_history_page_stays_as_it_was(
    client, agent, world
):
    invoice = Invoice.objects.get()
    version = invoice.history.get()
    client.force_login(agent)

    response = client.post(
        f"/admin/billing/invoice/{invoice.pk}/history/{version.history_id}/",
        {**changed_form_of_invoice(invoice), "amount_due": "999999.00", "status": "void"},
    )

    assert response.status_code == 405
    invoice.refresh_from_db()
    assert (str(invoice.amount_due), invoice.status, invoice.history.count()) == (
        "100.00",
        "paid",
        1,
    )


def changed_form_of_invoice(invoice) -> dict[str, str]:
    return {
        "external_id": invoice.external_id,
        "tenant_id": invoice.tenant_id,
        "customer": str(invoice.customer_id),
        "number": invoice.number,
        "currency": invoice.currency,
        "amount_paid": str(invoice.amount_paid),
        "period_start": invoice.period_start.isoformat(),
        "period_end": invoice.period_end.isoformat(),
        "issued_at": invoice.issued_at.isoformat(),
        "due_at": invoice.due_at.isoformat(),
    }


def test_a_version_page_shows_the_old_values_read_only_with_no_revert(
    client, superuser, other_manager, world
):
    contract = Contract.objects.get(customer=world)
    with acting_as("bob", user=other_manager):
        contract.seats = 80
        contract.save()
    first = contract.history.order_by("history_date").first()
    client.force_login(superuser)

    response = client.get(f"/admin/customers/contract/{contract.pk}/history/{first.history_id}/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "<title> View Customer 0 · Starter · 10 seats | opsdesk</title>" in content
    assert 'name="seats"' not in content and 'name="_save"' not in content
    assert "Revert" not in content
    label = BeautifulSoup(content, "html.parser").find("label", string="Seats")
    assert label.find_next(class_="readonly").get_text() == "10"
    contract.refresh_from_db()
    assert contract.seats == 80
