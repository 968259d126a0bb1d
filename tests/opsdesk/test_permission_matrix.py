"""Who may open every page of the admin and run every workflow (PRODUCT.md "Roles").

Every URL pattern of the admin site is walked from the URLconf (custom views of
``get_urls`` and unfold's detail actions included) and opened with GET as each persona;
the outcome must be the one declared in ``MATRIX``. A pattern the matrix does not name
fails the test: a new page cannot ship without a decision on who sees it.

Outcomes: ``LOGIN`` a redirect to the admin login, ``"302"`` any other redirect, else the
status code. Personas: anonymous, an inactive staff member (who was in Ops leads), the
three role groups and a superuser.

PRODUCT.md: support reads everything customer-related and works tickets; account
managers edit their customers and contracts; ops leads run and resolve exception
workflows and reconciliation; nobody but ops leads (and superusers) transfers
entitlements or migrates accounts. Staff users and groups are superuser business.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.db.models import CharField, UniqueConstraint
from django.test import Client, TestCase
from django.urls import reverse
from webtest import TestResponse
from webtest.forms import Hidden

from audit.context import acting_as
from billing.models import ReconciliationRun
from customers.entitlements import entitlement_assign
from customers.models import Contact, Contract, Entitlement, Order, Product, UsageDaily
from kit import roles
from onboarding.models import ChecklistTask, ChecklistTemplate
from onboarding.services import checklist_generate
from opsdesk.models import DigestDelivery
from support.models import Case, Tag, Ticket, TicketComment, TriageRule, WebhookEvent
from tests import builders
from tests.admin_walk import admin_patterns
from tests.personas import PASSWORD, staff_user
from tests.records import populate

pytestmark = pytest.mark.django_db

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
    "customers_usagedaily": model_pages(changelist=ALL, add=NO_ADD, change=ALL, delete=NO_DELETE),
    # Tickets are support's work; everyone reads them.
    "support_tag": model_pages(
        changelist=ALL, add=staff(403, 403, 403), change=ALL, delete=staff(403, 403, 403)
    ),
    "support_ticket": model_pages(
        changelist=ALL, add=staff(200, 403, 403), change=ALL, delete=NO_DELETE
    ),
    "support_webhookevent": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NO_DELETE),
    "support_triagerule": model_pages(
        changelist=ALL, add=staff(200, 403, 403), change=ALL, delete=staff(200, 403, 403)
    ),
    "support_case": model_pages(
        changelist=ALL, add=staff(403, 403, 200), change=ALL, delete=NO_DELETE
    ),
    "billing_invoice": model_pages(
        changelist=ALL, add=staff(403, 403, 200), change=ALL, delete=NO_DELETE
    ),
    # Adding a run is starting one: the add page sends to the start page.
    "billing_reconciliationrun": model_pages(
        changelist=ALL, add=staff("302", "302", "302", "302"), change=ALL, delete=NOBODY
    ),
    "onboarding_checklisttemplate": model_pages(
        changelist=ALL, add=staff(403, 403, 200), change=ALL, delete=staff(403, 403, 200)
    ),
    "onboarding_checklist": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NOBODY),
    "onboarding_checklisttask": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NOBODY),
    "opsdesk_digestdelivery": model_pages(changelist=ALL, add=NOBODY, change=ALL, delete=NO_DELETE),
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
    # POST-only actions answer GET with 405 before any permission check; who may POST
    # them is test_roles_that_may_not_run_a_workflow_get_403_and_nothing_changes's job.
    "support_ticket_act": staff(405, 405, 405, 405),
    "support_ticket_comment": staff(405, 405, 405, 405),
    "support_ticket_reply_retry": staff(405, 405, 405, 405),
    "support_webhookevent_retry": staff(405, 405, 405, 405),
    # Entitlement workflows: ops leads (transfer: ops leads only, PRODUCT.md).
    "customers_entitlement_workflow": staff(403, 403, 200),
    "customers_entitlement_assign_detail": staff(403, 403, 200),
    "customers_entitlement_reassign_detail": staff(403, 403, 200),
    "customers_entitlement_revoke_detail": staff(403, 403, 200),
    "customers_entitlement_reissue_detail": staff(403, 403, 200),
    "customers_entitlement_transfer_detail": staff(403, 403, 200),
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
        rule = TriageRule.objects.create(name="VIP first")
        delivery = DigestDelivery.objects.create(
            digest_date=dt.date(2026, 11, 2),
            recipient_key=f"user:{manager.pk}",
            recipient=manager,
            email=manager.email,
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
        "support_tag": Tag.objects.get(name="vip"),
        "support_ticket": ticket,
        "support_webhookevent": event,
        "support_triagerule": rule,
        "support_case": case,
        "billing_invoice": other.invoices.get(),
        "billing_reconciliationrun": run,
        "onboarding_checklisttemplate": ChecklistTemplate.objects.first(),
        "onboarding_checklist": checklist,
        "onboarding_checklisttask": ChecklistTask.objects.filter(checklist=checklist).first(),
        "opsdesk_digestdelivery": delivery,
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
    if key == "support_case_resolve":
        case = object_for(key, objects)
        return reverse("admin:support_case_resolve", args=[case.pk, "refund"])
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


def test_every_admin_page_has_a_decision_in_the_matrix():
    keys = {key for key, _ in admin_patterns()}
    assert sorted(keys - MATRIX.keys()) == []
    assert sorted(MATRIX.keys() - keys) == []


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_persona_gets_the_declared_outcome_on_every_admin_page(world, persona):
    objects, personas = world
    client = Client(raise_request_exception=False)  # a 500 is an outcome to report
    if personas[persona] is not None:
        client.force_login(personas[persona])
    wrong = []
    for key, route in admin_patterns():
        got, declared = outcome(client.get(url_of(key, route, objects))), MATRIX[key][persona]
        if got != declared:
            wrong.append(f"{key}: got {got}, declared {declared}")
    assert not wrong, "\n".join(wrong)


# --- Workflows: POST actions ---------------------------------------------------------
# Who may NOT run each workflow (the others may); each gets 403 and nothing changes.
# Permission checks come before the form is read, so a denied POST needs no valid body.
SUPPORT_AND_MANAGER = ("support", "manager")
WORKFLOWS = {
    "entitlement assign": ("customers_entitlement_workflow", SUPPORT_AND_MANAGER),
    "entitlement transfer": ("customers_entitlement_transfer_detail", SUPPORT_AND_MANAGER),
    "entitlement revoke": ("customers_entitlement_revoke_detail", SUPPORT_AND_MANAGER),
    "account migration": ("customers_customer_migrate_account", SUPPORT_AND_MANAGER),
    "inbox bulk": ("support_case_bulk", SUPPORT_AND_MANAGER),
    "case acknowledge": ("support_case_acknowledge", SUPPORT_AND_MANAGER),
    "case resolution": ("support_case_resolve", SUPPORT_AND_MANAGER),
    "case resolve with note": ("support_case_resolve_note", SUPPORT_AND_MANAGER),
    "case waive": ("support_case_waive", SUPPORT_AND_MANAGER),
    "case recheck": ("support_case_recheck", SUPPORT_AND_MANAGER),
    "reconciliation start": ("billing_reconciliationrun_start", SUPPORT_AND_MANAGER),
    "invoice import": ("billing_invoice_upload", SUPPORT_AND_MANAGER),
    "webhook event retry": ("support_webhookevent_retry", SUPPORT_AND_MANAGER),
    "ticket action": ("support_ticket_act", ("manager", "ops_lead")),
    "ticket comment": ("support_ticket_comment", ("manager", "ops_lead")),
    "ticket reply retry": ("support_ticket_reply_retry", ("manager", "ops_lead")),
    "checklist task done": ("onboarding_checklisttask_done", ()),
    "checklist task reopen": ("onboarding_checklisttask_reopen", ()),
}
DENIED = [(workflow, persona) for workflow, (_, denied) in WORKFLOWS.items() for persona in denied]


def history_rows() -> int:
    """Every write leaves a history row (tests/audit): their total shows any change."""
    from django.apps import apps

    return sum(
        model.objects.count()
        for model in apps.get_models()
        if model._meta.label.split(".")[1].startswith("Historical")
    )


def test_every_post_only_view_has_a_workflow_decision():
    post_only = {key for key, outcome in MATRIX.items() if outcome["ops_lead"] == 405}
    assert post_only - {name for name, _ in WORKFLOWS.values()} == {"logout"}


@pytest.mark.parametrize(("workflow", "persona"), DENIED, ids=[" as ".join(d) for d in DENIED])
def test_roles_that_may_not_run_a_workflow_get_403_and_nothing_changes(world, workflow, persona):
    objects, personas = world
    key = WORKFLOWS[workflow][0]
    url = url_of(key, dict(admin_patterns())[key], objects)
    client = Client()
    client.force_login(personas[persona])
    before = history_rows()
    data = {
        "action": "assign_me",
        "cases": [objects["support_case"].pk],
        "email": "someone@example.com",
        "note": "because",
        "reason": "because",
        "month": "2026-10",
        "kind": "note",
        "body": "hello",
        "target": objects["customers_customer"].pk,
    }
    assert client.post(url, data).status_code == 403
    assert history_rows() == before


# --- Every admin URL x GET and POST x every persona: a refused request writes nothing --
# The POST of each page carries a plausible body: the form the page renders to a
# superuser (parsed as a browser would submit it, with a valid CSRF token), its empty
# text fields filled, plus the fields of ``POST_BODIES`` for pages without a form of
# their own (POST-only actions). ``WRITERS`` declares, per URL, who may change data with
# that body; every other persona's POST must leave every table untouched, and every
# declared writer's POST must change something, which proves the body is one the view
# acts on (a refusal of a body nobody could use would prove nothing).

# Tables a request may write whoever sends it: the session (sliding expiry) and the
# sign-in throttle's bookkeeping.
UNWATCHED_TABLES = {"django_session", "axes_accessattempt", "axes_accesslog"}

NOBODY_WRITES: tuple[str, ...] = ()
MANAGER_AND_UP = ("manager", "superuser")
OPS_AND_UP = ("ops_lead", "superuser")
SUPPORT_AND_UP = ("support", "superuser")
SUPERUSER = ("superuser",)
EVERY_ROLE = ("support", "manager", "ops_lead", "superuser")


def writes(*, add, change, delete) -> dict[str, tuple[str, ...]]:
    return {"add": add, "change": change, "delete": delete}


# Per model: who may add, change (the world's row; Acme is Alice's, the others are
# another customer's), delete, and run the changelist's bulk delete.
MODEL_WRITERS = {
    # Acme has a contract: deleting it is refused (PROTECT).
    "customers_customer": writes(add=SUPERUSER, change=MANAGER_AND_UP, delete=NOBODY_WRITES),
    "customers_contact": writes(add=SUPERUSER, change=SUPERUSER, delete=SUPERUSER),
    "customers_contract": writes(add=SUPERUSER, change=SUPERUSER, delete=SUPERUSER),
    # The world's product and order are in use: deleting them is refused (PROTECT).
    "customers_product": writes(add=SUPERUSER, change=SUPERUSER, delete=NOBODY_WRITES),
    "customers_order": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=NOBODY_WRITES),
    "customers_entitlement": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=SUPERUSER),
    "customers_usagedaily": writes(add=SUPERUSER, change=SUPERUSER, delete=SUPERUSER),
    "support_tag": writes(add=SUPERUSER, change=SUPERUSER, delete=SUPERUSER),
    "support_ticket": writes(add=SUPPORT_AND_UP, change=SUPPORT_AND_UP, delete=SUPERUSER),
    # The world's event made its ticket: deleting it is refused (PROTECT).
    "support_webhookevent": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=NOBODY_WRITES),
    "support_triagerule": writes(add=SUPPORT_AND_UP, change=SUPPORT_AND_UP, delete=SUPPORT_AND_UP),
    # A case's page is the record; it changes through the inbox's workflows.
    "support_case": writes(add=OPS_AND_UP, change=NOBODY_WRITES, delete=SUPERUSER),
    "billing_invoice": writes(add=OPS_AND_UP, change=OPS_AND_UP, delete=SUPERUSER),
    "billing_reconciliationrun": writes(
        add=NOBODY_WRITES, change=NOBODY_WRITES, delete=NOBODY_WRITES
    ),
    "onboarding_checklisttemplate": writes(add=OPS_AND_UP, change=OPS_AND_UP, delete=OPS_AND_UP),
    "onboarding_checklist": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=NOBODY_WRITES),
    # The world's task is Acme's (Alice's): owner and due date are everyone's to change.
    "onboarding_checklisttask": writes(add=NOBODY_WRITES, change=EVERY_ROLE, delete=NOBODY_WRITES),
    "opsdesk_digestdelivery": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=SUPERUSER),
    "auth_user": writes(add=SUPERUSER, change=SUPERUSER, delete=NOBODY_WRITES),
    "auth_group": writes(add=SUPERUSER, change=SUPERUSER, delete=SUPERUSER),
}

VIEW_WRITERS = {
    # Pages that only read: a POST to them changes nothing, whoever sends it.
    **dict.fromkeys(
        [
            "index",
            "login",
            "logout",
            "password_change_done",
            "search",
            "autocomplete",
            "jsi18n",
            "view_on_site",
            "app_list",
            "catch_all",
            "support_ticket_queue",
            "support_case_inbox",
            "onboarding_checklist_overview",
            "onboarding_checklisttask_mine",
            "opsdesk_digestdelivery_preview",
            "customers_customer_audit",
            "customers_customer_as_of",
            "customers_customer_audit_log",
            "customers_customer_audit_log_csv",
        ],
        NOBODY_WRITES,
    ),
    "customers_entitlement_workflow": OPS_AND_UP,
    "customers_entitlement_assign_detail": OPS_AND_UP,
    "customers_entitlement_reassign_detail": OPS_AND_UP,
    "customers_entitlement_revoke_detail": OPS_AND_UP,
    "customers_entitlement_reissue_detail": OPS_AND_UP,
    "customers_entitlement_transfer_detail": OPS_AND_UP,
    "customers_customer_migrate_account": OPS_AND_UP,
    "support_ticket_act": SUPPORT_AND_UP,
    "support_ticket_comment": SUPPORT_AND_UP,
    "support_ticket_reply_retry": SUPPORT_AND_UP,
    "support_webhookevent_retry": OPS_AND_UP,
    "support_case_bulk": OPS_AND_UP,
    "support_case_acknowledge": OPS_AND_UP,
    "support_case_resolve_note": OPS_AND_UP,
    "support_case_waive": OPS_AND_UP,
    "support_case_recheck": OPS_AND_UP,
    "support_case_resolve": OPS_AND_UP,
    "billing_invoice_upload": OPS_AND_UP,
    "billing_reconciliationrun_start": OPS_AND_UP,
    "onboarding_checklisttask_done": EVERY_ROLE,
    "onboarding_checklisttask_reopen": NOBODY_WRITES,  # the world's task is not done
    "password_change": EVERY_ROLE,
    "auth_user_password_change": SUPERUSER,
}


def writers(key: str) -> tuple[str, ...]:
    if key in VIEW_WRITERS:
        return VIEW_WRITERS[key]
    for model, pages in MODEL_WRITERS.items():
        page = key.removeprefix(model + "_")
        if page != key:
            return pages.get("delete" if page == "changelist" else page, NOBODY_WRITES)
    return NOBODY_WRITES


def test_every_admin_page_has_a_decision_on_who_may_write_through_it():
    assert sorted(VIEWS.keys() - VIEW_WRITERS.keys()) == []
    assert sorted(MODEL_WRITERS) == sorted(MODELS)


def preview_query(key: str, objects: dict) -> str:
    """Pages that preview a change for a chosen target show it (and its form) with ``?target=``:
    the world's entitlement moves to Acme, Acme's account migrates into the other customer."""
    if key == "customers_entitlement_transfer_detail":
        return f"?target={objects['customers_customer'].pk}"
    if key == "customers_customer_migrate_account":  # the other customer moves into Acme
        return f"?target={objects['customers_customer'].pk}"
    return ""


def post_only_bodies(objects: dict) -> dict[str, dict]:
    """What the buttons of POST-only actions send (they have no page to take a form from),
    and values a form needs that the world's row cannot lend it."""
    return {
        "support_ticket_act": {"action": "priority", "priority": "urgent"},
        "support_ticket_comment": {"kind": "note", "body": "Called the customer back."},
        "support_case_bulk": {"action": "acknowledge", "cases": [objects["support_case"].pk]},
        "support_ticket_reply_retry": {
            "reply": TicketComment.objects.get(
                ticket=objects["support_ticket_reply_retry"], failed_at__isnull=False
            ).pk
        },
        "customers_usagedaily_add": {"date": "2026-01-01"},  # (customer, date) is unique
        "customers_contact_add": {"email": "new.contact@example.com"},  # (customer, email) too
        "support_case_add": {  # a case's page has no form to lend its values
            "customer": objects["customers_customer"].pk,
            "summary": "Charged twice for November.",
        },
    }


# What a person types into an empty text field, by field name (an inline's field by the
# name after its prefix).
FILLERS = {
    "reason": "Customer asked for it on the phone.",
    "note": "Checked with the customer.",
    "email": "new.user@example.com",
    "requester_email": "new.user@example.com",
    "message": "The export button does nothing.",
    "month": "2026-10",
    "reference": "RF-1001",
    "body": "Thanks, we are on it.",
    "value": "vip",
    "old_password": PASSWORD,
    "new_password1": "A-new-long-passphrase-2026",
    "new_password2": "A-new-long-passphrase-2026",
    "password1": "A-new-long-passphrase-2026",
    "password2": "A-new-long-passphrase-2026",
    "username": "newcomer",
}


def invoice_csv() -> SimpleUploadedFile:
    header = (
        "due_at,invoice_id,tenant_id,number,status,currency,amount_due,amount_paid,"
        "period_start,period_end,issued_at,note\n"
    )
    line = "2026-11-15,in_900,acme-7f3a,INV-900,open,EUR,100.00,0.00,2026-10-01,2026-10-31,"
    line += "2026-11-01,\n"
    return SimpleUploadedFile("nov.csv", (header + line).encode(), content_type="text/csv")


def form_fields(html: bytes, path: str) -> list[tuple[str, str]]:
    """The fields a browser submits with the page's POST form for ``path`` (the admin's
    change form first); none when the page has no such form. WebTest parses the forms."""
    forms = [
        form
        for form in TestResponse(html, content_type="text/html", charset="utf-8").forms.values()
        if form.method.lower() == "post"
        and (form.action or "") in {"", path}
        and "logout" not in (form.id or "")
    ]
    if not forms:
        return []
    main = next((form for form in forms if (form.id or "").endswith("_form")), forms[0])
    return [
        (name, value)
        for name, value in main.submit_fields()
        if name and name != "csrfmiddlewaretoken"
    ]


def visible_fields(html: bytes, path: str) -> set[str]:
    """Names of the fields a person sees and types into (not hidden ids, nor management forms)."""
    forms = TestResponse(html, content_type="text/html", charset="utf-8").forms.values()
    return {
        name
        for form in forms
        for name, fields in form.fields.items()
        if name and not any(isinstance(field, Hidden) for field in fields)
    }


def fields_of_page(client: Client, url: str, *, visible_only=False) -> list[tuple[str, str]]:
    page = client.get(url)
    if page.status_code != 200 or not page.get("Content-Type", "").startswith("text/html"):
        return []
    fields = form_fields(page.content, url.split("?")[0])
    if visible_only:
        visible = visible_fields(page.content, url.split("?")[0])
        fields = [(name, value) for name, value in fields if name in visible]
    return fields


def plausible_body(key: str, url: str, objects: dict, admin_client: Client) -> dict:
    """The form the superuser gets on the page, filled in as a person would: an add page
    with the values of the world's row of that model (its unique fields made new), empty
    text fields with ``FILLERS``; a changelist's bulk delete and a delete page's "Yes"."""
    model = next((m for m in MODEL_WRITERS if key.startswith(m + "_")), None)
    page = key.removeprefix(f"{model}_") if model else None
    if page == "changelist":
        pk = str(objects[model].pk)
        return {"action": "delete_selected", "_selected_action": pk, "post": "yes"}
    if page == "delete":
        return {"post": "yes"}
    body: dict[str, list] = {}
    for name, value in fields_of_page(admin_client, url):
        body.setdefault(name, []).append(value)
    if page == "add":
        obj = objects[model]
        unique = {f.name for f in obj._meta.fields if f.unique and not f.primary_key} | {
            constraint.fields[0]
            for constraint in obj._meta.constraints
            if isinstance(constraint, UniqueConstraint) and len(constraint.fields) == 1
        }
        unique = {  # only text can be made new by a letter in front
            name for name in unique if isinstance(obj._meta.get_field(name), CharField)
        }
        on_add_page = visible_fields(admin_client.get(url).content, url)
        change_url = reverse(f"admin:{model}_change", args=[obj.pk])
        for name, value in fields_of_page(admin_client, change_url, visible_only=True):
            if name in on_add_page and not any(body.get(name, [""])):
                body[name] = ["n" + value if name in unique else value]
    for name, values in body.items():
        filler = FILLERS.get(name.rsplit("-", 1)[-1])
        if filler and not any(values) and "__prefix__" not in name:
            body[name] = [filler]
    if "?" not in url and page is None:  # a confirmation page asks for a reason
        for name in ("reason", "note"):
            body.setdefault(name, [FILLERS[name]])
    body.update(post_only_bodies(objects).get(key, {}))
    if key == "billing_invoice_upload":
        body["file"] = invoice_csv  # a fresh file for every request
    return body


def table_writes() -> dict[str, int]:
    """Rows inserted, updated and deleted so far in this transaction, per table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables"
        )
        return {table: n for table, n in cursor.fetchall() if table not in UNWATCHED_TABLES}


def changed_tables(before: dict[str, int]) -> list[str]:
    after = table_writes()
    return sorted(table for table, n in after.items() if n != before.get(table, 0))


def csrf_client(user) -> Client:
    """A client that must present a valid CSRF token, as a browser does, and has one."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    client.cookies[settings.CSRF_COOKIE_NAME] = CSRF_SECRET
    return client


CSRF_SECRET = "x" * 32  # a well-formed token secret; the cookie and the field agree


def test_a_get_or_post_writes_only_when_the_persona_may_write_through_that_page(world):
    """Every admin URL, GET then POST with a valid CSRF token and the superuser's form,
    as every persona (the bodies are made once, then each persona sends them).

    A persona that may not write through a page changes no table at all (PostgreSQL's
    per-table write counters of this transaction) and queues no work; one that may,
    changes something; a GET never writes; no request answers 5xx or fails its CSRF check.
    """
    objects, personas = world
    admin_client = Client()
    admin_client.force_login(personas["superuser"])
    pages = []
    for key, route in admin_patterns():
        url = url_of(key, route, objects) + preview_query(key, objects)
        pages.append((key, url, plausible_body(key, url, objects, admin_client)))
    wrong = []
    for persona in PERSONAS:
        wrong += [
            f"{persona}: {line}"
            for line in requests_that_write_wrongly(csrf_client(personas[persona]), persona, pages)
        ]
    assert not wrong, "\n".join(wrong)


def requests_that_write_wrongly(client: Client, persona: str, pages: list) -> list[str]:
    """GET and POST each page as one persona, each request rolled back; what went wrong."""
    wrong = []
    for key, url, body in pages:
        may_write = persona in writers(key)
        for method in ("get", "post"):
            # Each request is rolled back, the session a password change cycles included.
            session = client.cookies.get(settings.SESSION_COOKIE_NAME)
            session = session.value if session else None
            with (
                transaction.atomic(),
                TestCase.captureOnCommitCallbacks(execute=False) as queued,
            ):
                before = table_writes()
                if method == "get":
                    response = client.get(url)
                else:
                    data = {
                        name: value() if callable(value) else value for name, value in body.items()
                    }
                    response = client.post(url, {**data, "csrfmiddlewaretoken": CSRF_SECRET})
                content = (
                    b"".join(response.streaming_content)  # a streamed page reads as it is sent
                    if response.streaming
                    else response.content
                )
                changed = changed_tables(before)
                transaction.set_rollback(True)
            if session:
                client.cookies[settings.SESSION_COOKIE_NAME] = session
            changed += ["work queued on commit"] * bool(queued)
            if response.status_code >= 500:
                wrong.append(f"{method.upper()} {key}: {response.status_code}")
            elif b"CSRF verification failed" in content:
                wrong.append(f"{method.upper()} {key}: CSRF check failed")
            elif method == "get" and changed:
                wrong.append(f"GET {key} wrote {changed}")
            elif method == "post" and changed and not may_write:
                wrong.append(f"POST {key} wrote {changed} ({response.status_code})")
            elif method == "post" and may_write and not changed:
                wrong.append(
                    f"POST {key} wrote nothing ({response.status_code}), declared a writer"
                )
    return wrong
