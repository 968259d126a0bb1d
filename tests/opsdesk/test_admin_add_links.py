"""Rows only the system makes are never offered to be added by hand: a ModelAdmin that
refuses adding shows no add link or button on any page (its list, any change or add form,
the "+" beside a field that picks one), no "Save and add another", and an empty list says
plainly that there are none instead of offering to create one."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from audit.context import acting_as
from tests import builders

pytestmark = pytest.mark.django_db

# The models someone may add by hand in the admin (a superuser at least); every other
# model's rows come from the product, imports, runs, workflows or the system.
ADDED_BY_HAND = [
    "auth.Group",
    "auth.User",
    "customers.Contact",
    "customers.Contract",
    "customers.Customer",
    "customers.Product",
    "onboarding.ChecklistTemplate",
    "support.Case",  # opened by hand, as well as by the system
    "support.Macro",
    "support.SlaPolicy",
    "support.Tag",
    "support.Ticket",
    "support.TriageRule",
]
STAFF = ("support", "manager", "ops_lead", "superuser")
LISTS_READ = {"support": 26, "manager": 25, "ops_lead": 28, "superuser": 30}


def may_add(user, model_admin) -> bool:
    request = RequestFactory().get("/admin/")
    request.user = user
    return model_admin.has_add_permission(request)


def admin_url(model, page: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}", args=args)


def test_only_these_models_may_be_added_by_hand(superuser):
    addable = sorted(
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if may_add(superuser, model_admin)
    )
    assert addable == ADDED_BY_HAND


@pytest.mark.parametrize("persona", STAFF)
def test_no_page_offers_to_add_what_its_admin_refuses(client, world, persona):
    objects, personas = world
    user = personas[persona]
    client.force_login(user)
    refused = {
        admin_url(model, "add")
        for model, model_admin in admin.site._registry.items()
        if not may_add(user, model_admin)
    }
    seen = []
    for model, model_admin in admin.site._registry.items():
        key = f"{model._meta.app_label}_{model._meta.model_name}"
        urls = [admin_url(model, "changelist"), admin_url(model, "change", objects[key].pk)]
        if may_add(user, model_admin):
            urls.append(admin_url(model, "add"))
        for url in urls:
            response = client.get(url)
            if response.status_code != 200:
                continue
            seen.append(url)
            page = response.content.decode()
            links = set(re.findall(r'href="([^"?#]*)', page))
            assert links & refused == set(), url
            if not may_add(user, model_admin):
                assert 'name="_addanother"' not in page, url
    # Every list the persona may read was read (the superuser: every list and record).
    lists = [
        url
        for url in seen
        if url.endswith(tuple(f"/{m._meta.model_name}/" for m in admin.site._registry))
    ]
    assert len(lists) == LISTS_READ[persona], sorted(set(seen))


def test_an_empty_list_of_rows_the_system_makes_says_there_are_none_yet(client, superuser):
    client.force_login(superuser)
    response = client.get(reverse("admin:support_webhookevent_changelist"))
    page = response.content.decode()
    assert "No webhook events yet" in page
    assert "Create a new item" not in page and "Reset filters" not in page
    assert 'href="/admin/support/webhookevent/add/' not in page


def test_an_empty_list_someone_may_add_to_offers_adding(client, superuser):
    client.force_login(superuser)
    page = client.get(reverse("admin:support_tag_changelist")).content.decode()
    assert "No tags yet" in page
    assert 'href="/admin/support/tag/add/"' in page and "Add tag" in page


def test_a_list_emptied_by_its_filters_says_so_and_offers_to_reset_them(
    client, superuser, customer
):
    with acting_as("test:fixture"):
        builders.invoice(customer=customer)
    client.force_login(superuser)
    url = reverse("admin:billing_invoice_changelist") + "?q=no-such-invoice"
    page = client.get(url).content.decode()
    assert "No invoices match these filters" in page
    assert "Reset filters" in page
    assert "/admin/billing/invoice/add/" not in page
    assert "Import CSV" in page  # importing is how invoices are made
