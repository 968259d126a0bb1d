"""Malformed ids and parameters that once answered 500: each is a 404, a 400 or
the page again with a message saying what was not understood, never a 500."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from onboarding.models import ChecklistTask
from onboarding.services import checklist_generate
from support.models import Case
from tests.records import populate

pytestmark = pytest.mark.django_db

HUGE = "1" + "0" * 21


@pytest.fixture
def root(superuser):
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_digest_preview_says_it_knows_no_recipient_user_abc(root, customer):
    response = root.get("/admin/opsdesk/digestdelivery/preview/", {"recipient": "user:abc"})
    assert response.status_code == 200
    assert response.context["problems"] == ["No account manager 'user:abc'."]


@pytest.mark.parametrize("date", ["0001-01-01", "9999-12-31"])
def test_the_digest_preview_shows_today_for_a_date_out_of_range(root, customer, date):
    response = root.get("/admin/opsdesk/digestdelivery/preview/", {"date": date})
    assert response.status_code == 200
    assert response.context["problems"] == ["That date was not understood; showing today's digest."]


def test_the_as_of_page_shows_today_with_a_message_for_year_9999(root, customer):
    url = reverse("admin:customers_customer_as_of", args=[customer.pk])
    response = root.get(url, {"date": "9999-12-31"})
    assert response.status_code == 200
    assert messages_of(response) == [
        "“9999-12-31” is not a date from 2000-01-01 to 2100-12-31 (YYYY-MM-DD); showing today."
    ]


def test_the_audit_log_refuses_until_9999_with_the_filter_message(root, customer):
    response = root.get(reverse("admin:customers_customer_audit_log"), {"until": "9999-12-31"})
    assert response.status_code == 200
    assert response.context["trace"] is None
    assert messages_of(response) == [
        "Some filters were not understood, so nothing is listed: "
        "until: Give a date from 2000-01-01 to 2100-12-31."
    ]


def test_the_audit_log_export_answers_until_9999_with_400(root, customer):
    response = root.get(reverse("admin:customers_customer_audit_log_csv"), {"until": "9999-12-31"})
    assert response.status_code == 400
    assert response.content.decode() == (
        "The export's filters were not understood: "
        "until: Give a date from 2000-01-01 to 2100-12-31."
    )


@pytest.mark.parametrize("page", ["audit", "change"])
def test_a_trace_page_of_10_to_the_21_is_past_the_end(root, customer, page):
    url = reverse(f"admin:customers_customer_{page}", args=[customer.pk])
    response = root.get(url, {"trace_page": HUGE})
    assert response.status_code == 200
    assert response.context["trace"].entries == []


@pytest.mark.parametrize("history_id", ["abc", "1e400", HUGE])
def test_a_history_version_that_is_no_id_is_404(root, customer, history_id):
    url = f"/admin/customers/customer/{customer.pk}/history/{history_id}/"
    assert root.get(url).status_code == 404
    assert root.get("/admin/customers/customer/abc/history/").status_code == 404


@pytest.mark.usefixtures("templates")
@pytest.mark.parametrize("action", ["done", "reopen"])
def test_a_checklist_task_that_is_no_id_is_404_and_nothing_changes(root, customer, action):
    checklist_generate(contract=customer.contracts.get())
    before = list(ChecklistTask.objects.values_list("pk", "state"))
    response = root.post(f"/admin/onboarding/checklisttask/abc/{action}/")
    assert response.status_code == 404
    assert list(ChecklistTask.objects.values_list("pk", "state")) == before


@pytest.mark.parametrize("action", ["acknowledge", "recheck", "waive", "resolve"])
def test_a_case_that_is_no_id_is_404_and_nothing_changes(root, action):
    populate(1)
    before = list(Case.objects.values_list("pk", "state"))
    response = root.post(f"/admin/support/case/abc/{action}/", {"note": "because"})
    assert response.status_code == 404
    assert list(Case.objects.values_list("pk", "state")) == before


def test_a_transfer_target_that_is_no_id_is_no_choice(root):
    (customer,) = populate(1)
    entitlement = customer.entitlements.first()
    url = reverse("admin:customers_entitlement_transfer_detail", args=[entitlement.pk])
    response = root.get(url, {"target": "abc"})
    assert response.status_code == 200
    assert response.context["target"] is None
    assert response.context["target_form"].errors == {
        "target": ["That customer does not exist; pick another."]
    }


def test_a_migration_target_that_is_no_id_is_no_choice(root, customer):
    url = reverse("admin:customers_customer_migrate_account", args=[customer.pk])
    response = root.get(url, {"target": "abc"})
    assert response.status_code == 200
    assert response.context["preview"] is None
    assert response.context["target_form"].errors == {
        "target": ["That customer does not exist; pick another."]
    }


@pytest.mark.parametrize("page", ["change", "delete"])
def test_an_empty_to_field_is_the_primary_key(root, customer, page):
    url = reverse(f"admin:customers_customer_{page}", args=[customer.pk])
    assert root.get(url, {"_to_field": ""}).status_code == 200


@pytest.mark.parametrize("date", ["0001-01-01", "9999-12-31"])
def test_send_digests_refuses_a_date_out_of_range(date):
    with pytest.raises(
        CommandError,
        match=rf"--date '{date}' is not a date like 2026-11-22 \(from 2000-01-01 to 2100-12-31\)",
    ):
        call_command("send_digests", "--date", date)


@pytest.mark.parametrize(
    "query",
    [
        "/admin/opsdesk/digestdelivery/?digest_date__year=" + HUGE,
        "/admin/customers/contact/?role__exact=%00",
    ],
)
def test_a_changelist_filter_it_cannot_apply_sends_to_the_admins_error_page(root, query):
    response = root.get(query)
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")
