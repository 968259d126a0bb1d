"""Every admin URL x GET and POST x every persona: a refused request writes nothing, and
every declared writer's request writes (docs/product.md#roles)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.db.models import CharField, UniqueConstraint
from django.test import Client, TestCase
from django.urls import reverse
from webtest import TestResponse
from webtest.forms import Hidden

from support.models import TicketComment
from tests.admin_walk import admin_patterns
from tests.opsdesk.admin_matrix import MODELS, PERSONAS, VIEWS, url_of
from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db

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
SUPPORT_OPS_AND_UP = ("support", "ops_lead", "superuser")
SUPERUSER = ("superuser",)
EVERY_ROLE = ("support", "manager", "ops_lead", "superuser")
PROBLEM_WORKERS = ("support", "ops_lead", "superuser")


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
    "customers_usagedaily": writes(add=NOBODY_WRITES, change=SUPERUSER, delete=SUPERUSER),
    # An import's record is what happened, kept: nobody changes or deletes it by hand.
    "customers_crmimport": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=NOBODY_WRITES),
    "support_tag": writes(add=SUPERUSER, change=SUPERUSER, delete=SUPERUSER),
    "support_ticket": writes(add=SUPPORT_AND_UP, change=SUPPORT_AND_UP, delete=SUPERUSER),
    # The world's event made its ticket: deleting it is refused (PROTECT).
    "support_webhookevent": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=NOBODY_WRITES),
    # A message's page is the record; a superuser may delete one (its attachments with it).
    "support_inboundemail": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=SUPERUSER),
    "support_triagerule": writes(add=SUPPORT_AND_UP, change=SUPPORT_AND_UP, delete=SUPPORT_AND_UP),
    "support_slapolicy": writes(add=OPS_AND_UP, change=OPS_AND_UP, delete=SUPERUSER),
    # Support and ops leads name a problem; it has tickets: deleting it is refused (PROTECT).
    "support_problem": writes(add=NOBODY_WRITES, change=PROBLEM_WORKERS, delete=NOBODY_WRITES),
    "support_macro": writes(add=SUPPORT_OPS_AND_UP, change=SUPPORT_OPS_AND_UP, delete=SUPERUSER),
    # A case's page is the record; it changes through the inbox's workflows.
    "support_case": writes(add=OPS_AND_UP, change=NOBODY_WRITES, delete=SUPERUSER),
    "billing_invoice": writes(add=NOBODY_WRITES, change=OPS_AND_UP, delete=SUPERUSER),
    "billing_reconciliationrun": writes(
        add=NOBODY_WRITES, change=NOBODY_WRITES, delete=NOBODY_WRITES
    ),
    # An import's record is what happened; a superuser may delete one.
    "billing_invoiceimport": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=SUPERUSER),
    "onboarding_checklisttemplate": writes(add=OPS_AND_UP, change=OPS_AND_UP, delete=OPS_AND_UP),
    "onboarding_checklist": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=NOBODY_WRITES),
    # The world's task is Acme's (Alice's): owner and due date are everyone's to change.
    "onboarding_checklisttask": writes(add=NOBODY_WRITES, change=EVERY_ROLE, delete=NOBODY_WRITES),
    "opsdesk_digestdelivery": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=SUPERUSER),
    "opsdesk_healthsignal": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=SUPERUSER),
    "opsdesk_healthsweep": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=SUPERUSER),
    "opsdesk_notification": writes(add=NOBODY_WRITES, change=NOBODY_WRITES, delete=NOBODY_WRITES),
    # The world's view is Sam's, shared: he and ops leads change and delete it.
    "opsdesk_savedview": writes(
        add=NOBODY_WRITES,
        change=("support", "ops_lead", "superuser"),
        delete=("support", "ops_lead", "superuser"),
    ),
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
            "support_ticket_report",
            "support_ticket_report_tickets",
            "support_ticket_report_csv",
            "support_case_inbox",
            "onboarding_checklist_overview",
            "onboarding_checklisttask_mine",
            "opsdesk_digestdelivery_preview",
            "opsdesk_healthsignal_reasons",
            "customers_customer_audit",
            "customers_customer_as_of",
            "customers_customer_audit_log",
            "customers_customer_audit_log_csv",
            "freshness",
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
    "support_ticket_reply_retry": SUPPORT_AND_UP,
    # Applying the world's macro (its preview's form) to the world's ticket.
    "support_ticket_macro": SUPPORT_AND_UP,
    "support_webhookevent_retry": OPS_AND_UP,
    "support_inboundemail_retry": SUPPORT_AND_UP,
    "support_problem_update": PROBLEM_WORKERS,
    "support_problem_solve": PROBLEM_WORKERS,
    "support_problem_link": PROBLEM_WORKERS,
    "support_problem_unlink": PROBLEM_WORKERS,
    # Downloads: GET only.
    "support_inboundemail_original": NOBODY_WRITES,
    "support_inboundemail_attachment": NOBODY_WRITES,
    "support_case_bulk": OPS_AND_UP,
    "support_case_acknowledge": OPS_AND_UP,
    "support_case_resolve_note": OPS_AND_UP,
    "support_case_waive": OPS_AND_UP,
    "support_case_recheck": OPS_AND_UP,
    "support_case_resolve": OPS_AND_UP,
    "billing_invoice_upload": OPS_AND_UP,
    # Uploading stores the files and queues their import; the rejected rows download.
    "customers_crmimport_upload": OPS_AND_UP,
    "customers_crmimport_notes": NOBODY_WRITES,
    "billing_reconciliationrun_start": OPS_AND_UP,
    "onboarding_checklisttask_done": EVERY_ROLE,
    "onboarding_checklisttask_reopen": NOBODY_WRITES,  # the world's task is not done
    "password_change": EVERY_ROLE,
    # Each person saves their own notification settings.
    "opsdesk_notification_preferences": EVERY_ROLE,
    # Everyone saves views of the queue for themselves; the sidebar's only reads.
    "opsdesk_savedview_save": EVERY_ROLE,
    "opsdesk_savedview_sidebar": NOBODY_WRITES,
    "auth_user_password_change": SUPERUSER,
    # The world's signal is Acme's (Alice's): she and ops leads acknowledge and snooze it.
    "opsdesk_healthsignal_acknowledge": ("manager", "ops_lead", "superuser"),
    "opsdesk_healthsignal_snooze": ("manager", "ops_lead", "superuser"),
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
        "support_ticket_change": {"send": "note"},  # the composer's button
        "support_ticket_add": {"subject": "Export stuck"},  # text on the ticket's page
        "support_case_bulk": {"action": "acknowledge", "cases": [objects["support_case"].pk]},
        "support_ticket_reply_retry": {
            "reply": TicketComment.objects.get(
                ticket=objects["support_ticket_reply_retry"], failed_at__isnull=False
            ).pk
        },
        "opsdesk_savedview_save": {"page": "queue", "query": "priority=low", "name": "Low"},
        # The other customer's ticket joins the problem; one of the problem's leaves it.
        "support_problem_link": {"ticket": objects["support_ticket"].pk},
        "support_problem_unlink": {"ticket": objects["support_problem"].tickets.first().pk},
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


def crm_accounts_csv() -> SimpleUploadedFile:
    rows = "crm_id,name,updated_at\n001Dn00000New,New Co,2026-11-21T09:29:41Z\n"
    return SimpleUploadedFile("accounts.csv", rows.encode(), content_type="text/csv")


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
    if key == "customers_crmimport_upload":
        body["accounts"] = crm_accounts_csv
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
