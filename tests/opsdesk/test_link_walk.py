"""No link leads to a refusal: every admin page, as every role, links only to pages that
role may open (kit.people.admin_link: "link if allowed, else text")."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.test import Client

from tests.admin_walk import admin_patterns
from tests.opsdesk.admin_matrix import url_of

pytestmark = pytest.mark.django_db

HREF = re.compile(r'<a\b[^>]*\bhref="(/admin/[^"#]*)')
# Links whose GET is not a page: signing out is a POST, downloads and exports are files.
SKIP = re.compile(r"/logout/|/csv/?|\.eml|/attachments?/")


def links_of(content: str) -> set[str]:
    return {unescape(href) for href in HREF.findall(content) if not SKIP.search(href)}


@pytest.mark.parametrize("persona", ["support", "manager", "ops_lead"])
def test_no_link_on_any_page_leads_to_a_403(world, persona):
    objects, personas = world
    client = Client()
    client.force_login(personas[persona])
    pages = {}
    for key, route in admin_patterns():
        url = url_of(key, route, objects)
        response = client.get(url)
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            pages[url] = response.content.decode()
    assert len(pages) > 40

    refused = []
    seen = {}
    for page, content in pages.items():
        for link in sorted(links_of(content)):
            if link not in seen:
                seen[link] = client.get(link).status_code
            if seen[link] == 403:
                refused.append(f"{page} -> {link}")
    assert refused == []
    assert len(seen) > 50


def test_the_account_manager_is_a_name_and_email_for_support_and_a_choice_for_a_superuser(
    client, world
):
    objects, personas = world
    customer = objects["customers_customer"]
    manager = personas["manager"]
    change = f"/admin/customers/customer/{customer.pk}/change/"
    user_page = f"/admin/auth/user/{manager.pk}/change/"

    client.force_login(personas["support"])
    page = client.get(change).content.decode()
    assert user_page not in page
    mail = '<a href="mailto:alice@opsdesk.test" class="text-link">alice@opsdesk.test</a>'
    assert f"Alice · {mail}" in page

    client.force_login(personas["superuser"])
    page = client.get(change).content.decode()
    assert f'<option value="{manager.pk}" selected>Alice</option>' in page
