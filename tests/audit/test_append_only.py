"""History is append-only for the application: the trigger of ``audit.appendonly``."""

import datetime as dt
import io

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from audit import appendonly
from audit.context import acting_as
from customers.models import Customer
from support.models import Tag, Ticket

pytestmark = pytest.mark.django_db

REFUSED_UPDATE = "history is append-only: UPDATE of customers_historicalcustomer is not allowed"
REFUSED_DELETE = "history is append-only: DELETE from customers_historicalcustomer is not allowed"


def history_rows(model=Customer):
    return list(
        model.history.order_by("history_id").values_list(
            "history_id", "name", "history_date", "history_actor"
        )
    )


def age(record, days: int) -> None:
    """Backdate a history row as the database owner would, bypassing triggers for this
    transaction only (``session_replication_role``; the application never does this)."""
    table = record._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            f'UPDATE "{table}" SET history_date = %s WHERE history_id = %s',
            [timezone.now() - dt.timedelta(days=days), record.history_id],
        )
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


def test_raw_sql_update_of_a_history_row_is_rejected(customer):
    before = history_rows()
    with (
        pytest.raises(DatabaseError, match=REFUSED_UPDATE),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE customers_historicalcustomer SET history_actor = 'someone else'")
    assert history_rows() == before


def test_raw_sql_delete_of_a_history_row_is_rejected(customer):
    before = history_rows()
    with (
        pytest.raises(DatabaseError, match=REFUSED_DELETE),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM customers_historicalcustomer")
    assert history_rows() == before


def test_orm_update_and_delete_of_history_rows_are_rejected(customer):
    record = customer.history.get()
    before = history_rows()

    record.history_actor = "someone else"
    with pytest.raises(DatabaseError, match=REFUSED_UPDATE), transaction.atomic():
        record.save()
    with pytest.raises(DatabaseError, match=REFUSED_UPDATE), transaction.atomic():
        Customer.history.filter(pk=record.pk).update(history_change_reason="rewritten")
    with pytest.raises(DatabaseError, match=REFUSED_DELETE), transaction.atomic():
        record.delete()
    with pytest.raises(DatabaseError, match=REFUSED_DELETE), transaction.atomic():
        Customer.history.all().delete()
    assert history_rows() == before


def test_m2m_history_rows_are_append_only_too(customer):
    with acting_as("test:fixture"):
        ticket = Ticket.objects.create(
            customer=customer, subject="Help", first_response_due_at=timezone.now()
        )
        ticket.tags.add(Tag.objects.create(name="vip"))
    through = Ticket.history.model.tags.model
    assert through.objects.count() == 1
    with (
        pytest.raises(DatabaseError, match="UPDATE of support_historicalticket_tags"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE support_historicalticket_tags SET tag_id = tag_id")
    with (
        pytest.raises(DatabaseError, match="DELETE from support_historicalticket_tags"),
        transaction.atomic(),
    ):
        through.objects.all().delete()
    assert through.objects.count() == 1


def test_the_opt_in_allows_deleting_only_rows_older_than_its_cutoff(customer):
    old, new = customer.history.get(), None
    with acting_as("alice"):
        customer.name = "Acme Corporation"
        customer.save()
    new = customer.history.latest()
    age(old, days=3000)
    cutoff = timezone.now() - dt.timedelta(days=2555)

    with (
        pytest.raises(DatabaseError, match="not older than the retention cutoff"),
        appendonly.retention_opt_in(cutoff),
    ):
        Customer.history.filter(pk=new.pk).delete()
    with (
        pytest.raises(DatabaseError, match=REFUSED_UPDATE),
        appendonly.retention_opt_in(cutoff),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE customers_historicalcustomer SET name = 'x' WHERE history_id = %s",
            [old.pk],
        )
    with appendonly.retention_opt_in(cutoff):
        Customer.history.filter(pk=old.pk).delete()
    assert [r[0] for r in history_rows()] == [new.pk]


def test_the_opt_in_ends_with_its_transaction(customer):
    record = customer.history.get()
    age(record, days=3000)
    with appendonly.retention_opt_in(timezone.now()):
        pass
    with pytest.raises(DatabaseError, match=REFUSED_DELETE), transaction.atomic():
        record.delete()
    assert customer.history.count() == 1


def test_prune_history_deletes_only_rows_older_than_the_retention(customer):
    with acting_as("test:fixture"):
        ticket = Ticket.objects.create(
            customer=customer, subject="Help", first_response_due_at=timezone.now()
        )
        ticket.tags.add(Tag.objects.create(name="vip"))
        customer.name = "Acme Corporation"
        customer.save()
    first, renamed = customer.history.order_by("history_id")
    ticket_rows = list(ticket.history.order_by("history_id"))
    age(first, days=3000)
    age(ticket_rows[-1], days=2600)  # the row holding the tag: its m2m row goes with it
    age(ticket_rows[0], days=2000)  # younger than the retention: kept
    contracts_before = customer.contracts.model.history.count()

    out = io.StringIO()
    call_command("prune_history", stdout=out)

    assert list(customer.history.values_list("pk", flat=True)) == [renamed.pk]
    assert list(ticket.history.values_list("pk", flat=True)) == [ticket_rows[0].pk]
    assert Ticket.history.model.tags.model.objects.count() == 0
    assert customer.contracts.model.history.count() == contracts_before
    assert "prune_history: 3 rows older than" in out.getvalue()
    assert "customers_historicalcustomer: 1" in out.getvalue()
    assert "support_historicalticket_tags: 1" in out.getvalue()


@override_settings(OPSDESK_HISTORY_RETENTION_DAYS=10)
def test_prune_history_follows_the_setting_and_refuses_a_shorter_retention(customer):
    record = customer.history.get()
    age(record, days=11)
    with pytest.raises(CommandError, match="shorter than the retention of 10 days"):
        call_command("prune_history", "--days", "5", stdout=io.StringIO())
    assert customer.history.count() == 1
    call_command("prune_history", "--days", "12", stdout=io.StringIO())
    assert customer.history.count() == 1
    call_command("prune_history", stdout=io.StringIO())
    assert customer.history.count() == 0


def test_every_history_table_in_the_database_has_the_trigger():
    with connection.cursor() as cursor:
        # A history table has a history_id column (m2m history tables reference one).
        cursor.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'history_id'"
        )
        in_database = {row[0] for row in cursor.fetchall()}
    registry = {t.table for t in appendonly.history_tables(apps.get_models())}
    assert len(registry) >= 23
    assert in_database == registry
    assert appendonly.tables_with_trigger() >= in_database


def test_post_migrate_installs_the_trigger_on_a_history_table_lacking_it():
    table = "customers_historicalcustomer"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {appendonly.TRIGGER} ON {table}")
    assert table not in appendonly.tables_with_trigger()

    assert appendonly.install_missing() == [table]

    assert table in appendonly.tables_with_trigger()
    assert appendonly.install_missing() == []  # idempotent


def test_truncate_still_works_for_test_flushes(customer):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as a flush's own transaction
        cursor.execute("TRUNCATE customers_historicalcustomer")
    assert Customer.history.count() == 0
