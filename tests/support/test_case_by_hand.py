"""A case opened by hand goes through ``case_open``: raising it again finds it. A case's
page saves nothing: state, owner and resolution change in the ops inbox only."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from audit.context import acting_as_user
from support.cases import CaseError, case_open_by_hand
from support.models import Case
from tests import builders

pytestmark = pytest.mark.django_db

ADD = "/admin/support/case/add/"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def add_form(customer, **fields) -> dict:
    return {
        "kind": "amount_mismatch",
        "customer": customer.pk,
        "summary": "October invoice billed 60 seats",
        "expected": "50 seats",
        "found": "60 seats",
        "expected_amount": "1450.00",
        "found_amount": "1700.00",
        "owner": "",
        "_save": "Save",
        **fields,
    }


def everything() -> tuple:
    return (
        list(Case.objects.order_by("pk").values_list("pk", "state", "owner_id", "found")),
        Case.history.count(),
    )


def test_an_ops_lead_opens_a_case_by_hand_through_case_open(client, ops_lead, customer):
    client.force_login(ops_lead)

    response = client.post(ADD, add_form(customer, owner=ops_lead.pk))

    assert response.status_code == 302
    case = Case.objects.get()
    assert (
        case.kind,
        case.customer,
        case.summary,
        case.state,
        case.owner,
        case.dedupe_key,
        str(case.found_amount),
    ) == (
        "amount_mismatch",
        customer,
        "October invoice billed 60 seats",
        "open",
        ops_lead,
        "amount_mismatch:customer:acme-7f3a:by-hand:october invoice billed 60 seats",
        "1700.00",
    )
    assert case.history.get().history_actor == "olga"


def test_raising_the_same_problem_by_hand_again_finds_the_open_case(client, ops_lead, customer):
    client.force_login(ops_lead)
    client.post(ADD, add_form(customer), follow=True)
    case = Case.objects.get()

    again = client.post(
        ADD, add_form(customer, summary="  october INVOICE billed   60 seats ", found="61 seats")
    )

    assert Case.objects.get() == case
    assert again["Location"] == f"/admin/support/case/{case.pk}/change/"
    assert messages_of(again) == [
        f"Nothing added: this problem is case #{case.pk} already (open); here it is."
    ]
    case.refresh_from_db()
    assert case.found == "61 seats"  # case_open keeps what was found, with history
    assert [row.history_change_reason for row in case.history.order_by("pk")] == [
        None,
        "the problem was raised again",
    ]


@pytest.mark.parametrize("persona", ["ops_lead", "superuser"])
def test_the_case_page_is_the_record_and_a_post_to_it_is_refused(request, client, persona):
    case = builders.case(kind=Case.Kind.AMOUNT_MISMATCH, summary="Billed 60 seats")
    user = request.getfixturevalue(persona)
    client.force_login(user)
    before = everything()

    response = client.post(
        f"/admin/support/case/{case.pk}/change/",
        {"owner": user.pk, "state": "resolved", "closing_note": "fine", "_save": "Save"},
    )

    assert response.status_code == 403
    assert everything() == before
    page = client.get(f"/admin/support/case/{case.pk}/change/")
    assert page.status_code == 200
    assert list(page.context["adminform"].form.fields) == []
    assert page.context["has_change_permission"] is False  # no save buttons


@pytest.mark.parametrize("persona", ["agent", "manager", "outsider"])
def test_only_who_may_add_cases_opens_one_by_hand(request, persona, customer):
    user = request.getfixturevalue(persona)
    before = everything()

    with acting_as_user(user), pytest.raises(CaseError) as refused:
        case_open_by_hand(kind="amount_mismatch", customer=customer, summary="x", by=user)

    assert str(refused.value) == "You may not do this: it needs the permission support.add_case"
    assert everything() == before


def test_a_case_by_hand_is_owned_only_by_someone_who_may_work_cases(ops_lead, agent, customer):
    before = everything()

    with acting_as_user(ops_lead), pytest.raises(CaseError) as refused:
        case_open_by_hand(
            kind="amount_mismatch", customer=customer, summary="x", owner=agent, by=ops_lead
        )

    assert str(refused.value) == "Sam may not work cases; pick someone who may."
    assert everything() == before
