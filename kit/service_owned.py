"""Fields a service owns: written only through that service (which checks the state, the
permission and keeps the reason), so read-only in every admin form.

One declaration per model that any admin page edits (inlines included);
``tests/support/test_service_owned_fields.py`` walks every ModelAdmin of the admin site
and fails when a declared field is editable in an add or change form, or when a model
has no declaration. An add form may hold a service-owned field only when the admin's
add goes through a service that takes it (``ModelAdmin.add_service``, e.g. a new
ticket's priority, from which ``ticket_create`` sets the deadline).

``ALL``: every field; the record is the service's alone (made by events, imports or
workflows, changed by their actions).
"""

from __future__ import annotations

ALL = "__all__"

SERVICE_OWNED: dict[str, frozenset[str] | str] = {
    # Customer data people edit (row rules in customers.access decide who); what the CRM
    # sends is read-only once it has sent the record (customers.crm.CRM_OWNED), and when it
    # last changed it is the CRM's take alone.
    "customers.customer": frozenset({"crm_updated_at", "created_at", "updated_at"}),
    "customers.contact": frozenset({"created_at"}),
    "customers.contract": frozenset({"crm_updated_at", "created_at", "updated_at"}),
    "customers.product": frozenset(),
    # What the product sold (support.order_events.order_record); ended only by a
    # failed-fulfilment case's resolutions (customers.orders: order_fulfil, refund).
    "customers.order": ALL,
    # Issued by orders, changed by the entitlement workflows (customers.entitlements).
    "customers.entitlement": ALL,
    # Reported by the product (usage.daily); a superuser may still correct a day.
    "customers.usagedaily": frozenset(),
    # Each import of the CRM's exports, written by customers.crm_import (the upload page,
    # the worker, import_crm).
    "customers.crmimport": ALL,
    # Tickets: status, priority (and its deadlines), assignee and tags change through
    # support.tickets (the actions of the ticket page and the queue); the service levels
    # are support.ticket_sla's; what came from a product event is the event's.
    "support.ticket": frozenset(
        {
            "status",
            "priority",
            "assignee",
            "tags",
            "first_response_due_at",
            "first_response_warn_at",
            "first_responded_at",
            "next_response_due_at",
            "next_response_warn_at",
            "resolution_due_at",
            "resolution_warn_at",
            "sla_policy",
            "sla_paused_at",
            "sla_due_at",
            "sla_warn_at",
            "webhook_event",
            "tenant_id",
            "fingerprint",
            "occurrence_count",
            "latest_error_rate",
            "last_seen_at",
            # Linked and unlinked by support.problems (spikes, the problem page).
            "problem",
            "created_at",
            "updated_at",
        }
    ),
    # Problems are opened by error spikes at several tenants and worked on their page
    # (support.problems: link, update, solve); support names them.
    "support.problem": frozenset({"fingerprint", "status", "opened_at", "solved_at"}),
    "support.tag": frozenset(),
    "support.webhookevent": ALL,
    # Stored as received (support.inbound.inbound_store), changed only by processing and
    # Retry; its attachments are kept by processing.
    "support.inboundemail": ALL,
    "support.emailattachment": ALL,
    # Cases are opened by support.cases.case_open and worked in the ops inbox
    # (acknowledge, assign, resolve, waive).
    "support.case": ALL,
    "support.triagerule": frozenset(),
    # Macros are data support writes in the admin; applying one is support.macros.
    "support.macro": frozenset(),
    "support.triagecondition": frozenset(),
    # Service levels are data ops leads edit in the admin (support.admin_sla).
    "support.slapolicy": frozenset(),
    "support.slatarget": frozenset(),
    "support.slaholiday": frozenset(),
    "billing.invoice": frozenset({"imported_at"}),
    "billing.reconciliationrun": ALL,
    # Each import's record, written by billing.imports (the upload page, import_invoices).
    "billing.invoiceimport": ALL,
    "onboarding.checklisttemplate": frozenset({"created_at", "updated_at"}),
    "onboarding.templateitem": frozenset(),
    "onboarding.checklist": ALL,
    # Generated from the template; done and reopen are onboarding.services. Who does it
    # and by when are edited by hand.
    "onboarding.checklisttask": frozenset(
        {"checklist", "template_item", "title", "text", "role", "state", "done_by", "done_at"}
    ),
    "opsdesk.digestdelivery": ALL,
    # Health signals and their sweeps (opsdesk.health.signals): made and resolved by the
    # daily sweep; acknowledged and snoozed on their confirmation pages, never in a form.
    "opsdesk.healthsignal": ALL,
    "opsdesk.healthsweep": ALL,
    # What opsdesk told a person (opsdesk.notifications): stored and sent by its services.
    "opsdesk.notification": ALL,
    # Saved views (opsdesk.saved_views.services): saved from their page; name, filters,
    # sharing and position changed through saved_view_update (SavedViewAdmin).
    "opsdesk.savedview": ALL,
    # Staff accounts and groups are superuser business, edited by hand.
    "auth.user": frozenset(),
    "auth.group": frozenset(),
}


def service_owned(model) -> list[str]:
    """The names of ``model``'s service-owned fields (KeyError: not declared)."""
    declared = SERVICE_OWNED[model._meta.label_lower]
    if declared == ALL:
        return [
            field.name
            for field in model._meta.get_fields()
            if (field.concrete and not field.primary_key)
            or (field.many_to_many and not field.auto_created)
        ]
    return sorted(declared)
