"""The trail at the top of a page names where it is, once each, ids as they are written."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.context import acting_as
from tests import builders

pytestmark = pytest.mark.django_db


def trail(response) -> list[str]:
    """The parts of the page's trail, in order."""
    page = response.content.decode()
    head = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.DOTALL)[1]
    parts = re.findall(
        r"<(?:a|span)[^>]*truncate[^>]*>\s*(.*?)\s*</(?:a|span)\s*>", head, re.DOTALL
    )
    return [re.sub(r"\s+", " ", part) for part in parts]


def test_a_sidebar_page_is_its_section_and_its_title(client, superuser):
    client.force_login(superuser)
    assert trail(client.get(reverse("admin:customers_customer_audit_log"))) == [
        "Audit",
        "Audit log",
    ]
    assert trail(client.get(reverse("admin:support_case_inbox"))) == ["Support", "Exceptions"]
    assert trail(client.get(reverse("admin:support_ticket_queue"))) == ["Support", "Triage queue"]


def test_an_app_named_as_its_model_is_named_once(client, superuser):
    client.force_login(superuser)
    assert trail(client.get(reverse("admin:customers_customer_changelist"))) == ["Customers"]
    assert trail(client.get(reverse("admin:support_tag_changelist"))) == ["Support", "Tags"]


def test_a_record_keeps_the_case_of_its_id(client, superuser, customer):
    with acting_as("test:fixture"):
        order = builders.order(customer=customer, external_id="ord_f961a502")
    client.force_login(superuser)
    response = client.get(reverse("admin:customers_order_change", args=[order.pk]))
    assert trail(response) == ["Customers", "Orders", "ord_f961a502"]


def test_a_page_of_a_record_ends_with_its_own_title(client, superuser, customer):
    client.force_login(superuser)
    response = client.get(reverse("admin:customers_customer_audit", args=[customer.pk]))
    assert trail(response) == ["Customers", "Audit timeline: Acme Corp"]


def test_an_add_page_says_what_it_adds(client, superuser):
    client.force_login(superuser)
    assert trail(client.get(reverse("admin:support_tag_add"))) == ["Support", "Tags", "Add tag"]
