"""The triage queue filtered by customer: same matches as before the filter resolved the
customers first, and a cost that does not grow with the customers or their tickets."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.context import acting_as
from tests import builders

pytestmark = pytest.mark.django_db

QUEUE = "/admin/support/ticket/queue/"


def shown(response) -> list[str]:
    return sorted(ticket.subject for ticket, _, _ in response.context["rows"])


def tickets_of(name: str, tenant: str, n: int) -> None:
    with acting_as("test:fixture"):
        customer = builders.customer(external_id=tenant, name=name)
        for i in range(n):
            builders.ticket(subject=f"{name} {i}", customer=customer)


def test_the_customer_filter_matches_name_part_tenant_id_and_unknown_tenants(client, agent):
    client.force_login(agent)
    tickets_of("Acme Corp", "acme-7f3a", 1)
    tickets_of("Globex", "globex-1", 1)
    with acting_as("test:fixture"):
        builders.ticket(subject="ghost's", tenant_id="Ghost-42")
    assert shown(client.get(QUEUE, {"customer": "acme"})) == ["Acme Corp 0"]
    assert shown(client.get(QUEUE, {"customer": "GLOBEX-1"})) == ["Globex 0"]
    assert shown(client.get(QUEUE, {"customer": "ghost-42"})) == ["ghost's"]
    # A tenant id matches whole, not in part.
    assert shown(client.get(QUEUE, {"customer": "globex-"})) == []
    assert shown(client.get(QUEUE, {"customer": "nobody"})) == []


def test_the_filtered_queue_costs_the_same_for_2_customers_and_8(client, agent):
    client.force_login(agent)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(QUEUE, {"customer": "acme"}).status_code == 200
        return len(captured)

    for i in range(2):
        tickets_of(f"Acme {i}", f"acme-{i}", 2)
    client.get(QUEUE, {"customer": "acme"})  # warm per-process caches
    small = count()
    for i in range(2, 8):
        tickets_of(f"Acme {i}", f"acme-{i}", 3)
    assert count() == small
