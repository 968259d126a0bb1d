"""Saved views on the queue's and the inbox's pages: the views to switch to (the current
one marked), "Save this view" for the filters shown, a view's link that is its page with
its filters; and names from outside shown as text everywhere."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.html import escape

from opsdesk.models import SavedView
from tests.opsdesk.saved_views.records import INBOX, QUEUE, SAVE, SIDEBAR, VIEWS, saved_view
from tests.opsdesk.test_escaping import Markup
from tests.pages import messages_of
from tests.support.queue_pages import make_ticket, shown

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(1)>" x-init="alert(1)'


def bar(response) -> str:
    html = response.content.decode()
    start = html.index('data-testid="saved-views"')
    return html[
        start : html.index(
            'data-testid="queue-filters"'
            if "queue-filters" in html
            else 'data-testid="inbox-filters"'
        )
    ]


def test_a_views_link_is_its_page_with_its_filters_and_shows_what_it_saved(client, agent):
    make_ticket("urgent one", priority="urgent")
    make_ticket("low one", priority="low")
    saved_view(agent, "Urgent", "priority=urgent")
    client.force_login(agent)

    page = client.get(QUEUE)
    assert f'href="{QUEUE}?priority=urgent"' in bar(page)
    opened = client.get(f"{QUEUE}?priority=urgent")
    assert shown(opened) == ["urgent one"]
    assert 'od-view-current" href="/admin/support/ticket/queue/?priority=urgent"' in bar(opened)
    assert 'aria-current="page"' in bar(opened)
    assert 'aria-current="page"' not in bar(page)


def test_the_filter_forms_address_marks_its_view_current(client, agent):
    saved_view(agent, "Urgent", "priority=urgent")
    client.force_login(agent)
    # As the filter form sends it: every field, empty ones included.
    submitted = f"{QUEUE}?status=active&priority=urgent&tag=&assignee=&customer=&plan=&overdue="
    assert 'aria-current="page"' in bar(client.get(submitted))


def test_save_this_view_carries_the_filters_shown(client, agent):
    client.force_login(agent)
    html = bar(client.get(f"{QUEUE}?status=active&priority=urgent&tag=&assignee=none&page=2"))
    assert f'action="{SAVE}"' in html
    assert '<input type="hidden" name="query" value="priority=urgent&amp;assignee=none">' in html
    assert '<input type="hidden" name="page" value="queue">' in html
    assert 'name="shared"' in html  # support shares queue views


def test_unfiltered_there_is_nothing_to_save(client, agent):
    client.force_login(agent)
    html = bar(client.get(QUEUE))
    assert f'action="{SAVE}"' not in html
    assert "Filter the list first: a view keeps the filters this page shows." in html


def test_filters_not_understood_are_not_offered_for_saving(client, agent):
    client.force_login(agent)
    assert f'action="{SAVE}"' not in bar(client.get(QUEUE, {"priority": "whenever"}))


def test_an_account_manager_saves_for_themselves_only(client, manager):
    client.force_login(manager)
    for page, query in ((QUEUE, "priority=urgent"), (INBOX, "kind=missing_invoice")):
        html = bar(client.get(f"{page}?{query}"))
        assert f'action="{SAVE}"' in html
        assert 'name="shared"' not in html


def test_an_ops_lead_shares_views_of_the_inbox(client, ops_lead):
    client.force_login(ops_lead)
    html = bar(client.get(f"{INBOX}?kind=missing_invoice"))
    assert "Share with everyone who sees the exceptions inbox" in html


def test_saved_from_the_inbox_it_opens_with_its_filters(client, ops_lead):
    client.force_login(ops_lead)
    response = client.post(
        SAVE, {"page": "inbox", "query": "kind=missing_invoice&owner=me", "name": "My billing"}
    )
    assert response["Location"] == f"{INBOX}?kind=missing_invoice&owner=me"
    assert "My billing</a>" in bar(client.get(response["Location"]))


# --- Names from outside -------------------------------------------------------------------


@pytest.fixture
def hostile(agent):
    return saved_view(agent, HOSTILE[:60], "priority=urgent", shared=True)


@pytest.mark.parametrize(
    "url",
    [QUEUE, f"{QUEUE}?priority=urgent", SIDEBAR, VIEWS, "change"],
    ids=["queue", "its view", "sidebar", "list", "its page"],
)
@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_a_views_name_is_shown_as_text(request, client, hostile, url, persona):
    client.force_login(request.getfixturevalue(persona))
    if url == "change":
        url = reverse("admin:opsdesk_savedview_change", args=[hostile.pk])
    html = client.get(url).content.decode()
    page = Markup.read(html)
    assert page.problems == []
    assert page.shown_as_text
    assert escape(HOSTILE[:20]) in html


def test_the_saved_message_shows_the_name_as_text(client, agent):
    client.force_login(agent)
    response = client.post(SAVE, {"page": "queue", "query": "priority=low", "name": HOSTILE[:60]})
    [message] = messages_of(response)
    page = client.get(response["Location"]).content.decode()
    assert Markup.read(page).problems == []
    assert escape(HOSTILE[:20]) in page
    assert message.startswith("Saved the view “&lt;script&gt;")


def test_a_stored_query_is_encoded_again_in_links(client, agent):
    # Stored by hand (the services never would): the link still stays on its page.
    saved_view(agent, "Odd", 'priority=urgent&x="><script>alert(1)</script>')
    client.force_login(agent)
    for url in (QUEUE, SIDEBAR):
        html = client.get(url).content.decode()
        assert Markup.read(html).problems == []
        assert (
            f"{QUEUE}?priority=urgent&amp;x=%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in html
        )
    assert SavedView.objects.count() == 1
