"""Audit across apps: a customer's timeline over everything it owns, the global audit log
with its filters, its streamed CSV export, and a customer's contracts and entitlements as
they were on a date (docs/product.md#audit)."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
import time_machine
from bs4 import BeautifulSoup
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.context import acting_as, acting_as_user
from audit.timeline import Change, stream
from billing.models import Invoice
from customers.entitlements import (
    entitlement_assign,
    entitlement_reassign,
    entitlement_revoke,
    entitlements_transfer,
)
from customers.models import Contract, Customer, Entitlement, Product
from onboarding.models import Checklist, ChecklistTask
from opsdesk.audit_log.selectors import AuditLogFilter, audit_log, customer_as_of, customer_audit
from support.cases import case_close
from support.models import Case, Tag, Ticket, TicketComment
from tests import builders
from tests.records import grow, populate

pytestmark = pytest.mark.django_db

# After the fixtures (made at the real time), so these steps come after them.
MARCH = dt.datetime(2031, 3, 1, 12, tzinfo=dt.UTC)


def on(day: int, hour: int = 12, month: int = 3) -> dt.datetime:
    return MARCH.replace(month=month, day=day, hour=hour)


def headlines(page) -> list[str]:
    return [entry.headline for entry in page.entries]


@pytest.fixture
def product(db) -> Product:
    with acting_as("test:fixture"):
        return builders.product(sku="SEAT-PRO-1Y", name="Pro seat", term_days=365)


@pytest.fixture
def globex(db) -> Customer:
    with acting_as("test:fixture"):
        return builders.customer(external_id="globex-1", name="Globex")


def issue(customer, product, code: str, when: dt.datetime) -> Entitlement:
    with time_machine.travel(when, tick=False), acting_as("webhook:msg_order"):
        return builders.entitlement(
            customer=customer, product=product, code=code, valid_from=when.date(), issued_at=when
        )


@pytest.fixture
def seat(customer, product, ops_lead) -> Entitlement:
    """Issued on 28 Feb, Ann's from 1 Mar, Bob's from 10 Mar, revoked on 20 Mar."""
    seat = issue(customer, product, "SEAT-0001", on(28, month=2))
    with acting_as_user(ops_lead):
        with time_machine.travel(on(1), tick=False):
            entitlement_assign(entitlement=seat, email="ann@acme.com", reason="new hire")
        with time_machine.travel(on(10), tick=False):
            entitlement_reassign(entitlement=seat, email="bob@acme.com", reason="Ann moved team")
        with time_machine.travel(on(20), tick=False):
            entitlement_revoke(entitlement=seat, reason="left the company")
    seat.refresh_from_db()
    return seat


def grow_seats(contract: Contract, seats: int, when: dt.datetime, user, reason: str) -> None:
    with time_machine.travel(when, tick=False), acting_as_user(user, reason=reason):
        contract.seats = seats
        contract.save()


# --- A customer's timeline -----------------------------------------------------------------


@pytest.fixture
def busy_customer(customer, globex, product, manager, ops_lead, seat):
    """Acme's March: seats grown, a ticket solved with a note, a case resolved, an
    invoice paid, an onboarding task done; Globex's own ticket on the same day."""
    contract = customer.contracts.get()
    grow_seats(contract, 75, on(5), manager, "signed the upsell")
    with time_machine.travel(on(11), tick=False), acting_as("webhook:msg_ticket"):
        ticket = builders.ticket(customer=customer, subject="SSO broken")
    with time_machine.travel(on(11, 13), tick=False), acting_as_user(ops_lead):
        TicketComment.objects.create(ticket=ticket, kind="note", body="Looking", author=ops_lead)
        ticket.status = Ticket.Status.SOLVED
        ticket.save()
    with time_machine.travel(on(11, 14), tick=False), acting_as_user(ops_lead):
        ticket.tags.add(Tag.objects.create(name="sso"), Tag.objects.create(name="vip"))
    with time_machine.travel(on(12), tick=False), acting_as("task:reconciliation_run"):
        case = builders.case(
            kind=Case.Kind.MISSING_INVOICE, customer=customer, summary="No invoice for March"
        )
    with time_machine.travel(on(13), tick=False), acting_as_user(ops_lead):
        case_close(case=case, state=Case.State.RESOLVED, note="billed late", by=ops_lead)
    with time_machine.travel(on(14), tick=False), acting_as("command:import_invoices"):
        invoice = builders.invoice(
            external_id="in_1",
            customer=customer,
            number="INV-1",
            status=Invoice.Status.OPEN,
            amount_due=Decimal("1450.00"),
            amount_paid=Decimal("0"),
            period_start=dt.date(2031, 3, 1),
            period_end=dt.date(2031, 3, 31),
            issued_at=dt.date(2031, 3, 14),
            due_at=dt.date(2031, 4, 13),
        )
    with time_machine.travel(on(15), tick=False), acting_as("command:import_invoices"):
        invoice.status = Invoice.Status.PAID
        invoice.amount_paid = Decimal("1450.00")
        invoice.save()
    with time_machine.travel(on(16), tick=False), acting_as("task:checklist_generate"):
        checklist = Checklist.objects.create(
            contract=contract, customer=customer, activated_at=on(16)
        )
    with time_machine.travel(on(16, 13), tick=False), acting_as("task:checklist_generate"):
        task = ChecklistTask.objects.create(
            checklist=checklist,
            title="Kick-off call",
            role="account_manager",
            due_date=on(20).date(),
        )
    with time_machine.travel(on(17), tick=False), acting_as_user(manager):
        task.state = ChecklistTask.State.DONE
        task.done_by = manager
        task.done_at = on(17)
        task.save()
    with time_machine.travel(on(11), tick=False), acting_as("webhook:msg_other"):
        builders.ticket(customer=globex, subject="Globex's own trouble")
    return customer


def test_a_customers_timeline_merges_everything_it_owns_newest_first(busy_customer):
    page = customer_audit(busy_customer)
    ticket = Ticket.objects.get(subject="SSO broken")

    march = [e for e in page.entries if e.at >= on(28, month=2)]
    assert [(e.headline, e.actor) for e in march] == [
        ("Entitlement SEAT-0001 revoked", "Olga"),
        ("Checklist task Kick-off call done", "Alice"),
        ("Checklist task Kick-off call added", "task:checklist_generate"),
        (
            "Checklist Onboarding of Acme Corp · Growth · 75 seats created",
            "task:checklist_generate",
        ),
        ("Invoice INV-1 paid", "command:import_invoices"),
        ("Invoice INV-1 recorded", "command:import_invoices"),
        ("Case Missing invoice: No invoice for March resolved", "Olga"),
        ("Case Missing invoice: No invoice for March raised", "task:reconciliation_run"),
        ("Ticket SSO broken changed", "Olga"),
        ("Ticket SSO broken solved", "Olga"),
        (f"Ticket comment Internal note on {ticket.pk} written", "Olga"),
        ("Ticket SSO broken opened", "webhook:msg_ticket"),
        ("Entitlement SEAT-0001 reassigned", "Olga"),
        ("Contract Acme Corp · Growth · 75 seats changed", "Alice"),
        ("Entitlement SEAT-0001 assigned", "Olga"),
        ("Entitlement SEAT-0001 issued", "webhook:msg_order"),
    ]
    assert "Globex's own trouble" not in str(headlines(page))
    # The customer's own creation and its contract's, from the fixtures, come last.
    assert headlines(page)[-1] == "Created"


def test_each_entry_reads_as_a_diff_with_its_reason(busy_customer):
    entries = {e.headline: e for e in customer_audit(busy_customer).entries}

    revoked = entries["Entitlement SEAT-0001 revoked"]
    assert revoked.reason == "left the company"
    assert Change("state", "Assigned", "Revoked") in revoked.changes
    assert Change("revoke reason", "—", "left the company") in revoked.changes
    grown = entries["Contract Acme Corp · Growth · 75 seats changed"]
    assert grown.changes == (Change("seats", "50", "75"),)
    assert grown.reason == "signed the upsell"
    paid = entries["Invoice INV-1 paid"]
    assert Change("status", "Open", "Paid") in paid.changes
    done = entries["Checklist task Kick-off call done"]
    assert Change("done by", "—", "Alice") in done.changes
    assert entries["Ticket SSO broken solved"].changes == (Change("status", "Open", "Solved"),)


def test_a_moved_entitlement_shows_on_the_old_customers_timeline_up_to_the_move(
    seat, customer, globex, product, ops_lead
):
    other = issue(customer, product, "SEAT-0002", on(21))
    with time_machine.travel(on(22), tick=False), acting_as_user(ops_lead):
        entitlements_transfer(entitlements=[other], target=globex, reason="wrong account")
    with time_machine.travel(on(23), tick=False), acting_as_user(ops_lead):
        entitlement_assign(entitlement=other, email="gus@globex.com", reason="Globex's now")

    acme = headlines(customer_audit(customer))
    assert "Entitlement SEAT-0002 transferred" in acme
    assert "Entitlement SEAT-0002 assigned" not in acme
    assert "Entitlement SEAT-0002 assigned" in headlines(customer_audit(globex))


def test_the_timeline_pages_without_overlap(busy_customer):
    first = customer_audit(busy_customer, page_size=5)
    second = customer_audit(busy_customer, page=2, page_size=5)

    assert first.has_next and second.has_previous
    assert len(first.entries) == 5

    def keys(page) -> set:
        return {(e.record.model, e.history_id) for e in page.entries}

    assert not keys(first) & keys(second)
    assert second.entries[0].at <= first.entries[-1].at


def test_a_timeline_page_costs_the_same_queries_for_a_small_or_a_large_customer(manager):
    small, large = populate(2, manager=manager)
    grow(small, times=1)
    grow(large, times=30)

    def queries(customer) -> int:
        with CaptureQueriesContext(connection) as captured:
            page = customer_audit(customer, page_size=20)
            assert page.entries
        return len(captured)

    assert queries(small) == queries(large)


# --- The global log ------------------------------------------------------------------------


def log(user, **data):
    filterset = AuditLogFilter(data, user=user)
    assert filterset.is_valid(), filterset.form.errors
    return audit_log(filterset)


def test_the_log_filters_by_actor_record_type_customer_and_date(busy_customer, superuser):
    by_manager = log(superuser, actor="alice")
    assert {e.actor for e in by_manager.entries} == {"Alice"}
    assert "Contract Acme Corp · Growth · 75 seats changed" in headlines(by_manager)

    invoices = log(superuser, model="billing.invoice")
    assert headlines(invoices) == ["Invoice INV-1 paid", "Invoice INV-1 recorded"]

    globex = log(superuser, customer="globex-1")
    assert [e.record.text for e in globex.entries] == ["Globex's own trouble", "Globex"]

    tickets_of_acme = log(superuser, customer="Acme", model="support.ticketcomment")
    ticket = Ticket.objects.get(subject="SSO broken")
    assert headlines(tickets_of_acme) == [f"Ticket comment Internal note on {ticket.pk} written"]

    week = log(superuser, since="2031-03-10", until="2031-03-12")
    assert {e.at.date().isoformat() for e in week.entries} == {
        "2031-03-10",  # reassigned
        "2031-03-11",  # the tickets
        "2031-03-12",  # the case raised
    }


def test_the_log_lists_only_the_record_types_the_person_may_view(busy_customer, agent):
    choices = [key for key, _ in AuditLogFilter(user=agent).form.fields["model"].choices]
    assert choices.count("") == 1  # one "Any"
    assert "support.ticket" in choices
    assert "auth.user" not in choices
    assert AuditLogFilter({"model": "billing.reconciliationrun"}, user=agent).is_valid() == (
        agent.has_perm("billing.view_reconciliationrun")
    )


def test_a_log_page_costs_the_same_queries_for_few_or_many_rows(manager, superuser):
    """The cost depends on the record types on the page, not on how many rows match:
    the same filters over 3 or 60 rows of each cost the same."""
    small, large = populate(2, manager=manager)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            for model in ("support.ticket", "customers.entitlement", "support.case"):
                assert log(superuser, model=model, actor="test:grow", customer="").entries
        return len(captured)

    grow(small, times=3)
    few = queries()
    grow(large, times=60)
    assert queries() == few


def test_the_log_page_and_its_filters_in_the_admin(client, busy_customer, agent):
    client.force_login(agent)
    url = reverse("admin:customers_customer_audit_log")

    response = client.get(url, {"actor": "olga", "model": "customers.entitlement"})
    assert response.status_code == 200
    page = response.context["trace"]
    assert headlines(page) == [
        "Entitlement SEAT-0001 revoked",
        "Entitlement SEAT-0001 reassigned",
        "Entitlement SEAT-0001 assigned",
    ]
    assert b"left the company" in response.content

    wrong = client.get(url, {"since": "the ides of March", "model": "no.such"})
    assert wrong.status_code == 200
    assert wrong.context["trace"] is None
    message = str(next(iter(wrong.context["messages"])))
    assert "Some filters were not understood" in message
    assert "Enter a valid date" in message


# --- CSV export ----------------------------------------------------------------------------


def test_the_export_streams_the_filtered_log_as_csv(client, busy_customer, agent):
    client.force_login(agent)
    url = reverse("admin:customers_customer_audit_log_csv")

    response = client.get(url, {"customer": "Acme", "model": "customers.entitlement"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "when",
        "actor",
        "record type",
        "record id",
        "record",
        "event",
        "changes",
        "reason",
        "done for",
    ]
    assert [(r[1], r[4], r[5], r[7]) for r in rows[1:]] == [
        ("Olga", "SEAT-0001", "revoked", "left the company"),
        ("Olga", "SEAT-0001", "reassigned", "Ann moved team"),
        ("Olga", "SEAT-0001", "assigned", "new hire"),
        ("webhook:msg_order", "SEAT-0001", "issued", ""),
    ]
    assert rows[1][0] == "2031-03-20T12:00:00+00:00"
    assert "state: Assigned → Revoked" in rows[1][6]


def test_the_export_refuses_filters_it_does_not_understand(client, agent):
    client.force_login(agent)
    response = client.get(reverse("admin:customers_customer_audit_log_csv"), {"until": "soon"})
    assert response.status_code == 400
    assert b"Enter a valid date" in response.content


def test_the_export_reads_rows_a_chunk_at_a_time(customer, product, ops_lead):
    for k in range(7):
        issue(customer, product, f"SEAT-1{k:03}", on(1 + k))
    source = [Entitlement.history.filter(customer_id=customer.pk)]

    entries = stream(source, chunk=3)
    with CaptureQueriesContext(connection) as first:
        newest = next(entries)
    with CaptureQueriesContext(connection) as rest:
        remaining = list(entries)

    assert newest.record.text == "SEAT-1006"
    assert [e.record.text for e in remaining] == [f"SEAT-1{k:03}" for k in range(5, -1, -1)]
    # The first entry needs the cursor and one chunk's lookups; the other six entries
    # are read in two more chunks of at most three rows, each with the same lookups.
    lookups = len(first) - 1
    assert len(rest) == 2 * lookups


# --- As of a date --------------------------------------------------------------------------


def holders(as_of) -> list[tuple[str, str, str]]:
    return [(r.code, r.state, r.assignee_email) for r in as_of.entitlements]


def test_who_held_the_seat_on_a_date(seat, customer):
    assert holders(customer_as_of(customer, dt.date(2031, 2, 27))) == []
    assert holders(customer_as_of(customer, dt.date(2031, 2, 28))) == [("SEAT-0001", "issued", "")]
    assert holders(customer_as_of(customer, dt.date(2031, 3, 1))) == [
        ("SEAT-0001", "assigned", "ann@acme.com")
    ]
    assert holders(customer_as_of(customer, dt.date(2031, 3, 9))) == [
        ("SEAT-0001", "assigned", "ann@acme.com")
    ]
    assert holders(customer_as_of(customer, dt.date(2031, 3, 10))) == [
        ("SEAT-0001", "assigned", "bob@acme.com")
    ]
    assert holders(customer_as_of(customer, dt.date(2031, 3, 25))) == [
        ("SEAT-0001", "revoked", "bob@acme.com")
    ]


def test_contracts_as_they_were_on_a_date(customer, manager):
    contract = customer.contracts.get()
    grow_seats(contract, 75, on(5), manager, "upsell")
    grow_seats(contract, 90, on(15), manager, "second upsell")

    def seats(date):
        return [(r.id, r.seats) for r in customer_as_of(customer, date).contracts]

    assert seats(dt.date(2031, 3, 4)) == [(contract.pk, 50)]
    assert seats(dt.date(2031, 3, 5)) == [(contract.pk, 75)]
    assert seats(dt.date(2031, 3, 31)) == [(contract.pk, 90)]


def test_a_seat_moved_away_belongs_to_its_new_customer_from_the_move_on(
    customer, globex, product, ops_lead
):
    moved = issue(customer, product, "SEAT-0003", on(2))
    with time_machine.travel(on(6), tick=False), acting_as_user(ops_lead):
        entitlements_transfer(entitlements=[moved], target=globex, reason="wrong account")

    assert holders(customer_as_of(customer, dt.date(2031, 3, 5))) == [("SEAT-0003", "issued", "")]
    assert holders(customer_as_of(customer, dt.date(2031, 3, 6))) == []
    assert holders(customer_as_of(globex, dt.date(2031, 3, 5))) == []
    assert holders(customer_as_of(globex, dt.date(2031, 3, 6))) == [("SEAT-0003", "issued", "")]


def test_the_as_of_view_costs_the_same_queries_whatever_the_history(manager):
    small, large = populate(2, manager=manager)
    grow(large, times=30)

    def queries(customer) -> int:
        with CaptureQueriesContext(connection) as captured:
            customer_as_of(customer, dt.date.today())
        return len(captured)

    assert queries(small) == queries(large) == 2


def test_the_as_of_page_names_who_last_changed_each_row(client, seat, customer, agent, manager):
    manager.last_name = "Martin"
    manager.save(update_fields=["last_name"])
    grow_seats(customer.contracts.get(), 75, on(5), manager, "upsell")
    client.force_login(agent)

    response = client.get(
        reverse("admin:customers_customer_as_of", args=[customer.pk]), {"date": "2031-03-12"}
    )

    page = BeautifulSoup(response.content, "html.parser")
    last_changed = [
        " ".join(row.select("td")[-1].get_text().split())
        for row in page.select('[data-testid="as-of-contract"], [data-testid="as-of-entitlement"]')
    ]
    assert last_changed == [
        "5 Mar 2031 12:00 by Alice Martin",
        "10 Mar 2031 12:00 by Olga · Ann moved team",
    ]


def test_the_as_of_page_answers_and_explains_a_bad_date(client, seat, customer, agent):
    client.force_login(agent)
    url = reverse("admin:customers_customer_as_of", args=[customer.pk])

    response = client.get(url, {"date": "2031-03-01"})
    assert response.status_code == 200
    assert b"ann@acme.com" in response.content
    assert b"bob@acme.com" not in response.content

    wrong = client.get(url, {"date": "2031-02-30"})
    assert wrong.status_code == 200
    assert "is not a date" in str(next(iter(wrong.context["messages"])))


def test_audit_pages_are_for_staff_who_may_view_customers(client, customer, outsider):
    pages = [
        reverse("admin:customers_customer_audit", args=[customer.pk]),
        reverse("admin:customers_customer_as_of", args=[customer.pk]),
        reverse("admin:customers_customer_audit_log"),
        reverse("admin:customers_customer_audit_log_csv"),
    ]
    for url in pages:
        assert client.get(url).status_code == 302  # to the login page
    outsider.is_staff = True
    outsider.save()
    client.force_login(outsider)
    for url in pages:
        assert client.get(url).status_code == 403
