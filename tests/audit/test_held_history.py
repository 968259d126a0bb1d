"""Several changes to one record as one history entry (``audit.held.history_as_one``): its
saves and many-to-many changes inside the block leave one row, the record as it ends,
with the reason given; other records' rows are written as usual; a block that fails
writes nothing."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.context import acting_as
from audit.held import history_as_one
from support.models import Tag, Ticket
from tests import builders

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket():
    with acting_as("test:fixture"):
        return builders.ticket(subject="Export stuck")


def test_saves_and_tag_changes_inside_the_block_are_one_row_as_the_record_ends(ticket):
    before = ticket.history.count()
    with acting_as("alice"), transaction.atomic():
        tag = Tag.objects.create(name="export")
        with history_as_one(ticket, reason="macro: Export"):
            ticket.priority = "urgent"
            ticket.save()
            ticket.tags.add(tag)
            again = Ticket.objects.get(pk=ticket.pk)
            again.queue = "data"
            again.save(update_fields=["queue"])

    assert ticket.history.count() == before + 1
    row = ticket.history.first()
    assert (row.priority, row.queue, row.history_change_reason, row.history_actor) == (
        "urgent",
        "data",
        "macro: Export",
        "alice",
    )
    assert list(row.tags.values_list("tag__name", flat=True)) == ["export"]
    assert tag.history.count() == 1  # another record: its own row, as usual


def test_a_block_that_saves_nothing_still_leaves_its_one_row(ticket):
    before = ticket.history.count()
    with acting_as("alice"), transaction.atomic(), history_as_one(ticket, reason="looked"):
        pass
    assert ticket.history.count() == before + 1
    assert ticket.history.first().history_change_reason == "looked"


def test_a_block_that_fails_writes_no_row_and_rows_are_written_again_after_it(ticket):
    before = ticket.history.count()
    with (
        pytest.raises(RuntimeError),
        transaction.atomic(),
        history_as_one(ticket, reason="never"),
    ):
        ticket.priority = "low"
        ticket.save()
        raise RuntimeError("refused")
    assert ticket.history.count() == before

    with acting_as("alice"):
        ticket.priority = "high"
        ticket.save()
    assert ticket.history.count() == before + 1


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_it_is_refused(ticket):
    with pytest.raises(RuntimeError, match="open one"), history_as_one(ticket, reason="x"):
        pass
