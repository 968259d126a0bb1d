"""audit.timeline: history rows of any models merged newest first, each a readable diff,
bulk operations as one entry, paged at a fixed number of queries."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from audit.bulk import bulk_update_with_history, update_with_history
from audit.context import acting_as, acting_for
from audit.timeline import Change, Link, page_number, parse_record_label, timeline
from customers.models import Contact, Contract, Customer, Order
from tests import builders

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def lines(page) -> list[tuple]:
    return [(e.headline, e.actor, e.reason, e.changes) for e in page.entries]


@pytest.fixture
def acme(db) -> Customer:
    with time_machine.travel(at(0), tick=False), acting_as("test:fixture"):
        return builders.customer(external_id="acme", name="Acme Corp")


@pytest.fixture
def globex(db) -> Customer:
    with time_machine.travel(at(1), tick=False), acting_as("test:fixture"):
        return builders.customer(external_id="globex", name="Globex")


def contacts(customer, count: int, *, when: float = 10) -> list[Contact]:
    with time_machine.travel(at(when), tick=False), acting_as("test:fixture"):
        return [
            builders.contact(customer=customer, name=f"P{n}", email=f"p{n}@acme.com")
            for n in range(count)
        ]


def history(*models):
    return [model.history.all() for model in models]


# --- Diffs ----------------------------------------------------------------------------


def test_a_change_reads_as_labels_names_and_dates_not_raw_values(acme, globex):
    with time_machine.travel(at(10), tick=False), acting_as("test:fixture"):
        contract = builders.contract(
            customer=acme,
            seats=50,
            monthly_fee=Decimal("1450.00"),
            price_per_extra_seat=Decimal("25.00"),
            status=Contract.Status.DRAFT,
            integrations=["sso"],
        )
    with time_machine.travel(at(3600), tick=False), acting_as("alice", reason="renewed bigger"):
        contract.customer = globex
        contract.plan = Contract.Plan.ENTERPRISE
        contract.seats = 75
        contract.end_date = dt.date(2027, 6, 30)
        contract.integrations = ["sso", "warehouse"]
        contract.save()

    page = timeline([Contract.history.filter(id=contract.pk)])

    assert lines(page) == [
        (
            "Contract Globex · Enterprise · 75 seats changed",
            "alice",
            "renewed bigger",
            (
                Change("customer", "Acme Corp", "Globex"),
                Change("plan", "Growth", "Enterprise"),
                Change("seats", "50", "75"),
                Change("end date", "—", "30 Jun 2027"),
                Change("integrations", "Single sign-on", "Single sign-on, Data warehouse export"),
            ),
        ),
        ("Contract Acme Corp · Growth · 50 seats created", "test:fixture", "", ()),
    ]
    assert page.entries[0].at == at(3600)
    assert page.entries[0].record.url == f"/admin/customers/contract/{contract.pk}/change/"


def test_booleans_read_yes_and_no_and_the_first_row_has_no_diff(acme):
    [pat] = contacts(acme, 1)
    with time_machine.travel(at(20), tick=False), acting_as("alice"):
        pat.is_primary = True
        pat.role = Contact.Role.BILLING
        pat.save()

    assert [e.changes for e in timeline(history(Contact)).entries] == [
        (Change("role", "User", "Billing"), Change("is primary", "no", "yes")),
        (),
    ]


def test_moments_that_read_the_same_to_the_minute_show_their_seconds(acme):
    with time_machine.travel(at(0), tick=False), acting_as("test:fixture"):
        order = builders.order(
            external_id="ord_1", customer=acme, sku="SEAT", amount=Decimal("10.00"), paid_at=at(0)
        )
    with time_machine.travel(at(60), tick=False), acting_as("alice"):
        order.paid_at = at(5)
        order.save()

    [entry, _] = timeline([Order.history.all()]).entries
    assert entry.changes == (Change("paid at", "21 Nov 2026 09:00:00", "21 Nov 2026 09:00:05"),)


def test_the_row_before_is_found_even_when_it_is_outside_the_sources(acme):
    [pat] = contacts(acme, 1)
    for n, name in enumerate(["Pat", "Patricia", "Trish"], start=1):
        with time_machine.travel(at(100 * n), tick=False), acting_as("alice"):
            pat.name = name
            pat.save()

    # Only the last row selected: it still diffs against the one before it.
    page = timeline([Contact.history.filter(name="Trish")])
    assert lines(page) == [
        ("Contact Trish <p0@acme.com> changed", "alice", "", (Change("name", "Patricia", "Trish"),))
    ]


# --- Who, why, what for -----------------------------------------------------------------


def test_an_entry_names_the_case_it_was_done_for_with_a_link(acme):
    [pat] = contacts(acme, 1)
    with acting_as("test:fixture"):
        case = builders.case(customer=acme, summary="x")
    with (
        time_machine.travel(at(60), tick=False),
        acting_as("olga", reason="as asked"),
        acting_for(case),
    ):
        pat.name = "Pat"
        pat.save()

    [entry, created] = timeline(history(Contact)).entries
    assert entry.done_for == Link(
        ref=f"support.case:{case.pk}",
        text=f"Case #{case.pk}",
        url=f"/admin/support/case/{case.pk}/change/",
    )
    assert (entry.actor, entry.reason) == ("olga", "as asked")
    assert created.done_for is None


def test_a_record_label_of_an_unknown_model_reads_as_it_is_without_a_link():
    assert parse_record_label("support.ticket:5") == Link(
        "support.ticket:5", "Ticket #5", "/admin/support/ticket/5/change/"
    )
    assert parse_record_label("nowhere.thing:3") == Link("nowhere.thing:3", "nowhere.thing:3", "")
    assert parse_record_label("") is None


# --- Merging and bulk operations --------------------------------------------------------


def test_several_sources_merge_newest_first_and_the_subject_reads_without_its_name(acme):
    contacts(acme, 1, when=10)
    with time_machine.travel(at(30), tick=False), acting_as("alice"):
        acme.status = Customer.Status.ACTIVE
        acme.save()

    page = timeline(history(Customer, Contact), subject=acme)

    assert [(e.headline, e.at) for e in page.entries] == [
        ("Changed", at(30)),
        ("Contact P0 <p0@acme.com> created", at(10)),
        ("Created", at(0)),
    ]
    assert page.entries[0].changes == (Change("status", "Onboarding", "Active"),)


def test_one_bulk_change_reads_as_one_entry_with_its_count(acme, globex):
    contacts(acme, 3)
    with acting_as("olga", reason="merged accounts"):
        assert update_with_history(Contact.objects.all(), customer_id=globex.pk) == 3

    [moved, created] = timeline(history(Contact)).entries

    assert (moved.headline, moved.actor, moved.reason, moved.changes) == (
        "3 contacts changed",
        "olga",
        "merged accounts",
        (Change("customer", "Acme Corp", "Globex"),),
    )
    assert created.headline == "3 contacts created"
    # Each contact's own timeline still shows its row.
    [one] = Contact.objects.all()[:1]
    assert lines(timeline([Contact.history.filter(id=one.pk)], subject=one))[0] == (
        "Changed",
        "olga",
        "merged accounts",
        (Change("customer", "Acme Corp", "Globex"),),
    )


def test_a_bulk_that_straddles_a_second_is_still_one_entry(acme, globex):
    people = contacts(acme, 4)
    # audit.bulk stamps each row with its own now(): microseconds apart, across a second.
    for n, person in enumerate(people):
        person.customer = globex
        person._history_date = at(59.7) + dt.timedelta(milliseconds=200 * n)
    with acting_as("olga", reason="merged accounts"):
        bulk_update_with_history(people, Contact, ["customer"])

    [moved, _] = timeline(history(Contact)).entries
    assert (moved.headline, moved.at) == ("4 contacts changed", at(60.3))


def test_rows_more_than_a_second_apart_are_separate_entries(acme, globex):
    people = contacts(acme, 2)
    for n, person in enumerate(people):
        person.customer = globex
        person._history_date = at(60 + 1.5 * n)
    with acting_as("olga", reason="merged accounts"):
        bulk_update_with_history(people, Contact, ["customer"])

    headlines = [e.headline for e in timeline(history(Contact)).entries]
    assert headlines == [
        "Contact P1 <p1@acme.com> changed",
        "Contact P0 <p0@acme.com> changed",
        "2 contacts created",
    ]


def test_a_bulk_whose_rows_changed_different_things_splits_by_change(acme, globex):
    people = contacts(acme, 3)
    people[0].role = Contact.Role.ADMIN
    with time_machine.travel(at(20), tick=False), acting_as("test:fixture"):
        people[0].save()
    with time_machine.travel(at(60), tick=False), acting_as("olga", reason="tidy up"):
        update_with_history(Contact.objects.all(), role=Contact.Role.BILLING)

    entries = timeline(history(Contact)).entries

    assert [(e.headline, e.actor, e.changes) for e in entries[:2]] == [
        ("2 contacts changed", "olga", (Change("role", "User", "Billing"),)),
        ("Contact P0 <p0@acme.com> changed", "olga", (Change("role", "Admin", "Billing"),)),
    ]


def test_different_actors_or_reasons_are_never_collapsed(acme):
    people = contacts(acme, 2)
    with time_machine.travel(at(60), tick=False):
        for person, actor in zip(people, ["alice", "bob"], strict=True):
            with acting_as(actor, reason="fix"):
                person.name = "Same"
                person.save()

    assert [(e.headline, e.actor) for e in timeline(history(Contact)).entries[:2]] == [
        ("Contact Same <p1@acme.com> changed", "bob"),
        ("Contact Same <p0@acme.com> changed", "alice"),
    ]


def test_collapse_off_shows_every_row(acme, globex):
    contacts(acme, 3)
    assert [e.headline for e in timeline(history(Contact), collapse=False).entries] == [
        "Contact P2 <p2@acme.com> created",
        "Contact P1 <p1@acme.com> created",
        "Contact P0 <p0@acme.com> created",
    ]


def test_a_verb_callback_names_what_a_row_did(acme):
    [pat] = contacts(acme, 1)
    with time_machine.travel(at(60), tick=False), acting_as("alice"):
        pat.is_primary = True
        pat.save()

    def contact_verb(step):
        if step.previous is None:
            return "added"
        return "made primary" if step.went("is_primary") == (False, True) else "changed"

    page = timeline(history(Contact), verbs={Contact: contact_verb})
    assert [e.headline for e in page.entries] == [
        "Contact P0 <p0@acme.com> made primary",
        "Contact P0 <p0@acme.com> added",
    ]


# --- Pages ------------------------------------------------------------------------------


def test_pages_hold_page_size_entries_and_know_whether_there_is_a_next(acme):
    [pat] = contacts(acme, 1)
    for n in range(4):
        with time_machine.travel(at(100 * (n + 1)), tick=False), acting_as(f"user{n}"):
            pat.name = f"Name {n}"
            pat.save()
    sources = history(Contact)

    first = timeline(sources, page=1, page_size=2)
    second = timeline(sources, page=2, page_size=2)
    third = timeline(sources, page=3, page_size=2)
    beyond = timeline(sources, page=9, page_size=2)

    assert [e.actor for e in first.entries] == ["user3", "user2"]
    assert (first.has_previous, first.has_next) == (False, True)
    assert [e.actor for e in second.entries] == ["user1", "user0"]
    assert (second.has_previous, second.has_next, second.next_page_number) == (True, True, 3)
    assert [e.actor for e in third.entries] == ["test:fixture"]
    assert third.has_next is False
    assert beyond.entries == [] and beyond.has_next is False


@pytest.mark.parametrize(("value", "number"), [("3", 3), (None, 1), ("x", 1), ("0", 1), ("-2", 1)])
def test_a_page_number_from_the_query_string_is_a_positive_integer_or_1(value, number):
    assert page_number(value) == number


@pytest.mark.parametrize("count", [2, 20])
def test_a_page_costs_the_same_number_of_queries_whatever_the_rows(
    acme, globex, count, django_assert_num_queries
):
    people = contacts(acme, count)
    for person in people:
        with acting_as("alice", reason=f"fix {person.pk}"):  # no collapsing: one entry each
            person.customer = globex
            person.save()
    sources = history(Customer, Contact)

    # A group query per source, the rows (with the ones before them) per model on the
    # page, one per related model named (Customer, for the contacts' customer).
    with django_assert_num_queries(2 + 2 + 1):
        page = timeline(sources)
    assert [e.count for e in page.entries] == [1] * count + [count, 2]
