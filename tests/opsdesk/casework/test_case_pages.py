"""A case's pages in the admin, through the test client, per role: its resolution pages,
closing with a note, waiving, acknowledging, and the case panel."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.context import acting_as, acting_as_user
from customers.models import Customer, Entitlement, Order, Product
from support.cases import case_close
from support.models import Case
from tests import builders
from tests.opsdesk.casework.cases import (
    NOTE,
    case_url,
    everything,
    make_case,
    resolve_url,
)
from tests.pages import messages_of
from tests.support.sender import deliver, entitlement_redeemed, order_completed

pytestmark = pytest.mark.django_db


# --- A resolution's page ------------------------------------------------------------------


def test_the_resolution_page_shows_its_form_with_what_the_order_named(
    client, ops_lead, customer, product
):
    with acting_as("test:fixture"):
        builders.product(sku="SEAT-OLD", name="Old seat", status=Product.Status.RETIRED)
    deliver(order_completed(sku="SEAT-OLD"), "msg_order")
    case = Case.objects.get()
    client.force_login(ops_lead)

    response = client.get(resolve_url(case, "fulfil"))

    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial == {"customer": customer, "product": None}
    assert list(form.fields["product"].queryset) == [product]  # a retired one is no choice
    html = response.content.decode()
    assert f'<option value="{customer.pk}" selected>Acme Corp</option>' in html
    assert 'name="note"' in html
    assert "Fulfil now and resolve" in html
    assert 'data-testid="resolve-unavailable"' not in html


def test_a_resolution_without_a_note_is_shown_again_with_the_error_and_what_was_typed(
    client, ops_lead, customer, product, failed_order_case
):
    case = failed_order_case
    client.force_login(ops_lead)
    before = everything()

    response = client.post(
        resolve_url(case, "fulfil"), {"customer": customer.pk, "product": product.pk, "note": " "}
    )

    assert response.status_code == 200
    assert response.context["note"].errors == {"note": ["This field is required."]}
    html = response.content.decode()
    assert '<p class="od-error">This field is required.</p>' in html
    assert f'<option value="{customer.pk}" selected>Acme Corp</option>' in html
    assert f'<option value="{product.pk}" selected>' in html
    assert everything() == before


def test_a_refund_keeps_the_note_typed_when_its_reference_is_missing(
    client, ops_lead, failed_order_case
):
    client.force_login(ops_lead)
    before = everything()

    response = client.post(resolve_url(failed_order_case, "refund"), {"note": "Refunded in full."})

    assert response.status_code == 200
    assert response.context["form"].errors == {"reference": ["This field is required."]}
    assert 'id="id_note">\nRefunded in full.</textarea>' in response.content.decode()
    assert everything() == before


def test_a_resolution_posted_resolves_the_case_and_goes_to_its_page(
    client, ops_lead, customer, product, failed_order_case
):
    case = failed_order_case
    client.force_login(ops_lead)

    response = client.post(
        resolve_url(case, "fulfil"), {"customer": customer.pk, "product": product.pk, "note": NOTE}
    )

    assert response.status_code == 302
    assert response["Location"] == case_url(case)
    done = "Fulfilled: 3 × SEAT-PRO-1Y issued to Acme Corp."  # noqa: RUF001
    assert messages_of(response) == [f"Case #{case.pk} resolved. {done}"]
    case.refresh_from_db()
    assert (case.state, case.owner, case.closing_note) == ("resolved", ops_lead, f"{done} {NOTE}")
    order = Order.objects.get()
    assert (order.fulfilment, order.customer) == ("fulfilled", customer)
    assert Entitlement.objects.filter(customer=customer).count() == 3
    rows = [
        *order.history.filter(history_type="~"),
        *Entitlement.history.all(),
        *case.history.filter(history_type="~"),
    ]
    assert {(r.history_actor, r.history_for) for r in rows} == {("olga", f"support.case:{case.pk}")}


def test_a_refused_resolution_says_why_and_changes_nothing(
    client, ops_lead, customer, product, failed_order_case
):
    with acting_as("test:fixture"):
        product.status = Product.Status.RETIRED  # retired after the page was opened
        product.save()
    client.force_login(ops_lead)
    before = everything()

    response = client.post(
        resolve_url(failed_order_case, "fulfil"),
        {"customer": customer.pk, "product": product.pk, "note": NOTE},
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "product": ["Select a valid choice. That choice is not one of the available choices."]
    }
    assert everything() == before


def test_the_fulfil_forms_customer_search_answers_as_you_type(client, ops_lead, customer, globex):
    client.force_login(ops_lead)

    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "customers", "model_name": "order", "field_name": "customer", "term": "acm"},
    )

    assert response.status_code == 200
    assert response.json()["results"] == [{"id": str(customer.pk), "text": "Acme Corp"}]


def test_a_churned_customer_picked_in_the_form_is_refused_and_nothing_changes(
    client, ops_lead, customer, product, failed_order_case
):
    with acting_as("test:fixture"):
        customer.status = Customer.Status.CHURNED
        customer.save()
    client.force_login(ops_lead)
    before = everything()

    response = client.post(
        resolve_url(failed_order_case, "fulfil"),
        {"customer": customer.pk, "product": product.pk, "note": NOTE},
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "customer": ["Select a valid choice. That choice is not one of the available choices."]
    }
    assert everything() == before


def test_resolving_a_case_closed_meanwhile_says_so_and_changes_nothing(
    client, ops_lead, superuser, customer, product, failed_order_case
):
    case = failed_order_case
    with acting_as_user(superuser):
        case_close(case=case, state=Case.State.WAIVED, note="test tenant", by=superuser)
    client.force_login(ops_lead)
    before = everything()

    response = client.post(
        resolve_url(case, "fulfil"), {"customer": customer.pk, "product": product.pk, "note": NOTE}
    )

    assert response.status_code == 200
    assert messages_of(response) == [f"Nothing changed. Case #{case.pk} is waived already."]
    assert 'data-testid="resolve-unavailable"' in response.content.decode()
    assert everything() == before


def test_a_closed_cases_resolution_page_offers_no_form(
    client, ops_lead, superuser, failed_order_case
):
    case = failed_order_case
    with acting_as_user(superuser):
        case_close(case=case, state=Case.State.RESOLVED, note="refunded by phone", by=superuser)
    client.force_login(ops_lead)

    response = client.get(resolve_url(case, "refund"))

    assert response.status_code == 200
    assert response.context["unavailable"] == "It is resolved already."
    assert 'data-testid="resolve-form"' not in response.content.decode()


def test_an_action_the_kind_does_not_have_goes_back_to_the_case(
    client, ops_lead, failed_order_case
):
    client.force_login(ops_lead)
    before = everything()

    response = client.post(resolve_url(failed_order_case, "accept"), {"note": NOTE})

    assert response.status_code == 302
    assert response["Location"] == case_url(failed_order_case)
    assert messages_of(response) == ["Failed fulfilment cases have no such action."]
    assert everything() == before


def test_a_resolution_page_of_no_case_is_404(client, ops_lead):
    client.force_login(ops_lead)
    assert (
        client.get(reverse("admin:support_case_resolve", args=[999999, "fulfil"])).status_code
        == 404
    )


# --- Resolve with a note, waive, acknowledge ----------------------------------------------


@pytest.mark.parametrize(
    ("url_name", "state", "label"),
    [
        ("admin:support_case_resolve_note", "resolved", "Closing note"),
        ("admin:support_case_waive", "waived", "Why it is waived"),
    ],
)
def test_a_case_is_closed_with_a_note_from_its_page(client, ops_lead, url_name, state, label):
    case = make_case("fixed elsewhere")
    url = reverse(url_name, args=[case.pk])
    client.force_login(ops_lead)

    page = client.get(url)
    assert page.status_code == 200
    assert f'<label for="id_note">{label} <span aria-hidden="true">*</span></label>' in (
        page.content.decode()
    )

    response = client.post(url, {"note": "  Credited on the next invoice.  "})

    assert response.status_code == 302
    assert response["Location"] == case_url(case)
    assert messages_of(response) == [f"Case #{case.pk} {state}."]
    case.refresh_from_db()
    assert (case.state, case.closing_note, case.owner) == (
        state,
        "Credited on the next invoice.",
        ops_lead,
    )
    latest = case.history.latest()
    assert (latest.history_actor, latest.history_change_reason) == (
        "olga",
        "Credited on the next invoice.",
    )


@pytest.mark.parametrize(
    "url_name", ["admin:support_case_resolve_note", "admin:support_case_waive"]
)
def test_closing_without_a_note_shows_the_form_again_and_changes_nothing(
    client, ops_lead, url_name
):
    case = make_case("open")
    client.force_login(ops_lead)
    before = everything()

    response = client.post(reverse(url_name, args=[case.pk]), {"note": "   "})

    assert response.status_code == 200
    assert response.context["note"].errors == {"note": ["This field is required."]}
    assert everything() == before


def test_closing_a_closed_case_says_so_and_changes_nothing(client, ops_lead):
    case = make_case("done", state=Case.State.RESOLVED)
    client.force_login(ops_lead)
    before = everything()

    response = client.post(reverse("admin:support_case_waive", args=[case.pk]), {"note": "no"})

    assert response.status_code == 200
    assert messages_of(response) == [f"Nothing changed. Case #{case.pk} is resolved already."]
    assert response.context["unavailable"] == "It is resolved already."
    assert everything() == before


def test_acknowledge_from_the_case_page_takes_it_and_says_so_once(client, ops_lead):
    case = make_case("open")
    url = reverse("admin:support_case_acknowledge", args=[case.pk])
    client.force_login(ops_lead)

    response = client.post(url, follow=True)

    assert response.redirect_chain == [(case_url(case), 302)]
    assert messages_of(response) == [f"Case #{case.pk} acknowledged."]
    case.refresh_from_db()
    assert (case.state, case.owner) == ("acknowledged", ops_lead)
    before = everything()

    again = client.post(url)

    assert messages_of(again) == [f"Case #{case.pk} is acknowledged."]
    assert everything() == before


# --- The case page ------------------------------------------------------------------------


def test_the_case_page_shows_the_panel_with_the_actions_that_apply(
    client, ops_lead, failed_order_case
):
    case = failed_order_case
    client.force_login(ops_lead)

    response = client.get(case_url(case))

    assert response.status_code == 200
    panel = response.context["case_panel"]
    assert [(entry.key, why) for entry, why in panel["resolutions"]] == [
        ("fulfil", ""),
        ("refund", ""),
    ]
    assert (panel["may_work"], panel["subject"]) == (True, Order.objects.get())
    html = response.content.decode()
    order = Order.objects.get()
    assert f'href="{reverse("admin:customers_order_change", args=[order.pk])}"' in html
    assert f'action="{reverse("admin:support_case_acknowledge", args=[case.pk])}"' in html
    assert "Acknowledge and take it" in html
    assert f'href="{resolve_url(case, "fulfil")}"' in html
    assert f'href="{resolve_url(case, "refund")}"' in html


def test_the_case_page_shows_actions_that_do_not_apply_disabled_with_why(
    client, ops_lead, customer
):
    deliver(entitlement_redeemed("K7QP-4XMD-9RTW", user_email="bob@acme.com"), "msg_redeemed")
    case = Case.objects.get()
    client.force_login(ops_lead)

    html = client.get(case_url(case)).content.decode()

    no_seat = "The code matches no entitlement, so there is no seat to give."
    nothing = "The code matches no entitlement, so there is nothing to revoke."
    assert f'aria-disabled="true" title="{no_seat}"' in html
    assert f'aria-disabled="true" title="{nothing}"' in html
    assert f"Accept redemption: {no_seat}" in html
    assert f"Revoke and reissue: {nothing}" in html
    assert resolve_url(case, "accept") not in html
    assert resolve_url(case, "revoke_reissue") not in html


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_people_who_only_view_cases_see_the_panel_without_actions(
    client, request, failed_order_case, persona
):
    client.force_login(request.getfixturevalue(persona))

    response = client.get(case_url(failed_order_case))

    assert response.status_code == 200
    assert (
        response.context["case_panel"]["may_work"],
        response.context["case_panel"]["resolutions"],
    ) == (
        False,
        [],
    )
    html = response.content.decode()
    assert 'data-testid="case-panel"' in html
    assert 'data-testid="case-actions"' not in html


def test_a_closed_case_page_shows_the_note_and_no_actions(client, ops_lead):
    case = make_case("done", state=Case.State.WAIVED, closing_note="Known test tenant.")
    client.force_login(ops_lead)

    response = client.get(case_url(case))

    html = response.content.decode()
    assert "Known test tenant." in html
    assert 'data-testid="case-actions"' not in html


def test_the_case_page_is_the_record_and_a_post_to_it_changes_nothing(client, ops_lead, superuser):
    """A case changes through the inbox's workflows (owner: bulk Assign, which gives a case
    only to someone who may work it); its page has no form, and a crafted POST is refused."""
    case = make_case("open", days_old=1)
    client.force_login(ops_lead)
    before = everything()

    page = client.get(case_url(case))
    response = client.post(
        case_url(case),
        {"owner": superuser.pk, "state": "waived", "summary": "rewritten", "_save": "Save"},
    )

    assert page.status_code == 200
    assert list(page.context["adminform"].form.fields) == []
    assert response.status_code == 403
    assert everything() == before
