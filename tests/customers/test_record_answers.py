"""The answers at the top of the entitlement, order and contract pages
(customers.answers, opsdesk.record_pages): does the person have access and why not, with
the contract, the replacement and the open case linked; what happened to an order and why
it failed, with its case; who changed a contract's seats, when, from what and why."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from bs4 import BeautifulSoup
from django.urls import reverse

from audit.context import acting_as, acting_as_user
from customers.answers import (
    contract_seat_changes,
    entitlement_access,
    order_outcome,
    seat_changes_latest,
)
from customers.entitlements import (
    entitlement_assign,
    entitlement_redeem,
    entitlement_replace,
    entitlement_revoke,
    entitlements_expire,
    entitlements_issue,
)
from customers.models import Contract, Entitlement, Order, Product
from customers.orders import order_fulfil, order_record_refund
from support.cases import case_dedupe_key, case_open
from support.models import Case
from tests import builders
from tests.support.sender import deliver, order_completed

pytestmark = pytest.mark.django_db

DAY = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return DAY.replace(day=day, hour=hour, minute=minute)


@pytest.fixture
def named(ops_lead, manager):
    """Olga and Alice with their surnames: the answers name people by their full name
    (kit.people), never by their usernames ("olga", "alice")."""
    for user, last_name in ((ops_lead, "Nilsen"), (manager, "Martin")):
        user.last_name = last_name
        user.save(update_fields=["last_name"])


@pytest.fixture
def product(db) -> Product:
    with acting_as("test:fixture"):
        return builders.product(sku="SEAT-PRO-1Y", name="Pro seat", term_days=365)


@pytest.fixture
def seat(customer, product) -> Entitlement:
    """One Pro seat of Acme from order ord_1, issued on 2 Mar 2026 at 08:00."""
    with time_machine.travel(at(2, 8), tick=False), acting_as("webhook:msg_order"):
        order = builders.order(
            external_id="ord_1",
            customer=customer,
            product=product,
            paid_at=at(2, 7),
            fulfilment=Order.Fulfilment.FULFILLED,
        )
        [seat] = entitlements_issue(
            order=order, product=product, customer=customer, quantity=1, reason="order fulfilled"
        )
    return seat


def assign(seat, ops_lead, email="ann@acme.com"):
    with time_machine.travel(at(3, 9), tick=False), acting_as_user(ops_lead):
        entitlement_assign(entitlement=seat, email=email, reason="new hire", by=ops_lead)


def redeem(seat, email="ann@acme.com"):
    with time_machine.travel(at(3, 10), tick=False), acting_as("webhook:msg_redeem"):
        entitlement_redeem(entitlement=seat, email=email, at=at(3, 10), reason="redeemed")


def revoke(seat, ops_lead, reason="Ann left the company"):
    with time_machine.travel(at(5, 14, 30), tick=False), acting_as_user(ops_lead):
        entitlement_revoke(entitlement=seat, reason=reason, by=ops_lead)


def answer(client, user, url: str) -> BeautifulSoup:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    [section] = BeautifulSoup(response.content, "lxml").select('[data-testid="answer"]')
    return section


def text(section, testid: str) -> str:
    return " ".join(section.select_one(f'[data-testid="{testid}"]').get_text().split())


def links(section, testid: str) -> list[tuple[str, str]]:
    return [
        (" ".join(a.get_text().split()), a["href"])
        for a in section.select_one(f'[data-testid="{testid}"]').find_all("a")
    ]


def entitlement_url(entitlement) -> str:
    return reverse("admin:customers_entitlement_change", args=[entitlement.pk])


def contract_link(customer) -> tuple[str, str]:
    contract = customer.contracts.get()
    return (
        "Growth, 50 seats, 1 Jan 2026 to 31 Dec 2026, active",
        reverse("admin:customers_contract_change", args=[contract.pk]),
    )


# --- (a) Does the person have access, and if not why -------------------------------------


def test_a_redeemed_seat_says_who_has_access_since_when_until_when(
    client, agent, seat, ops_lead, customer
):
    assign(seat, ops_lead)
    redeem(seat)

    with time_machine.travel(at(10, 12), tick=False):
        section = answer(client, agent, entitlement_url(seat))

    assert text(section, "answer-headline") == "Has access"
    assert text(section, "answer-why") == (
        "Redeemed by ann@acme.com on 3 Mar 2026 10:00 UTC, valid until 2 Mar 2027."
    )
    assert text(section, "answer-person") == "ann@acme.com at Acme Corp, Pro seat"
    assert links(section, "answer-contract") == [contract_link(customer)]
    assert text(section, "answer-cases") == "None open."


def test_an_assigned_seat_says_it_was_never_redeemed(client, agent, seat, ops_lead):
    assign(seat, ops_lead)

    section = answer(client, agent, entitlement_url(seat))

    assert text(section, "answer-headline") == "No access yet"
    assert text(section, "answer-why") == (
        "Assigned to ann@acme.com on 3 Mar 2026 09:00 UTC, never redeemed: they have not "
        f"used the code {seat.code} yet (valid until 2 Mar 2027)."
    )


def test_an_issued_seat_says_nobody_has_its_code(client, agent, seat):
    section = answer(client, agent, entitlement_url(seat))

    assert text(section, "answer-headline") == "No access yet"
    assert text(section, "answer-why") == (
        "Issued on 2 Mar 2026 08:00 UTC, never assigned or redeemed: nobody has the code "
        f"{seat.code} yet (valid until 2 Mar 2027)."
    )
    assert text(section, "answer-person") == "nobody yet at Acme Corp, Pro seat"


def test_a_revoked_seat_says_when_by_whom_and_why(client, agent, seat, ops_lead, named):
    assign(seat, ops_lead)
    revoke(seat, ops_lead)

    section = answer(client, agent, entitlement_url(seat))

    assert text(section, "answer-headline") == "No access"
    assert text(section, "answer-why") == (
        "Revoked on 5 Mar 2026 14:30 UTC by Olga Nilsen, because: Ann left the company"
    )
    assert section.select('[data-testid="answer-replacement"]') == []


def test_a_revoked_and_reissued_seat_links_to_its_replacement(client, agent, seat, ops_lead, named):
    assign(seat, ops_lead)
    with time_machine.travel(at(5, 14, 30), tick=False), acting_as_user(ops_lead):
        new = entitlement_replace(entitlement=seat, reason="Code leaked", by=ops_lead)

    section = answer(client, agent, entitlement_url(seat))

    assert text(section, "answer-why") == (
        "Revoked on 5 Mar 2026 14:30 UTC by Olga Nilsen, because: Code leaked"
    )
    assert text(section, "answer-replacement") == f"{new.code}, assigned (ann@acme.com)"
    assert links(section, "answer-replacement") == [(new.code, entitlement_url(new))]
    # The replacement is not itself replaced: it has access to give.
    assert entitlement_access(entitlement=new).replacement is None


def test_an_expired_seat_says_when_its_term_ended(client, agent, seat, ops_lead):
    assign(seat, ops_lead)
    redeem(seat)
    with acting_as("task:entitlements_expire"):
        entitlements_expire(today=dt.date(2027, 3, 3))

    section = answer(client, agent, entitlement_url(seat))

    assert text(section, "answer-headline") == "No access"
    assert text(section, "answer-why") == "Expired: its term ended on 2 Mar 2027."


def test_a_redeemed_seat_past_its_end_has_no_access_before_the_sweep_marks_it(seat, ops_lead):
    assign(seat, ops_lead)
    redeem(seat)

    told = entitlement_access(entitlement=seat, today=dt.date(2027, 3, 3))

    assert (told.has_access, told.headline) == (False, "No access")
    assert told.why == (
        "Expired: its term ended on 2 Mar 2027. It was redeemed by ann@acme.com on "
        "3 Mar 2026 10:00 UTC."
    )


def test_the_contract_is_the_one_that_ran_when_the_seat_started(seat, customer):
    with acting_as("test:fixture"):
        later = builders.contract(customer=customer, seats=80, start_date=dt.date(2027, 1, 1))

    told = entitlement_access(entitlement=seat)
    assert (told.contract, told.contract_ran_then) == (customer.contracts.get(seats=50), True)

    with acting_as("test:fixture"):
        customer.contracts.filter(seats=50).get().delete()
    told = entitlement_access(entitlement=seat)
    assert (told.contract, told.contract_ran_then) == (later, False)


def test_a_seat_outside_any_contract_says_the_current_one_is_shown(client, agent, seat, customer):
    with acting_as("test:fixture"):
        contract = customer.contracts.get()
        contract.start_date = dt.date(2026, 6, 1)
        contract.save()

    section = answer(client, agent, entitlement_url(seat))

    assert text(section, "answer-contract") == (
        "Growth, 50 seats, 1 Jun 2026 to 31 Dec 2026, active (the current one: none ran "
        "when the seat started, 2 Mar 2026)"
    )


def test_the_open_case_of_a_redemption_is_linked_with_its_owner_and_age(
    client, agent, seat, ops_lead, customer
):
    assign(seat, ops_lead)
    with time_machine.travel(at(4, 9), tick=False), acting_as("webhook:msg_bad"):
        case = case_open(
            kind=Case.Kind.PROBLEM_REDEMPTION,
            customer=customer,
            subject=seat,
            summary=f"Code {seat.code} redeemed by bo@acme.com: not the assignee",
            dedupe_key=case_dedupe_key(Case.Kind.PROBLEM_REDEMPTION, "entitlement", seat.code),
            owner=ops_lead,
        )
        builders.case(  # closed: not shown
            kind=Case.Kind.PROBLEM_REDEMPTION,
            subject_type=case.subject_type,
            subject_id=str(seat.pk),
            state=Case.State.RESOLVED,
        )

    with time_machine.travel(at(7, 9), tick=False):
        section = answer(client, agent, entitlement_url(seat))

    assert text(section, "answer-cases") == (
        f"Case #{case.pk}, problem redemption: Code {seat.code} redeemed by bo@acme.com: "
        "not the assignee · Open · opened 3 days ago · owner Olga"
    )
    assert links(section, "answer-cases") == [
        (f"Case #{case.pk}", reverse("admin:support_case_change", args=[case.pk]))
    ]


def test_the_entitlement_page_escapes_what_people_typed(client, agent, seat, ops_lead):
    revoke(seat, ops_lead, reason="<script>alert(1)</script>")

    client.force_login(agent)
    content = client.get(entitlement_url(seat)).content.decode()

    assert "<script>alert(1)</script>" not in content
    assert "because: &lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_the_entitlement_page_costs_the_same_for_a_short_or_long_history(
    client, agent, seat, ops_lead, customer, django_assert_num_queries
):
    assign(seat, ops_lead)
    revoke(seat, ops_lead)
    client.force_login(agent)
    url = entitlement_url(seat)
    client.get(url)  # content types and sessions cached

    with django_assert_num_queries(QUERIES_ENTITLEMENT):
        assert client.get(url).status_code == 200

    with acting_as("test:fixture"):  # 30 more history rows, a case and a replacement
        for n in range(30):
            seat.revoke_reason = f"reason {n}"
            seat.save()
        case_open(
            kind=Case.Kind.PROBLEM_REDEMPTION,
            customer=customer,
            subject=seat,
            summary="again",
            dedupe_key="again",
        )
        builders.entitlement(customer=customer, code="NEWC-ODE0-0001")
    with django_assert_num_queries(QUERIES_ENTITLEMENT):
        assert client.get(url).status_code == 200


QUERIES_ENTITLEMENT = 21


# --- (b) What happened to order O -------------------------------------------------------


def test_a_failed_order_says_why_from_the_product_event_and_links_its_case(client, agent):
    with time_machine.travel(dt.datetime(2026, 11, 21, 9, 30, 5, tzinfo=dt.UTC)):
        deliver(order_completed(tenant_id="nobody-9", order_id="ord_77"), webhook_id="msg_77")
    order = Order.objects.get(external_id="ord_77")
    case = Case.objects.get()

    section = answer(client, agent, reverse("admin:customers_order_change", args=[order.pk]))

    assert text(section, "answer-headline") == "Not fulfilled"
    assert text(section, "answer-why") == (
        "The product's order event could not be fulfilled: no customer with tenant id "
        "nobody-9. Nothing was issued; recorded on 21 Nov 2026 09:30 UTC."
    )
    assert text(section, "answer-failure") == "no customer with tenant id nobody-9"
    assert text(section, "answer-customer") == "unknown tenant nobody-9"
    assert links(section, "answer-cases") == [
        (f"Case #{case.pk}", reverse("admin:support_case_change", args=[case.pk]))
    ]
    assert text(section, "answer-cases").startswith(
        f"Case #{case.pk}, failed fulfilment: Order ord_77: no customer with tenant id "
        "nobody-9 · Open · opened"
    )


def test_an_order_fulfilled_by_hand_says_it_failed_first_and_who_fulfilled_it(
    client, agent, ops_lead, customer, product, named
):
    with time_machine.travel(dt.datetime(2026, 11, 21, 9, 30, 5, tzinfo=dt.UTC)):
        deliver(order_completed(sku="NOPE-1", order_id="ord_78"), webhook_id="msg_78")
    order = Order.objects.get(external_id="ord_78")
    with (
        time_machine.travel(dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC), tick=False),
        acting_as_user(ops_lead),
    ):
        order_fulfil(
            order=order,
            customer=customer,
            product=product,
            reason="SKU renamed; the Pro seat",
            by=ops_lead,
        )

    section = answer(client, agent, reverse("admin:customers_order_change", args=[order.pk]))

    assert text(section, "answer-headline") == "Fulfilled"
    assert text(section, "answer-why") == (
        "It had failed first: no product with SKU NOPE-1. 3 × Pro seat issued to Acme Corp "  # noqa: RUF001
        "on 22 Nov 2026 10:00 UTC by Olga Nilsen: SKU renamed; the Pro seat."
    )
    assert text(section, "answer-customer") == "Acme Corp"
    # Fulfilled outside the inbox: the case stays open until ops closes it there.
    assert text(section, "answer-cases").startswith(
        "Case #" + str(Case.objects.get().pk) + ", failed fulfilment: Order ord_78: no product "
        "with SKU NOPE-1 · Open · opened"
    )


def test_an_order_fulfilled_by_its_event_says_what_was_issued(seat):
    told = order_outcome(order=seat.order)

    assert (told.headline, told.failure) == ("Fulfilled", "")
    assert told.why == (
        "1 × Pro seat issued to Acme Corp on 2 Mar 2026 08:00 UTC by webhook:msg_order."  # noqa: RUF001
    )


def test_a_refunded_order_says_by_whom_with_the_reference(ops_lead, named):
    with time_machine.travel(dt.datetime(2026, 11, 21, 9, 30, 5, tzinfo=dt.UTC)):
        deliver(order_completed(tenant_id="nobody-9", order_id="ord_79"), webhook_id="msg_79")
    order = Order.objects.get(external_id="ord_79")
    with (
        time_machine.travel(dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC), tick=False),
        acting_as_user(ops_lead),
    ):
        order_record_refund(order=order, reference="CN-2026-11", reason="tenant gone", by=ops_lead)
    order.refresh_from_db()

    told = order_outcome(order=order)

    assert told.headline == "Refunded"
    assert told.why == (
        "It had failed first: no customer with tenant id nobody-9. Refunded (refund "
        "CN-2026-11) on 23 Nov 2026 08:00 UTC by Olga Nilsen, nothing issued: tenant gone."
    )


def test_the_order_page_costs_a_fixed_number_of_queries_whatever_its_history(
    client, agent, seat, django_assert_num_queries
):
    with time_machine.travel(dt.datetime(2026, 11, 21, 9, 30, 5, tzinfo=dt.UTC)):
        deliver(order_completed(tenant_id="nobody-9", order_id="ord_80"), webhook_id="msg_80")
    failed = Order.objects.get(external_id="ord_80")
    fulfilled = seat.order
    client.force_login(agent)
    client.get(reverse("admin:customers_order_change", args=[failed.pk]))

    # A failed order (its product known, its tenant not) with its open case.
    with django_assert_num_queries(12):
        client.get(reverse("admin:customers_order_change", args=[failed.pk]))
    # A fulfilled one: its customer, who fulfilled it and its entitlements' trace besides.
    with django_assert_num_queries(17):
        client.get(reverse("admin:customers_order_change", args=[fulfilled.pk]))
    with acting_as("test:fixture"):
        for n in range(20):
            fulfilled.refund_reference = f"note {n}"
            fulfilled.save()
    with django_assert_num_queries(17):
        response = client.get(reverse("admin:customers_order_change", args=[fulfilled.pk]))
    assert response.status_code == 200


# --- (c) Who changed contract C's seats and when ----------------------------------------


# After the fixtures (made at the real time), so the changes come after the creation.
LATER = dt.datetime(2030, 11, 21, tzinfo=dt.UTC)


def later(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return LATER.replace(day=day, hour=hour, minute=minute)


def change_seats(contract, seats: int, user, reason: str, when: dt.datetime) -> None:
    with time_machine.travel(when, tick=False), acting_as_user(user):
        contract.seats = seats
        contract._change_reason = reason
        contract.save()


def test_the_contract_page_lists_who_changed_the_seats_when_from_what_and_why(
    client, agent, manager, customer, named
):
    contract = customer.contracts.get()
    change_seats(contract, 60, manager, "Hired a support team", later(4, 9))
    with time_machine.travel(later(5, 9), tick=False), acting_as_user(manager):
        contract.monthly_fee = 1500  # not a seat change: not listed
        contract.save()
    change_seats(contract, 55, manager, "", later(6, 16, 45))

    client.force_login(agent)
    response = client.get(reverse("admin:customers_contract_change", args=[contract.pk]))
    [section] = BeautifulSoup(response.content, "lxml").select('[data-testid="seat-changes"]')
    rows = [" ".join(li.get_text().split()) for li in section.select('[data-testid="seat-change"]')]

    created = contract.history.earliest("history_date").history_date
    assert rows == [
        "60 → 55 seats by Alice Martin on 6 Nov 2030 16:45",
        "50 → 60 seats by Alice Martin on 4 Nov 2030 09:00 Hired a support team",
        f"50 seats when the contract was created by test:fixture on {created:%-d %b %Y %H:%M}",
    ]
    assert section.select('[data-testid="seat-changes-more"]') == []


def test_the_seat_changes_show_the_latest_ten_and_point_to_the_history(
    client, agent, manager, customer, django_assert_num_queries
):
    contract = customer.contracts.get()
    client.force_login(agent)
    url = reverse("admin:customers_contract_change", args=[contract.pk])
    client.get(url)
    with django_assert_num_queries(QUERIES_CONTRACT):
        client.get(url)

    for n in range(12):
        change_seats(contract, 51 + n, manager, f"step {n}", later(4, 9) + dt.timedelta(hours=n))

    told = contract_seat_changes(contract=contract)
    assert [(c.old, c.new, c.reason) for c in told.changes] == [
        (50 + n, 51 + n, f"step {n}") for n in range(11, 1, -1)
    ]
    assert told.more is True
    with django_assert_num_queries(QUERIES_CONTRACT):
        response = client.get(url)
    assert b'data-testid="seat-changes-more"' in response.content
    assert response.content.count(b'data-testid="seat-change"') == 10


QUERIES_CONTRACT = 7


def test_the_customer_pages_contract_rows_say_who_changed_the_seats_last(
    client, agent, manager, customer, named
):
    contract = customer.contracts.get()
    change_seats(contract, 60, manager, "Hired a support team", later(4, 9))
    change_seats(contract, 55, manager, "", later(6, 16, 45))
    with acting_as("test:fixture"):
        untouched = builders.contract(customer=customer, start_date=dt.date(2025, 1, 1))
    client.force_login(agent)
    response = client.get(reverse("admin:customers_customer_change", args=[customer.pk]))

    [section] = BeautifulSoup(response.content, "lxml").select('[data-testid="overview-contracts"]')
    url = reverse("admin:customers_contract_change", args=[contract.pk])
    assert [
        (" ".join(a.get_text().split()), a["href"])
        for a in section.select('[data-testid="last-seat-change"]')
    ] == [("60 → 55 by Alice Martin, 6 Nov 2030", f"{url}#seat-changes")]
    assert reverse("admin:customers_contract_change", args=[untouched.pk]) in [
        a["href"] for a in section.find_all("a")
    ]


def test_contract_seat_changes_is_one_query(customer, manager, django_assert_num_queries):
    contract = customer.contracts.get()
    for n in range(3):
        change_seats(contract, 40 + n, manager, "", later(4, 9 + n))
    with django_assert_num_queries(1):
        told = contract_seat_changes(contract=contract)
    assert [(c.old, c.new) for c in told.changes] == [(41, 42), (40, 41), (50, 40), (None, 50)]
    assert Contract.history.filter(id=contract.pk).count() == 4


def test_the_latest_seat_change_of_each_contract_is_one_query(
    customer, manager, named, django_assert_num_queries
):
    contract = customer.contracts.get()
    change_seats(contract, 60, manager, "Hired a support team", later(4, 9))
    with acting_as("test:fixture"):
        untouched = builders.contract(customer=customer, start_date=dt.date(2025, 1, 1))

    with django_assert_num_queries(1):
        latest = seat_changes_latest(contract_ids=[contract.pk, untouched.pk])

    assert list(latest) == [contract.pk]
    change = latest[contract.pk]
    assert (change.old, change.new, change.actor, change.reason, change.at) == (
        50,
        60,
        "Alice Martin",
        "Hired a support team",
        later(4, 9),
    )
