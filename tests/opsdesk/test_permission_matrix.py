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
import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLResolver, reverse

from audit.context import acting_as
from billing.models import ReconciliationRun
from customers.models import Contact, Contract, Entitlement, Order, Product, UsageDaily
from onboarding.models import ChecklistTask, ChecklistTemplate
from onboarding.services import checklist_generate
from opsdesk import roles
from opsdesk.models import DigestDelivery
from support.models import Case, Tag, Ticket, TriageRule, WebhookEvent
from tests.conftest import _staff
from tests.onboarding.conftest import templates  # noqa: F401
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


def admin_patterns(patterns=None, prefix=""):
    """(key, route) of every pattern of the admin site, nested includes flattened.

    Unnamed patterns are keyed like their named neighbours: the bare ``<id>/`` redirect
    as ``<app>_<model>_object``, the final catch-all as ``catch_all``.
    """
    patterns = admin.site.get_urls() if patterns is None else patterns
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from admin_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
            continue
        route = prefix + str(pattern.pattern)
        if pattern.name:
            yield pattern.name, route
        elif route == "(?P<url>.*)$":
            yield "catch_all", route
        elif match := re.fullmatch(r"(\w+)/(\w+)/<path:object_id>/", route):
            yield f"{match[1]}_{match[2]}_object", route
        else:
            yield f"unnamed:{route}", route


@pytest.fixture
def world(db, agent, manager, ops_lead, superuser, customer, templates):  # noqa: F811
    """One row of every model, Acme's (managed by Alice) where it belongs to a customer."""
    inactive = _staff("ivan", roles.OPS_LEADS, is_active=False)
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
    objects = {
        "customers_customer": customer,
        "customers_contact": Contact.objects.get(customer=other),
        "customers_contract": Contract.objects.get(customer=other),
        "customers_product": product,
        "customers_order": order,
        "customers_entitlement": entitlement,
        "customers_usagedaily": UsageDaily.objects.filter(customer=other).first(),
        "support_tag": Tag.objects.get(name="vip"),
        "support_ticket": ticket,
        "support_webhookevent": WebhookEvent.objects.first(),
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


def object_for(key: str, objects: dict):
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
        case = objects["support_case"]
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
