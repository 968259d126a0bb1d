"""The admin's pages and workflows, with who may open and run each (``MATRIX``, ``WORKFLOWS``'
inputs) and how to reach each page for a persona: the declarations the permission and
write matrices test."""

from __future__ import annotations

import datetime as dt

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from audit.context import acting_as
from customers.entitlements import entitlement_assign
from customers.models import Entitlement, Order
from support.models import Case, EmailAttachment, InboundEmail, TicketComment, WebhookEvent
from tests import builders

PERSONAS = ("anonymous", "inactive", "support", "manager", "ops_lead", "superuser")
LOGIN = "login"
NOT_FOUND = "404"


def staff(support, manager, ops_lead, superuser=200):
    """Anonymous and inactive staff are sent to the login page whatever the page."""
    return dict(zip(PERSONAS, (LOGIN, LOGIN, support, manager, ops_lead, superuser), strict=True))


ALL = staff(200, 200, 200)
SUPERUSER_ONLY = staff(403, 403, 403)
READ_ONLY = staff(200, 200, 200)  # the change page of a model it may only view
NO_ADD = staff(403, 403, 403)  # rows come from imports, webhooks or services; a superuser may
NO_DELETE = staff(403, 403, 403)  # roles never delete by hand; a superuser may (history keeps it)
NOBODY = staff(403, 403, 403, 403)  # made by services only (or, for users, never deleted)
INBOUND_READERS = staff(200, 403, 200)


def model_pages(*, changelist, add, change, delete, history=ALL, audited=True):
    """The five standard pages of a ModelAdmin, simple-history's version page (on
    audited models) and the bare-id redirect (``<id>/`` to ``<id>/change/``)."""
    pages = {
        "changelist": changelist,
        "add": add,
        "change": change,
        "delete": delete,
        "history": history,
        "object": staff("302", "302", "302", "302"),
    }
    return pages | ({"simple_history": history} if audited else {})


# Model pages per model, then the custom views, keyed by URL name (or route for the
# unnamed bare-id redirects, expanded below).
MODELS = {
    # Core customer data: everyone reads; account managers add customers and edit
    # theirs (the customer row itself is checked per object in roles.py).
    "customers_customer": model_pages(
        changelist=ALL, add=staff(403, 403, 403), change=ALL, delete=NO_DELETE
    ),
    "customers_contact": model_pages(
        changelist=ALL, add=staff(403, 200, 403), change=ALL, delete=staff(403, 403, 403)
    ),
    "customers_contract": model_pages(
        changelist=ALL, add=staff(403, 200, 403), change=ALL, delete=NO_DELETE
    ),
    "customers_product": model_pages(
        changelist=ALL, add=staff(403, 403, 403), change=ALL, delete=staff(403, 403, 403)
    ),
    "customers_order": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NO_DELETE),
    "customers_entitlement": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NO_DELETE),
    "customers_usagedaily": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NO_DELETE),
    # Each import of the CRM's exports, made by the import: whoever may take CRM records
    # by hand (customers.link_crm_account: ops leads) uploads and follows them.
    "customers_crmimport": model_pages(
        changelist=staff(403, 403, 200),
        add=NOBODY,
        change=staff(403, 403, 200),
        delete=NOBODY,
        history=staff(403, 403, 200),
    ),
    # Tickets are support's work; everyone reads them.
    "support_tag": model_pages(
        changelist=ALL, add=staff(403, 403, 403), change=ALL, delete=staff(403, 403, 403)
    ),
    "support_ticket": model_pages(
        changelist=ALL, add=staff(200, 403, 403), change=ALL, delete=NO_DELETE
    ),
    "support_webhookevent": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NO_DELETE),
    # Inbound email: support and ops leads read it (account managers read the conversation
    # on the ticket); it arrives by itself, nobody adds one.
    "support_inboundemail": model_pages(
        changelist=INBOUND_READERS,
        add=NOBODY,
        change=INBOUND_READERS,
        delete=NO_DELETE,
        history=INBOUND_READERS,
    ),
    "support_triagerule": model_pages(
        changelist=ALL, add=staff(200, 403, 403), change=ALL, delete=staff(200, 403, 403)
    ),
    # Macros: every role reads them, support and ops leads write them (retired by
    # unticking "active"), a superuser deletes one.
    "support_macro": model_pages(
        changelist=ALL, add=staff(200, 403, 200), change=ALL, delete=NO_DELETE
    ),
    # Problems: every role reads them, support and ops leads work them (name, link,
    # update, solve); error spikes make them, nobody adds one; one with tickets stays.
    "support_problem": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NO_DELETE),
    # Service levels: every role reads them, ops leads edit them, a superuser deletes one.
    "support_slapolicy": model_pages(
        changelist=ALL, add=staff(403, 403, 200), change=ALL, delete=NO_DELETE
    ),
    "support_case": model_pages(
        changelist=ALL, add=staff(403, 403, 200), change=ALL, delete=NO_DELETE
    ),
    # Invoices are imported (the upload page), never typed in.
    "billing_invoice": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NO_DELETE),
    # Adding a run is starting one: the add page sends to the start page.
    "billing_reconciliationrun": model_pages(
        changelist=ALL, add=staff("302", "302", "302", "302"), change=ALL, delete=NOBODY
    ),
    # Each import's record, made by the import: every role reads it.
    "billing_invoiceimport": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NO_DELETE),
    "onboarding_checklisttemplate": model_pages(
        changelist=ALL, add=staff(403, 403, 200), change=ALL, delete=staff(403, 403, 200)
    ),
    "onboarding_checklist": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NOBODY),
    "onboarding_checklisttask": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NOBODY),
    "opsdesk_digestdelivery": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NO_DELETE),
    # Health signals: everyone reads them (the record is read-only; the sweep makes them,
    # people act on the confirmation pages); the sweeps' log is for ops leads.
    "opsdesk_healthsignal": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NO_DELETE),
    "opsdesk_healthsweep": model_pages(
        changelist=staff(403, 403, 200),
        add=NOBODY,
        change=staff(403, 403, 200),
        delete=NO_DELETE,
        history=staff(403, 403, 200),
    ),
    # What opsdesk told a person: each staff member's own (the world's is the agent's);
    # another's is not found (302 to the index) and its history refused.
    "opsdesk_notification": model_pages(
        changelist=ALL,
        add=NOBODY,
        change=staff(200, "302", "302", "302"),
        delete=NOBODY,
        history=staff(200, 403, 403, 403),
    ),
    # Saved views: the world's is Sam's (support), shared. Everyone sees it; its owner and
    # ops leads (and superusers) change and delete it; views are saved from their page,
    # never added here. (Another's personal view is not found: tests/opsdesk/saved_views.)
    "opsdesk_savedview": model_pages(
        changelist=ALL,
        add=staff(403, 403, 403, 403),
        change=ALL,
        delete=staff(200, 403, 200),
    ),
    # Staff accounts and groups: superusers only; users are deactivated, never deleted.
    "auth_user": {
        **model_pages(
            changelist=SUPERUSER_ONLY,
            add=SUPERUSER_ONLY,
            change=SUPERUSER_ONLY,
            delete=NOBODY,
            history=SUPERUSER_ONLY,
            audited=False,
        ),
        "password_change": SUPERUSER_ONLY,
        # The autocomplete of person fields (kit.people): no model named, refused.
        "people": staff(403, 403, 403, 403),
    },
    "auth_group": model_pages(
        changelist=SUPERUSER_ONLY,
        add=SUPERUSER_ONLY,
        change=SUPERUSER_ONLY,
        delete=SUPERUSER_ONLY,
        history=SUPERUSER_ONLY,
        audited=False,
    ),
}

VIEWS = {
    # The site itself.
    "index": ALL,
    "login": dict.fromkeys(PERSONAS, 200)
    | {"support": "302", "manager": "302", "ops_lead": "302", "superuser": "302"},
    # Signing out is POST only; the admin sends the signed-out to its index (then login).
    "logout": {**staff(405, 405, 405, 405), "anonymous": "302", "inactive": "302"},
    "password_change": ALL,
    "password_change_done": ALL,
    "search": ALL,
    "autocomplete": staff(403, 403, 403, 403),  # no term, no model: refused for everyone
    "jsi18n": ALL,
    "view_on_site": staff(404, 404, 404, 404),  # no model has a public page
    "app_list": ALL,
    "catch_all": staff(404, 404, 404, 404),
    # Support's work.
    "support_ticket_queue": ALL,
    # The support report, its drill-down and CSV: whoever reads tickets (every role).
    "support_ticket_report": ALL,
    "support_ticket_report_tickets": ALL,
    "support_ticket_report_csv": ALL,
    # POST-only actions answer GET with 405 before any permission check; who may POST
    # them is test_roles_that_may_not_run_a_workflow_get_403_and_nothing_changes's job.
    "support_ticket_act": staff(405, 405, 405, 405),
    "support_ticket_reply_retry": staff(405, 405, 405, 405),
    # A macro's preview and its application: who works tickets (support).
    "support_ticket_macro": staff(200, 403, 403),
    "support_webhookevent_retry": staff(405, 405, 405, 405),
    "support_inboundemail_retry": staff(405, 405, 405, 405),
    # A problem's update and solve (confirmation pages), link and unlink (POST only):
    # support and ops leads.
    "support_problem_update": staff(200, 403, 200),
    "support_problem_solve": staff(200, 403, 200),
    "support_problem_link": staff(405, 405, 405, 405),
    "support_problem_unlink": staff(405, 405, 405, 405),
    # An email's original and attachments: whoever may view its ticket (every role).
    "support_inboundemail_original": ALL,
    "support_inboundemail_attachment": ALL,
    # Entitlement workflows: ops leads (transfer: ops leads only, docs/product.md).
    "customers_entitlement_workflow": staff(403, 403, 200),
    "customers_entitlement_assign_detail": staff(403, 403, 200),
    "customers_entitlement_reassign_detail": staff(403, 403, 200),
    "customers_entitlement_revoke_detail": staff(403, 403, 200),
    "customers_entitlement_reissue_detail": staff(403, 403, 200),
    "customers_entitlement_transfer_detail": staff(403, 403, 200),
    # The CRM's exports: uploaded by ops leads, who download an import's rejected rows.
    "customers_crmimport_upload": staff(403, 403, 200),
    "customers_crmimport_notes": staff(403, 403, 200),
    # Account migration: ops leads only.
    "customers_customer_migrate_account": staff(403, 403, 200),
    # The exception inbox: everyone reads it; ops leads work it.
    "support_case_inbox": ALL,
    "support_case_bulk": staff(405, 405, 405, 405),
    "support_case_acknowledge": staff(405, 405, 405, 405),
    "support_case_resolve_note": staff(403, 403, 200),
    "support_case_waive": staff(403, 403, 200),
    "support_case_recheck": staff(405, 405, 405, 405),
    "support_case_resolve": staff(403, 403, 200),
    # The freshness of outside data: whoever works failed deliveries (ops leads).
    "freshness": staff(403, 403, 200),
    # Billing: ops leads import and reconcile.
    "billing_invoice_upload": staff(403, 403, 200),
    "billing_reconciliationrun_start": staff(403, 403, 200),
    # Onboarding.
    "onboarding_checklist_overview": ALL,
    "onboarding_checklisttask_mine": ALL,
    "onboarding_checklisttask_done": staff(405, 405, 405, 405),
    "onboarding_checklisttask_reopen": staff(405, 405, 405, 405),
    # The digest and its delivery log: read by every role (customer health is
    # customer-related); only sending again is restricted.
    "opsdesk_digestdelivery_preview": ALL,
    # A signal's confirmation pages show it to every role (who may not act is told why,
    # without the form); the reasons given per kind are everyone's to read.
    "opsdesk_healthsignal_acknowledge": ALL,
    "opsdesk_healthsignal_snooze": ALL,
    "opsdesk_healthsignal_reasons": ALL,
    # Each staff member's own notification settings, like their password.
    "opsdesk_notification_preferences": ALL,
    # "Save this view" (POST only; every role keeps views) and the sidebar's views.
    "opsdesk_savedview_save": staff(405, 405, 405, 405),
    "opsdesk_savedview_sidebar": ALL,
    # Audit (the lead's customer audit pages): every staff role reads them.
    "customers_customer_audit": ALL,
    "customers_customer_as_of": ALL,
    "customers_customer_audit_log": ALL,
    "customers_customer_audit_log_csv": ALL,
}

MATRIX: dict[str, dict[str, object]] = {
    **{
        f"{model}_{page}": outcome
        for model, pages in MODELS.items()
        for page, outcome in pages.items()
    },
    **VIEWS,
}


def workflow_rows(other, entitlement, order, ticket, author) -> dict:
    """For a workflow page (keyed by its URL name), a row the workflow can act on, so the
    write matrix proves both sides: who may, writes; who may not, writes nothing."""
    with acting_as("test:fixture"):
        assigned = Entitlement.objects.filter(customer=other).exclude(pk=entitlement.pk).get()
        entitlement_assign(entitlement=assigned, email="ann@example.com", reason="setup")
        order.fulfilment = Order.Fulfilment.FAILED
        order.save(update_fields=["fulfilment"])
        failed = builders.case(
            kind=Case.Kind.FAILED_FULFILMENT, customer=other, summary="Order failed", subject=order
        )
        billing = builders.case(
            kind=Case.Kind.MISSING_INVOICE,
            customer=other,
            summary="No invoice for October",
            period=dt.date(2026, 10, 1),
        )
        event = WebhookEvent.objects.create(
            webhook_id="evt-failed", type="support.request", status=WebhookEvent.Status.FAILED
        )
        failed_email = builders.inbound_email(
            status=InboundEmail.Status.FAILED, attempts=6, error="RuntimeError: down"
        )
        TicketComment.objects.create(
            ticket=ticket,
            kind=TicketComment.Kind.REPLY,
            body="We are on it.",
            author=author,
            sent_to="pat@example.com",
            failed_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
            delivery_attempts=9,
            delivery_error="SMTPRecipientsRefused",
        )
    return {
        "customers_entitlement_reassign_detail": assigned,
        "customers_customer_migrate_account": other,
        "support_case_resolve": failed,
        "support_case_recheck": billing,
        "support_webhookevent_retry": event,
        "support_ticket_reply_retry": ticket,
        "support_inboundemail_retry": failed_email,
    }


def object_for(key: str, objects: dict):
    if key in objects:  # a workflow's own row
        return objects[key]
    for model, obj in objects.items():
        if key.startswith(model + "_"):
            return obj
    raise AssertionError(f"no object for {key}")


def url_of(key: str, route: str, objects: dict) -> str:
    """A concrete URL for one pattern, filled from the world's rows."""
    base = reverse("admin:index")
    if key == "catch_all":
        return base + "no-such-page/"
    if key == "app_list":
        return reverse("admin:app_list", args=["customers"])
    if key == "view_on_site":
        customer = objects["customers_customer"]
        return reverse(
            "admin:view_on_site",
            args=[ContentType.objects.get_for_model(customer).pk, customer.pk],
        )
    if key == "customers_entitlement_workflow":
        entitlement = objects["customers_entitlement"]
        return reverse("admin:customers_entitlement_workflow", args=["assign"]) + (
            f"?ids={entitlement.pk}"
        )
    if key == "support_ticket_macro":  # the preview of the world's macro on its ticket
        return reverse(f"admin:{key}", args=[objects["support_ticket"].pk]) + (
            f"?macro={objects['support_macro'].pk}"
        )
    if key == "support_case_resolve":
        case = object_for(key, objects)
        return reverse("admin:support_case_resolve", args=[case.pk, "refund"])
    if key == "support_inboundemail_attachment":
        item = EmailAttachment.objects.get(inbound=objects["support_inboundemail"])
        return reverse(f"admin:{key}", args=[item.inbound_id, item.pk])
    if key.endswith("_simple_history"):
        obj = object_for(key, objects)
        return base + route.split("^")[0] + f"{obj.pk}/history/{obj.history.first().pk}/"
    if key.endswith("_object"):
        obj = object_for(key, objects)
        return base + route.replace("<path:object_id>", str(obj.pk))
    if "<path:object_id>" in route or "<id>" in route:
        return reverse(f"admin:{key}", args=[object_for(key, objects).pk])
    return reverse(f"admin:{key}")


def outcome(response) -> str | int:
    if response.status_code == 302:
        return LOGIN if response["Location"].startswith(reverse("admin:login")) else "302"
    return response.status_code
