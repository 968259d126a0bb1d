"""Open tickets from before service levels get their clocks when the migration runs."""

import importlib

import pytest

from support.models import Ticket
from tests import builders

pytestmark = pytest.mark.django_db

backfill = importlib.import_module("support.migrations.0020_sla_backfill").backfill


def test_the_migration_gives_open_tickets_their_clocks_and_leaves_solved_ones(
    customer, sla_policies
):
    # sla_policies: the defaults migration 0019 seeds, made again if a transactional
    # test of this run flushed them.
    open_ticket = builders.ticket(customer=customer, subject="Export stuck")
    solved = builders.ticket(customer=customer, subject="Old", status=Ticket.Status.SOLVED)
    assert open_ticket.sla_due_at is None  # written without the service, as before 0018

    backfill(None, None)

    open_ticket.refresh_from_db()
    solved.refresh_from_db()
    assert open_ticket.sla_policy is not None
    assert open_ticket.sla_due_at == open_ticket.first_response_due_at
    assert open_ticket.history.latest().history_actor == "command:sla_refresh"
    assert (solved.sla_policy, solved.sla_due_at) == (None, None)
