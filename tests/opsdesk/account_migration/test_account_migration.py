"""Account migration: previewed exactly, run all or nothing, by ops leads only."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.bulk import copy_with_history
from audit.context import acting_as, acting_as_user
from customers.models import Customer, Entitlement
from opsdesk.account_migration import services as accounts
from opsdesk.account_migration.services import (
    MigrationError,
    account_migrate,
    account_migration_preview,
)
from support.models import Ticket
from tests import builders

pytestmark = pytest.mark.django_db

REASON = "Acme bought Globex; one account from now on"


@pytest.fixture
def globex(db):
    return builders.customer(external_id="globex-1", name="Globex")


@pytest.fixture
def acme_records(customer):
    """Acme's contacts (one primary), 3 entitlements, and an open, a waiting and a solved ticket."""
    with acting_as("test:fixture"):
        product = builders.product(sku="SEAT", name="Seat")
        builders.contact(customer=customer, name="Pat", email="pat@acme.com", is_primary=True)
        builders.contact(customer=customer, name="Kim", email="kim@acme.com")
        for n in range(3):
            builders.entitlement(customer=customer, product=product, code=f"CODE-{n}")
        for subject, status in [("open", "open"), ("waiting", "pending"), ("done", "solved")]:
            builders.ticket(customer=customer, subject=subject, status=status)
    return product


def owners(customer):
    return (
        customer.contacts.count(),
        customer.entitlements.count(),
        customer.tickets.count(),
    )


def test_the_preview_lists_exactly_what_would_move(customer, globex, acme_records):
    builders.contact(customer=globex, name="Lou", email="lou@globex.com", is_primary=True)

    preview = account_migration_preview(source=customer, target=globex)

    assert [c.email for c in preview.contacts] == ["pat@acme.com", "kim@acme.com"]
    assert [e.code for e in preview.entitlements] == ["CODE-0", "CODE-1", "CODE-2"]
    assert [t.subject for t in preview.open_tickets] == ["open", "waiting"]
    assert preview.demoted_primary.email == "pat@acme.com"
    assert preview.problems == []
    assert owners(globex) == (1, 0, 0)  # the preview changed nothing


def test_an_ops_lead_migrates_everything_in_one_go(customer, globex, acme_records, ops_lead):
    with acting_as_user(ops_lead):
        account_migrate(source=customer, target=globex, reason=REASON, by=ops_lead)

    assert owners(globex) == (2, 3, 2)
    assert owners(customer) == (0, 0, 1)  # the solved ticket stays with its history
    record = Entitlement.objects.get(code="CODE-0").history.latest()
    assert record.history_actor == "olga"
    assert record.history_change_reason == f"account migration from Acme Corp to Globex: {REASON}"
    assert record.customer_id == globex.pk


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_only_ops_leads_may_migrate(request, customer, globex, acme_records, persona):
    user = request.getfixturevalue(persona)
    with pytest.raises(MigrationError, match=r"needs the permission customers\.migrate_account$"):
        account_migrate(source=customer, target=globex, reason=REASON, by=user)
    assert owners(customer) == (2, 3, 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("same", "A customer cannot be migrated into itself."),
        ("conflict", "Globex already has a contact kim@acme.com; merge or remove one first."),
        ("churned", "Globex has churned; pick a live customer."),
        ("no reason", "Give a reason"),
    ],
)
def test_a_refused_migration_moves_nothing(
    customer, globex, acme_records, ops_lead, change, message
):
    target, reason = globex, REASON
    with acting_as("test:fixture"):
        if change == "same":
            target = customer
        elif change == "conflict":
            builders.contact(customer=globex, name="Kim", email="KIM@acme.com")
        elif change == "churned":
            globex.status = Customer.Status.CHURNED
            globex.save()
        else:
            reason = "  "
    history_before = Entitlement.history.count()

    with pytest.raises(MigrationError, match=re.escape(message)):
        account_migrate(source=customer, target=target, reason=reason, by=ops_lead)

    assert owners(customer) == (2, 3, 3)
    assert Entitlement.history.count() == history_before


def test_a_failure_half_way_rolls_everything_back(customer, globex, acme_records, monkeypatch):
    real = accounts.update_with_history

    def fail_on_tickets(queryset, **kwargs):
        if queryset.model is Ticket:
            raise RuntimeError("database went away")
        return real(queryset, **kwargs)

    monkeypatch.setattr(accounts, "update_with_history", fail_on_tickets)
    with pytest.raises(RuntimeError):
        account_migrate(source=customer, target=globex, reason=REASON)
    assert owners(customer) == (2, 3, 3)
    assert owners(globex) == (0, 0, 0)


def test_a_thousand_entitlements_move_in_one_transaction_with_their_history(
    customer, globex, acme_records, ops_lead
):
    with acting_as("test:fixture"):
        copy_with_history(
            [
                Entitlement(
                    customer=customer,
                    product=acme_records,
                    code=f"BULK-{n:04d}",
                    valid_from=dt.date(2026, 1, 1),
                    issued_at=timezone.now(),
                )
                for n in range(997)
            ],
            Entitlement,
        )
    assert customer.entitlements.count() == 1000

    with CaptureQueriesContext(connection) as captured, acting_as_user(ops_lead):
        account_migrate(source=customer, target=globex, reason=REASON, by=ops_lead)

    assert globex.entitlements.count() == 1000
    moved = Entitlement.history.filter(
        history_change_reason__startswith="account migration", customer_id=globex.pk
    )
    assert moved.count() == 1000
    assert set(moved.values_list("history_actor", flat=True)) == {"olga"}
    # One transaction, in a number of statements that does not grow with the rows.
    statements = [q["sql"] for q in captured.captured_queries]
    assert len(statements) < 40, len(statements)
