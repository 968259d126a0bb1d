"""The queue's tag quick action makes a new tag only for who may add tags (support.add_tag):
everyone else tags with existing tags, or is told why not and nothing is created."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from support.models import Tag
from tests.pages import messages_of
from tests.support.queue_pages import act_url, make_ticket

pytestmark = pytest.mark.django_db


def test_an_agent_without_add_tag_cannot_create_a_tag_and_nothing_changes(client, agent):
    client.force_login(agent)
    ticket = make_ticket("help")
    Tag.objects.create(name="billing")

    response = client.post(act_url(ticket), {"action": "tag", "tag": "Brand-New"})

    assert response.status_code == 302
    assert messages_of(response) == [
        "Nothing changed. There is no tag “brand-new”, and making one needs the permission "
        "support.add_tag: pick an existing tag."
    ]
    assert list(Tag.objects.values_list("name", flat=True)) == ["billing"]
    assert list(ticket.tags.all()) == []
    assert ticket.history.count() == 1


def test_an_agent_without_add_tag_tags_with_an_existing_tag(client, agent):
    client.force_login(agent)
    ticket = make_ticket("help")
    billing = Tag.objects.create(name="billing")

    response = client.post(act_url(ticket), {"action": "tag", "tag": "BILLING"})

    assert messages_of(response) == ["“help” is tagged billing."]
    assert list(ticket.tags.all()) == [billing]
    assert Tag.objects.count() == 1


def test_an_agent_given_add_tag_creates_the_tag(client, agent):
    agent.user_permissions.add(Permission.objects.get(codename="add_tag"))
    client.force_login(agent)
    ticket = make_ticket("help")

    response = client.post(act_url(ticket), {"action": "tag", "tag": "needs-engineering"})

    assert messages_of(response) == ["“help” is tagged needs-engineering."]
    assert list(Tag.objects.values_list("name", flat=True)) == ["needs-engineering"]
    assert list(ticket.tags.values_list("name", flat=True)) == ["needs-engineering"]
