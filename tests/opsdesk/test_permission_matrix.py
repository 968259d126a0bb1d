"""Who may open every page of the admin and run every workflow (docs/product.md#roles).

Every URL pattern of the admin site is walked from the URLconf (custom views of
``get_urls`` and unfold's detail actions included) and opened with GET as each persona;
the outcome must be the one declared in ``MATRIX``. A pattern the matrix does not name
fails the test: a new page cannot ship without a decision on who sees it.

Outcomes: ``LOGIN`` a redirect to the admin login, ``"302"`` any other redirect, else the
status code. Personas: anonymous, an inactive staff member (who was in Ops leads), the
three role groups and a superuser.

docs/product.md: support reads everything customer-related and works tickets; account
managers edit their customers and contracts; ops leads run and resolve exception
workflows and reconciliation; nobody but ops leads (and superusers) transfers
entitlements or migrates accounts. Staff users and groups are superuser business.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.admin_walk import admin_patterns
from tests.opsdesk.admin_matrix import MATRIX, PERSONAS, outcome, url_of

pytestmark = pytest.mark.django_db


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
    "inbound email retry": ("support_inboundemail_retry", ("manager", "ops_lead")),
    "ticket action": ("support_ticket_act", ("manager", "ops_lead")),
    "ticket page": ("support_ticket_change", ("manager", "ops_lead")),
    "ticket reply retry": ("support_ticket_reply_retry", ("manager", "ops_lead")),
    "ticket macro": ("support_ticket_macro", ("manager", "ops_lead")),
    "problem update": ("support_problem_update", ("manager",)),
    "problem solve": ("support_problem_solve", ("manager",)),
    "problem link": ("support_problem_link", ("manager",)),
    "problem unlink": ("support_problem_unlink", ("manager",)),
    "save a view": ("opsdesk_savedview_save", ()),
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
