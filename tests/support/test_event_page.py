"""A webhook event's page is the record: a POST to it is refused and writes nothing (it
wrote the event again, with a history row, though every field is read-only)."""

from __future__ import annotations

import pytest

from audit.context import acting_as
from support.models import WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("persona", ["ops_lead", "superuser"])
def test_the_event_page_is_the_record_and_a_post_to_it_is_refused(request, client, persona):
    with acting_as("test:fixture"):
        event = WebhookEvent.objects.create(
            webhook_id="msg_1", type="support.request", status=WebhookEvent.Status.FAILED
        )
    client.force_login(request.getfixturevalue(persona))
    before = (list(WebhookEvent.objects.values_list("status", "attempts")), event.history.count())

    response = client.post(
        f"/admin/support/webhookevent/{event.pk}/change/",
        {"status": "processed", "attempts": "0", "_save": "Save"},
    )

    assert response.status_code == 403
    assert (
        list(WebhookEvent.objects.values_list("status", "attempts")),
        event.history.count(),
    ) == before
    page = client.get(f"/admin/support/webhookevent/{event.pk}/change/")
    assert (page.status_code, page.context["has_change_permission"]) == (200, False)
    assert b'data-testid="event-retry"' in page.content  # retrying is still a button
