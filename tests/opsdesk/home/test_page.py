"""The admin's index page is each person's home: the sections of their roles, only the
widgets whose pages they may open, a search box, and for somebody in no team a short
home with their own pages; never Django's list of apps, never an error."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from kit import roles
from tests.opsdesk.casework.cases import make_case
from tests.personas import staff_user
from tests.support.queue_pages import make_ticket

pytestmark = pytest.mark.django_db

HOME = "/admin/"
SECTIONS = ("home-support", "home-accounts", "home-ops", "home-personal")


def page(client, user) -> str:
    client.force_login(user)
    response = client.get(HOME)
    assert response.status_code == 200
    return response.content.decode()


def sections(html: str) -> list[str]:
    return [s for s in SECTIONS if f'data-testid="{s}"' in html]


def test_each_persona_sees_only_its_sections(client, agent, manager, ops_lead, superuser):
    assert sections(page(client, agent)) == ["home-support"]
    assert sections(page(client, manager)) == ["home-accounts"]
    assert sections(page(client, ops_lead)) == ["home-ops"]
    assert sections(page(client, superuser)) == ["home-support", "home-accounts", "home-ops"]


def test_somebody_in_no_team_gets_a_friendly_home_not_the_app_list(client):
    html = page(client, staff_user("nina"))
    assert sections(html) == ["home-personal"]
    assert "not in a team yet" in html
    assert 'href="/admin/opsdesk/notification/"' in html
    assert "app-list" not in html and 'id="content-main"' not in html


def test_the_search_box_submits_to_the_search_page(client, agent):
    html = page(client, agent)
    assert 'action="/admin/search/"' in html and 'method="get"' in html and 'name="q"' in html


def test_widgets_follow_the_permissions_to_their_pages(client, agent, ops_lead):
    # Support reads inbound email; ops leads do too, but their section counts webhooks only.
    support = page(client, agent)
    assert 'data-testid="card-emails"' in support and 'data-testid="card-webhooks"' in support
    ops = page(client, ops_lead)
    assert 'data-testid="widget-failed-webhooks"' in ops and "card-emails" not in ops
    # Without the permission to read webhook events, their count is gone.
    agent.groups.get(name=roles.SUPPORT).permissions.remove(
        Permission.objects.get(codename="view_webhookevent")
    )
    agent = type(agent).objects.get(pk=agent.pk)  # a fresh permission cache
    html = page(client, agent)
    assert "card-webhooks" not in html and 'data-testid="card-emails"' in html


def test_outside_text_is_escaped(client, ops_lead, customer):
    customer.name = "<script>alert(1)</script>"
    customer.save()
    make_case("x", customer=customer, days_old=3)
    evil = staff_user("evil", roles.SUPPORT)
    evil.first_name = "<b>Eve</b>"
    evil.save()
    make_ticket("y", assignee=evil)
    html = page(client, ops_lead)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<b>Eve</b>" not in html and "&lt;b&gt;Eve&lt;/b&gt;" in html


def _home_queries(client, user, django_assert_max_num_queries) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(user)
    client.get(HOME)  # warm the per-process caches
    with CaptureQueriesContext(connection) as captured:
        assert client.get(HOME).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("persona", ["agent", "manager", "ops_lead", "superuser"])
def test_the_home_takes_as_many_queries_for_1_row_as_for_20(
    client, request, persona, customer, django_assert_max_num_queries
):
    user = request.getfixturevalue(persona)
    make_ticket("one", assignee=user, customer=customer)
    make_case("one", customer=customer, owner=user, days_old=2)
    small = _home_queries(client, user, django_assert_max_num_queries)
    for i in range(19):
        make_ticket(f"more {i}", assignee=user, customer=customer)
        make_case(f"more {i}", customer=customer, owner=user, days_old=i)
    assert _home_queries(client, user, django_assert_max_num_queries) == small
