"""The entitlement workflows in the admin: list actions and detail actions lead to a
confirmation page that lists exactly the selection and what will happen; the POST runs
the service, per role, and a refusal changes nothing and says why."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from customers.models import Entitlement
from support.models import Case
from tests import builders
from tests.customers.seats import REASON, page, world
from tests.pages import messages_of

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/customers/entitlement/"
ROLES = ["agent", "manager", "ops_lead", "superuser"]


def confirm(client, url: str, data: dict):
    """POST a confirmation page as a person does: from the page, with the token of what
    it showed (none when the page refuses to show; the POST is refused then as well)."""
    shown = client.get(url)
    form = (shown.context or {}).get("form") if shown.status_code == 200 else None
    previewed = form["previewed"].value() if form is not None else None
    return client.post(url, {**data, "previewed": previewed} if previewed else data)


def detail(key: str, entitlement: Entitlement) -> str:
    return f"{CHANGELIST}{entitlement.pk}/{key}/"


def codes(response) -> list[str]:
    return [row.entitlement.code for row in response.context["rows"]]


def outcomes(response) -> list[tuple[str, str, bool]]:
    return [(r.entitlement.code, r.outcome, r.refused) for r in response.context["rows"]]


def latest(entitlement: Entitlement):
    return entitlement.history.latest()


# --- Who is offered what ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "offered"),
    [
        ("agent", []),
        ("manager", []),
        (
            "ops_lead",
            [
                "assign_selected",
                "reassign_selected",
                "revoke_selected",
                "reissue_selected",
                "transfer_selected",
            ],
        ),
        (
            "superuser",
            [
                "delete_selected",
                "assign_selected",
                "reassign_selected",
                "revoke_selected",
                "reissue_selected",
                "transfer_selected",
            ],
        ),
    ],
)
def test_the_list_offers_the_workflows_only_to_who_may_run_them(
    client, request, seats, role, offered
):
    client.force_login(request.getfixturevalue(role))
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    choices = response.context["action_form"].fields["action"].choices if offered else []
    assert [name for name, _ in choices if name] == offered


def test_the_list_actions_are_labelled_as_leading_to_a_confirmation(client, ops_lead, seats):
    client.force_login(ops_lead)
    choices = client.get(CHANGELIST).context["action_form"].fields["action"].choices
    assert [label for name, label in choices if name] == [
        "Assign…",
        "Reassign…",
        "Revoke…",
        "Reissue code…",
        "Transfer to another customer…",
    ]


@pytest.mark.parametrize(
    ("state", "offered"),
    [
        ("issued", ["Assign…", "Revoke…", "Reissue code…", "Transfer…"]),
        ("assigned", ["Reassign…", "Revoke…", "Reissue code…", "Transfer…"]),
        ("redeemed", ["Revoke…", "Transfer…"]),
        ("revoked", []),
    ],
)
def test_an_entitlement_page_offers_what_its_state_allows(client, ops_lead, seats, state, offered):
    client.force_login(ops_lead)
    response = client.get(f"{CHANGELIST}{seats[state].pk}/change/")
    assert [a["title"] for a in response.context["actions_detail"]] == offered


@pytest.mark.parametrize("role", ["agent", "manager"])
def test_an_entitlement_page_offers_nothing_to_who_may_only_view(client, request, seats, role):
    client.force_login(request.getfixturevalue(role))
    response = client.get(f"{CHANGELIST}{seats['issued'].pk}/change/")
    assert response.status_code == 200
    assert response.context["actions_detail"] == []


def test_change_without_the_transfer_permission_offers_no_transfer(client, ops_lead, seats):
    """Change and transfer are separate permissions: with change alone, no transfer."""
    from django.contrib.auth.models import Permission

    ops_lead.groups.clear()
    ops_lead.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_entitlement", "change_entitlement"])
    )
    client.force_login(ops_lead)
    response = client.get(f"{CHANGELIST}{seats['issued'].pk}/change/")
    assert [a["title"] for a in response.context["actions_detail"]] == [
        "Assign…",
        "Revoke…",
        "Reissue code…",
    ]
    assert client.get(page("transfer", seats["issued"])).status_code == 403


# --- From the list to the confirmation page -----------------------------------------------


def test_a_list_action_sends_the_selection_to_its_confirmation_page(
    client, ops_lead, seats, product
):
    client.force_login(ops_lead)
    chosen = [seats["issued"], seats["redeemed"]]
    filtered = f"{CHANGELIST}?product__id__exact={product.pk}"
    response = client.post(
        filtered,
        {"action": "revoke_selected", "_selected_action": [e.pk for e in chosen]},
    )
    assert response.status_code == 302
    url = urlsplit(response.url)
    assert url.path == reverse("admin:customers_entitlement_workflow", args=["revoke"])
    query = parse_qs(url.query)
    assert query["ids"] == [str(e.pk) for e in sorted(chosen, key=lambda e: e.pk)]
    assert query["back"] == [filtered]
    assert world()[-1] == ("history rows", 5)  # nothing ran yet


def test_the_confirmation_page_lists_exactly_the_selection_and_what_happens(
    client, ops_lead, seats
):
    client.force_login(ops_lead)
    response = client.get(page("revoke", seats["redeemed"], seats["issued"]))
    assert response.status_code == 200
    assert outcomes(response) == [
        ("ISSU-ED00-0001", "issued → revoked; ISSU-ED00-0001 stops working", False),
        ("REDE-EMED-0001", "redeemed → revoked; REDE-EMED-0001 stops working", False),
    ]
    assert response.context["blocked"] == []
    body = response.content.decode()
    assert "ISSU-ED00-0002" not in body and "ASSI-GNED-0001" not in body
    assert "Revoke 2 entitlements" in body


def test_the_confirmation_page_costs_the_same_for_two_or_five_entitlements(
    client, ops_lead, seats, django_assert_num_queries
):
    client.force_login(ops_lead)
    client.get(page("revoke", seats["issued"]))  # warm the session and permission caches
    with django_assert_num_queries(5):
        client.get(page("revoke", seats["issued"], seats["assigned"]))
    with django_assert_num_queries(5):
        client.get(page("revoke", *seats.values()))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("ids={issued}&ids=999999", "Entitlement 999999 does not exist (any more)."),
        ("ids=abc", "“abc” is not an entitlement id."),
        ("", "Select at least one entitlement."),
    ],
)
def test_a_bad_selection_goes_back_to_the_list_with_a_message(
    client, ops_lead, seats, query, message
):
    client.force_login(ops_lead)
    url = page("revoke") + query.format(issued=seats["issued"].pk)
    response = client.get(url, follow=True)
    assert response.redirect_chain == [(CHANGELIST, 302)]
    assert [str(m) for m in response.context["messages"]] == [f"Nothing changed. {message}"]


def test_a_selection_too_large_for_a_page_is_refused_on_the_list(client, ops_lead, seats):
    from customers import admin_workflows

    client.force_login(ops_lead)
    admin_workflows.MAX_SELECTED, saved = 3, admin_workflows.MAX_SELECTED
    try:
        response = client.post(
            CHANGELIST,
            {"action": "revoke_selected", "_selected_action": [e.pk for e in seats.values()]},
        )
    finally:
        admin_workflows.MAX_SELECTED = saved
    assert response.status_code == 302 and response.url == CHANGELIST
    assert messages_of(response) == [
        "Select at most 3 entitlements at a time; nothing was changed."
    ]


def test_back_never_leads_off_site(client, ops_lead, seats):
    client.force_login(ops_lead)
    url = page("revoke", seats["issued"], back="https://evil.example/")
    response = confirm(client, url, {"reason": REASON})
    assert response.status_code == 302 and response.url == CHANGELIST


# --- Revoke -------------------------------------------------------------------------------


def test_an_ops_lead_revokes_several_in_one_go_with_the_reason_in_history(client, ops_lead, seats):
    client.force_login(ops_lead)
    chosen = [seats["issued"], seats["assigned"], seats["redeemed"]]
    back = f"{CHANGELIST}?state__exact=issued"
    response = confirm(client, page("revoke", *chosen, back=back), {"reason": REASON})

    assert response.status_code == 302 and response.url == back
    assert messages_of(response) == [
        "Revoked 3 entitlements: ISSU-ED00-0001, ASSI-GNED-0001, REDE-EMED-0001."
    ]
    for entitlement in chosen:
        entitlement.refresh_from_db()
        assert (entitlement.state, entitlement.revoke_reason) == ("revoked", REASON)
        record = latest(entitlement)
        assert (record.history_actor, record.history_change_reason, record.history_for) == (
            "olga",
            REASON,
            "",
        )
    assert Entitlement.objects.get(code="ISSU-ED00-0002").state == "issued"


def test_revoke_from_its_page_returns_to_the_entitlement(client, ops_lead, seats):
    client.force_login(ops_lead)
    entitlement = seats["assigned"]
    response = client.get(detail("revoke", entitlement))
    assert response.status_code == 200 and codes(response) == ["ASSI-GNED-0001"]

    response = confirm(client, detail("revoke", entitlement), {"reason": REASON})

    assert response.url == f"{CHANGELIST}{entitlement.pk}/change/"
    entitlement.refresh_from_db()
    assert entitlement.state == "revoked"


def test_revoke_done_for_a_ticket_links_the_history_rows_to_it(client, ops_lead, seats, customer):
    ticket = builders.ticket(customer=customer, subject="Please cancel Ann's seat")
    client.force_login(ops_lead)
    response = confirm(
        client,
        page("revoke", seats["issued"], seats["assigned"]),
        {"reason": REASON, "done_for": f"ticket #{ticket.pk}"},
    )
    assert messages_of(response) == [
        f"Revoked 2 entitlements: ISSU-ED00-0001, ASSI-GNED-0001. (for ticket #{ticket.pk})"
    ]
    for entitlement in (seats["issued"], seats["assigned"]):
        record = latest(entitlement)
        assert (record.history_actor, record.history_change_reason, record.history_for) == (
            "olga",
            REASON,
            f"support.ticket:{ticket.pk}",
        )


def test_reissue_done_for_a_case_links_the_history_row_to_it(client, ops_lead, seats, customer):
    case = builders.case(
        kind=Case.Kind.PROBLEM_REDEMPTION, customer=customer, summary="Code leaked"
    )
    client.force_login(ops_lead)
    confirm(
        client,
        detail("reissue", seats["issued"]),
        {"reason": REASON, "done_for": f"Case {case.pk}"},
    )
    assert latest(seats["issued"]).history_for == f"support.case:{case.pk}"


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("ticket 999999", "There is no ticket #999999."),
        ("case #999999", "There is no case #999999."),
        ("12", "“12” names no ticket or case: type “ticket 123” or “case 45”."),
        ("order 12", "“order 12” names no ticket or case: type “ticket 123” or “case 45”."),
    ],
)
def test_done_for_must_name_an_existing_ticket_or_case(client, ops_lead, seats, typed, error):
    client.force_login(ops_lead)
    before = world()
    response = confirm(
        client, page("revoke", seats["issued"]), {"reason": REASON, "done_for": typed}
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {"done_for": [error]}
    assert world() == before
    body = response.content.decode()
    assert REASON in body and f'value="{typed}"' in body  # what was typed is kept


def test_revoke_without_a_reason_changes_nothing(client, ops_lead, seats):
    client.force_login(ops_lead)
    before = world()
    response = confirm(client, page("revoke", seats["issued"]), {"reason": "   "})
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "reason": ["Give a reason: it is kept in the entitlement's history."]
    }
    assert world() == before


def test_revoking_several_with_one_already_revoked_revokes_none(client, ops_lead, seats):
    client.force_login(ops_lead)
    chosen = [seats["issued"], seats["assigned"], seats["revoked"]]
    response = client.get(page("revoke", *chosen))
    assert outcomes(response)[2] == (
        "REVO-KED0-0001",
        "cannot be revoked: it is revoked",
        True,
    )
    assert response.context["blocked"] == [
        "Only issued, assigned or redeemed entitlements can be revoked; 1 of the selected "
        "cannot. It runs for all or none: go back and leave those out."
    ]
    assert b'data-testid="workflow-form"' not in response.content

    before = world()
    response = confirm(client, page("revoke", *chosen), {"reason": REASON})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Nothing changed. REVO-KED0-0001 is revoked; only issued or assigned or redeemed "
        "entitlements can be revoked."
    ]
    assert world() == before  # the two revoked before the refusal were rolled back


# --- Reissue ------------------------------------------------------------------------------


def test_reissue_gives_new_codes_and_the_old_ones_stop_working(client, ops_lead, seats):
    client.force_login(ops_lead)
    chosen = [seats["issued"], seats["assigned"]]
    response = client.get(page("reissue", *chosen))
    assert [o for _, o, _ in outcomes(response)] == [
        "gets a new code; ISSU-ED00-0001 stops working",
        "gets a new code; ASSI-GNED-0001 stops working",
    ]
    response = confirm(client, page("reissue", *chosen), {"reason": REASON})

    assert response.status_code == 302
    new = [Entitlement.objects.get(pk=e.pk).code for e in chosen]
    assert not Entitlement.objects.filter(code__in=["ISSU-ED00-0001", "ASSI-GNED-0001"]).exists()
    assert messages_of(response) == [
        "Reissued 2 codes; the old ones no longer work: "
        f"ISSU-ED00-0001 → {new[0]}, ASSI-GNED-0001 → {new[1]}."
    ]
    for entitlement in chosen:
        record = latest(entitlement)
        assert (record.history_actor, record.history_change_reason) == ("olga", REASON)


def test_reissue_of_a_redeemed_seat_changes_nothing(client, ops_lead, seats):
    client.force_login(ops_lead)
    before = world()
    response = confirm(
        client, page("reissue", seats["issued"], seats["redeemed"]), {"reason": REASON}
    )
    assert response.context["form"].non_field_errors() == [
        "Nothing changed. REDE-EMED-0001 is redeemed; only issued or assigned entitlements "
        "can be given a new code."
    ]
    assert world() == before


# --- Assign and reassign ------------------------------------------------------------------


def test_an_ops_lead_assigns_an_issued_seat(client, ops_lead, seats):
    client.force_login(ops_lead)
    entitlement = seats["issued"]
    response = client.get(page("assign", entitlement))
    assert outcomes(response) == [("ISSU-ED00-0001", "issued → assigned to the email below", False)]
    assert list(response.context["form"].fields) == ["email", "reason", "done_for", "previewed"]

    response = confirm(
        client, page("assign", entitlement), {"email": " Lee@Acme.com ", "reason": REASON}
    )

    assert response.status_code == 302 and response.url == CHANGELIST
    assert messages_of(response) == ["ISSU-ED00-0001 is now assigned to lee@acme.com."]
    entitlement.refresh_from_db()
    assert (entitlement.state, entitlement.assignee_email) == ("assigned", "lee@acme.com")
    record = latest(entitlement)
    assert (record.history_actor, record.history_change_reason) == ("olga", REASON)


def test_assign_with_a_bad_email_keeps_what_was_typed_and_changes_nothing(client, ops_lead, seats):
    client.force_login(ops_lead)
    before = world()
    response = confirm(
        client, page("assign", seats["issued"]), {"email": "lee at acme", "reason": REASON}
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {"email": ["Enter a valid email address."]}
    body = response.content.decode()
    assert 'value="lee at acme"' in body and REASON in body
    assert world() == before


def test_assign_works_on_one_entitlement_at_a_time(client, ops_lead, seats):
    client.force_login(ops_lead)
    chosen = [seats["issued"], seats["issued2"]]
    message = (
        "Assign works on one entitlement at a time, with its own email; you selected 2. "
        "Go back and select one."
    )
    response = client.get(page("assign", *chosen))
    assert codes(response) == ["ISSU-ED00-0001", "ISSU-ED00-0002"]
    assert response.context["blocked"] == [message]
    assert message in response.content.decode()

    before = world()
    response = confirm(client, page("assign", *chosen), {"email": "lee@acme.com", "reason": REASON})
    assert response.context["form"].non_field_errors() == [f"Nothing changed. {message}"]
    assert world() == before


def test_assign_from_a_wrong_state_changes_nothing_and_says_why(client, ops_lead, seats):
    client.force_login(ops_lead)
    response = client.get(page("assign", seats["assigned"]))
    assert response.context["blocked"] == [
        "Only issued entitlements can be assigned; this one cannot."
    ]
    before = world()
    response = confirm(
        client, page("assign", seats["assigned"]), {"email": "lee@acme.com", "reason": REASON}
    )
    assert response.context["form"].non_field_errors() == [
        "Nothing changed. ASSI-GNED-0001 is assigned; only issued entitlements can be assigned."
    ]
    assert world() == before


def test_reassign_corrects_the_assignee_from_the_entitlement_page(client, ops_lead, seats):
    client.force_login(ops_lead)
    entitlement = seats["assigned"]
    response = client.get(detail("reassign", entitlement))
    assert outcomes(response) == [
        ("ASSI-GNED-0001", "assigned to ann@acme.com → the email below", False)
    ]
    response = confirm(
        client,
        detail("reassign", entitlement),
        {"email": "anne@acme.com", "reason": "typo in the email"},
    )
    assert response.url == f"{CHANGELIST}{entitlement.pk}/change/"
    assert messages_of(response) == [
        "ASSI-GNED-0001 is now assigned to anne@acme.com (was ann@acme.com)."
    ]
    entitlement.refresh_from_db()
    assert entitlement.assignee_email == "anne@acme.com"
    assert latest(entitlement).history_change_reason == "typo in the email"


def test_reassign_to_the_same_person_shows_the_refusal_on_the_form(client, ops_lead, seats):
    client.force_login(ops_lead)
    before = world()
    response = confirm(
        client, detail("reassign", seats["assigned"]), {"email": "ANN@acme.com", "reason": REASON}
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Nothing changed. ASSI-GNED-0001 is already assigned to ann@acme.com."
    ]
    assert 'value="ANN@acme.com"' in response.content.decode()
    assert world() == before


# --- Transfer -----------------------------------------------------------------------------


def test_transfer_asks_for_the_target_with_a_searchable_select(client, ops_lead, seats, globex):
    client.force_login(ops_lead)
    response = client.get(page("transfer", seats["issued"]))
    assert response.context["blocked"] == [
        "Pick the customer to move them to, then check the preview."
    ]
    body = response.content.decode()
    assert 'class="admin-autocomplete"' in body and 'data-field-name="customer"' in body

    found = client.get(
        "/admin/autocomplete/",
        {
            "app_label": "customers",
            "model_name": "entitlement",
            "field_name": "customer",
            "term": "glob",
        },
    )
    assert [r["text"] for r in found.json()["results"]] == ["Globex"]


def test_the_transfer_preview_shows_what_moves_and_what_is_refused(client, ops_lead, seats, globex):
    client.force_login(ops_lead)
    chosen = [seats["issued"], seats["redeemed"], seats["revoked"]]
    response = client.get(page("transfer", *chosen, target=globex.pk))
    assert outcomes(response) == [
        ("ISSU-ED00-0001", "moves from Acme Corp to Globex", False),
        ("REDE-EMED-0001", "moves from Acme Corp to Globex", False),
        ("REVO-KED0-0001", "stays: it is revoked", True),
    ]
    assert response.context["blocked"] == [
        "Nothing can move while 1 of the selected entitlements would be refused: a transfer "
        "moves all or none. Go back and leave those out."
    ]


def test_a_transfer_with_any_refused_row_moves_nothing(client, ops_lead, seats, globex):
    client.force_login(ops_lead)
    chosen = [seats["issued"], seats["revoked"]]
    before = world()
    response = confirm(
        client, page("transfer", *chosen, target=globex.pk), {"target": globex.pk, "reason": REASON}
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Nothing changed. Nothing moved: REVO-KED0-0001 is revoked."
    ]
    assert world() == before


def test_an_ops_lead_transfers_live_entitlements(client, ops_lead, seats, globex):
    client.force_login(ops_lead)
    chosen = [seats["issued"], seats["assigned"]]
    response = client.get(page("transfer", *chosen, target=globex.pk))
    assert response.context["blocked"] == []
    assert f'name="target" value="{globex.pk}"' in response.content.decode()

    response = confirm(
        client, page("transfer", *chosen, target=globex.pk), {"target": globex.pk, "reason": REASON}
    )

    assert response.status_code == 302
    assert messages_of(response) == [
        "Moved 2 entitlements to Globex: ISSU-ED00-0001, ASSI-GNED-0001."
    ]
    for entitlement in chosen:
        entitlement.refresh_from_db()
        assert entitlement.customer_id == globex.pk
        record = latest(entitlement)
        assert (record.history_actor, record.history_change_reason) == ("olga", REASON)
    assert Entitlement.objects.filter(customer=globex).count() == 2


def test_transfer_from_an_entitlement_page_returns_to_it(client, ops_lead, seats, globex):
    client.force_login(ops_lead)
    entitlement = seats["redeemed"]
    url = detail("transfer", entitlement)
    response = client.get(url, {"target": globex.pk})
    assert outcomes(response) == [("REDE-EMED-0001", "moves from Acme Corp to Globex", False)]
    assert b'name="ids"' not in response.content  # the page itself is the selection

    response = confirm(client, f"{url}?target={globex.pk}", {"target": globex.pk, "reason": REASON})

    assert response.url == f"{CHANGELIST}{entitlement.pk}/change/"
    entitlement.refresh_from_db()
    assert (entitlement.customer_id, entitlement.state) == (globex.pk, "redeemed")


def test_a_transfer_to_a_customer_that_does_not_exist_says_so(client, ops_lead, seats):
    client.force_login(ops_lead)
    response = client.get(page("transfer", seats["issued"], target=999999))
    assert response.status_code == 200
    assert response.context["target_form"].errors == {
        "target": ["That customer does not exist; pick another."]
    }
    before = world()
    response = confirm(client, page("transfer", seats["issued"]), {"target": 999999, "reason": "x"})
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "target": ["That customer does not exist; pick another."]
    }
    assert "That customer does not exist; pick another." in response.content.decode()
    assert world() == before


# --- Permissions ----------------------------------------------------------------------------

WORKFLOW_POSTS = {
    "assign": ("issued", {"email": "lee@acme.com", "reason": REASON}),
    "reassign": ("assigned", {"email": "lee@acme.com", "reason": REASON}),
    "revoke": ("issued", {"reason": REASON}),
    "reissue": ("issued", {"reason": REASON}),
    "transfer": ("issued", {"reason": REASON}),
}


@pytest.mark.parametrize("role", ["agent", "manager"])
@pytest.mark.parametrize("key", list(WORKFLOW_POSTS))
def test_who_may_only_view_entitlements_gets_403_and_nothing_changes(
    client, request, seats, globex, role, key
):
    client.force_login(request.getfixturevalue(role))
    state, data = WORKFLOW_POSTS[key]
    data = {**data, "target": globex.pk}
    before = world()
    for url in (page(key, seats[state], target=globex.pk), detail(key, seats[state])):
        assert client.get(url).status_code == 403
        assert confirm(client, url, data).status_code == 403
    assert client.post(
        CHANGELIST, {"action": f"{key}_selected", "_selected_action": [seats[state].pk]}
    ).status_code in (200, 302)  # the admin ignores an action it does not offer
    assert world() == before


@pytest.mark.parametrize("key", list(WORKFLOW_POSTS))
def test_a_superuser_may_run_every_workflow(client, superuser, seats, globex, key):
    client.force_login(superuser)
    state, data = WORKFLOW_POSTS[key]
    response = confirm(
        client, page(key, seats[state], target=globex.pk), {**data, "target": globex.pk}
    )
    assert response.status_code == 302, response.context and response.context["form"].errors
    assert latest(seats[state]).history_actor == "root"
