"""Fixtures of the admin-wide tests: ``world``, one row of every model."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group

from audit.context import acting_as
from billing.models import InvoiceImport, ReconciliationRun
from customers.models import (
    Contact,
    Contract,
    CrmImport,
    Entitlement,
    Order,
    Product,
    UsageDaily,
)
from kit import roles
from onboarding.models import ChecklistTask, ChecklistTemplate
from onboarding.services import checklist_generate
from opsdesk.models import DigestDelivery, HealthSignal, HealthSweep, SavedView
from support import sla
from support.models import (
    Case,
    EmailAttachment,
    Macro,
    SlaHoliday,
    SlaPolicy,
    SlaTarget,
    Tag,
    Ticket,
    TriageRule,
    WebhookEvent,
)
from tests import builders
from tests.opsdesk.admin_matrix import workflow_rows
from tests.personas import staff_user
from tests.records import populate


@pytest.fixture
def world(db, agent, manager, ops_lead, superuser, customer, templates):
    """One row of every model, Acme's (managed by Alice) where it belongs to a customer."""
    inactive = staff_user("ivan", roles.OPS_LEADS, is_active=False)
    (other,) = populate(1, start=90)
    with acting_as("test:fixture"):
        product = Product.objects.get(sku="SEAT-PACK-10")
        order = Order.objects.get(customer=other)
        entitlement = Entitlement.objects.filter(customer=other).first()
        ticket = Ticket.objects.get(customer=other)
        case = Case.objects.get(customer=other)
        run = ReconciliationRun.objects.create(month=dt.date(2026, 10, 1))
        invoice_import = InvoiceImport.objects.create(
            file_name="invoices.csv", status=InvoiceImport.Status.SUCCEEDED, created=1
        )
        crm_import = CrmImport.objects.create(
            accounts_file_name="accounts.csv",
            status=CrmImport.Status.ROWS_REJECTED,
            progress=100,
            counts={"accounts": {"created": 1, "changed": 0, "unchanged": 0, "stale": 0}},
            rejected=1,
            notes=[
                {
                    "file": "accounts",
                    "line": 3,
                    "crm_id": "001X",
                    "rejected": True,
                    "message": "name: Field required",
                }
            ],
        )
        rule = TriageRule.objects.create(name="VIP first")
        # Applicable to the other customer's ticket by whoever works tickets.
        macro = Macro.objects.create(name="Escalate", set_queue="escalations")
        # A policy of no plan (adding a copy of it takes no plan from another one).
        policy = SlaPolicy.objects.create(name="Premium", business_hours=sla.DEFAULT_HOURS)
        for priority, target in sla.default_targets().items():
            SlaTarget.objects.create(
                policy=policy,
                priority=priority,
                first_response_minutes=target.first_response // dt.timedelta(minutes=1),
                next_response_minutes=target.next_response // dt.timedelta(minutes=1),
                resolution_minutes=target.resolution // dt.timedelta(minutes=1),
            )
        SlaHoliday.objects.create(policy=policy, date=dt.date(2026, 12, 25), name="Christmas")
        email = builders.inbound_email(ticket=ticket, status="processed", kind="message")
        EmailAttachment.objects.create(
            inbound=email, filename="log.txt", content_type="text/plain", content=b"x", size=1
        )
        delivery = DigestDelivery.objects.create(
            digest_date=dt.date(2026, 11, 2),
            recipient_key=f"user:{manager.pk}",
            recipient=manager,
            email=manager.email,
        )
        notification = builders.notification(recipient=agent)
        signal = HealthSignal.objects.create(
            customer=customer,
            kind="dormant",
            label="Dormant",
            opened_on=dt.date(2026, 11, 2),
            opened_reason="no login for 14 days (last 19 Oct 2026)",
            reason="no login for 14 days (last 19 Oct 2026)",
            value=14,
        )
        sweep = HealthSweep.objects.create(
            date=dt.date(2026, 11, 2), status="finished", claimed_at=dt.datetime.now(dt.UTC)
        )
        saved_view = SavedView.objects.create(
            owner=agent, page="queue", name="Urgent", query="priority=urgent", shared=True
        )
        # An error at two tenants, one ticket with a requester (whom an update reaches);
        # the other customer's ticket is one to link.
        problem = builders.problem(
            fingerprint="E-EXPORT",
            tickets=[
                builders.ticket(tenant_id="tenant-77", fingerprint="E-EXPORT"),
                builders.ticket(
                    tenant_id="tenant-78", fingerprint="E-EXPORT", requester_email="pat@example.com"
                ),
            ],
        )
    checklist = checklist_generate(contract=customer.contracts.get())
    event = WebhookEvent.objects.get()
    objects = {
        **workflow_rows(other, entitlement, order, ticket, agent),
        "customers_customer": customer,
        "customers_contact": Contact.objects.get(customer=other),
        "customers_contract": Contract.objects.get(customer=other),
        "customers_product": product,
        "customers_order": order,
        "customers_entitlement": entitlement,
        "customers_usagedaily": UsageDaily.objects.filter(customer=other).first(),
        "customers_crmimport": crm_import,
        "support_tag": Tag.objects.get(name="vip"),
        "support_ticket": ticket,
        "support_webhookevent": event,
        "support_inboundemail": email,
        "support_triagerule": rule,
        "support_macro": macro,
        "support_problem": problem,
        "support_slapolicy": policy,
        "support_case": case,
        "billing_invoice": other.invoices.get(),
        "billing_reconciliationrun": run,
        "billing_invoiceimport": invoice_import,
        "onboarding_checklisttemplate": ChecklistTemplate.objects.first(),
        "onboarding_checklist": checklist,
        "onboarding_checklisttask": ChecklistTask.objects.filter(checklist=checklist).first(),
        "opsdesk_digestdelivery": delivery,
        "opsdesk_healthsignal": signal,
        "opsdesk_healthsweep": sweep,
        "opsdesk_notification": notification,
        "opsdesk_savedview": saved_view,
        "auth_user": agent,
        "auth_group": Group.objects.get(name=roles.SUPPORT),
    }
    personas = {
        "anonymous": None,
        "inactive": inactive,
        "support": agent,
        "manager": manager,
        "ops_lead": ops_lead,
        "superuser": superuser,
    }
    return objects, personas
