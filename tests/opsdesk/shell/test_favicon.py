"""The site has an icon: every admin page links to it, and /favicon.ico finds it."""

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_every_page_links_to_the_icon(client, superuser):
    pages = [client.get(reverse("admin:login"))]
    client.force_login(superuser)
    pages.append(client.get(reverse("admin:support_tag_changelist")))
    for response in pages:
        page = response.content.decode()
        assert '<link rel="icon" href="/static/opsdesk/favicon.svg" type="image/svg+xml"' in page


def test_favicon_ico_leads_to_the_icon(client):
    response = client.get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (302, "/static/opsdesk/favicon.svg")
    assert finders.find("opsdesk/favicon.svg")
    assert client.post("/favicon.ico").status_code == 405
