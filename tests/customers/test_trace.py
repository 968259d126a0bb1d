"""The trace of an entitlement, an order and a customer: each step of the state machine
with its actor, reason, case and diff, account migrations as one entry, on the admin."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.bulk import copy_with_history
from audit.context import acting_as, acting_as_user, acting_for
from audit.timeline import Change
from customers.entitlements import (
    entitlement_assign,
    entitlement_reassign,
    entitlement_redeem,
    entitlement_reissue_code,
    entitlement_revoke,
    entitlements_expire,
    entitlements_issue,
    entitlements_transfer,
)
from customers.models import Customer, Entitlement, Order, Product
from customers.trace import customer_trace, entitlement_trace, order_trace
from opsdesk.account_migration.services import account_migrate
from support.models import Case
from tests import builders

pytestmark = pytest.mark.django_db

# After the fixtures (made at the real time), so the steps come after them.
DAY = dt.datetime(2030, 11, 21, tzinfo=dt.UTC)
MIGRATION = "Acme bought Globex; one account from now on"


def at(hour: int, minute: int = 0) -> dt.datetime:
    return DAY.replace(hour=hour, minute=minute)


def lines(page) -> list[tuple]:
    return [
        (e.headline, e.actor, e.reason, e.changes, e.done_for.text if e.done_for else None)
        for e in page.entries
    ]


@pytest.fixture
def product(db) -> Product:
    with acting_as("test:fixture"):
        return builders.product(sku="SEAT-PRO-1Y", name="Pro seat", term_days=365)


@pytest.fixture
def globex(db) -> Customer:
    with acting_as("test:fixture"):
        return builders.customer(external_id="globex-1", name="Globex")


@pytest.fixture
def order(customer, product) -> Order:
    with time_machine.travel(at(8), tick=False), acting_as("webhook:msg_order"):
        return builders.order(
            external_id="ord_1",
            customer=customer,
            product=product,
            quantity=3,
            amount=Decimal("1200.00"),
            paid_at=at(7),
        )


@pytest.fixture
def case(customer) -> Case:
    with acting_as("test:fixture"):
        return builders.case(
            kind=Case.Kind.PROBLEM_REDEMPTION, customer=customer, summary="Wrong person"
        )


def fulfil(order, quantity: int = 1) -> list[Entitlement]:
    """What ``order.completed`` does: entitlements issued, the order marked fulfilled."""
    # Ticking: the order is marked fulfilled after its entitlements are issued.
    with time_machine.travel(at(8, 5)), acting_as("webhook:msg_order"):
        issued = entitlements_issue(
            order=order,
            product=order.product,
            customer=order.customer,
            quantity=quantity,
            reason="order ord_1 fulfilled",
        )
        order.fulfilment = Order.Fulfilment.FULFILLED
        order._change_reason = "order ord_1 fulfilled"
        order.save()
    return issued


def assigned(order, ops_lead) -> Entitlement:
    [entitlement] = fulfil(order)
    with time_machine.travel(at(9), tick=False), acting_as_user(ops_lead):
        entitlement_assign(
            entitlement=entitlement, email="ann@acme.com", reason="new hire", by=ops_lead
        )
    return entitlement


# --- An entitlement's trace -------------------------------------------------------------


def test_an_entitlements_trace_tells_each_step_with_actor_reason_case_and_diff(
    order, case, ops_lead
):
    [entitlement] = fulfil(order)
    with acting_as_user(ops_lead), acting_for(case):
        with time_machine.travel(at(9), tick=False):
            entitlement_assign(
                entitlement=entitlement, email="ann@acme.com", reason="new hire", by=ops_lead
            )
        with time_machine.travel(at(10), tick=False):
            entitlement_reassign(
                entitlement=entitlement, email="bob@acme.com", reason="typo in the email"
            )
    with time_machine.travel(at(11), tick=False), acting_as("webhook:msg_redeem"):
        entitlement_redeem(
            entitlement=entitlement,
            email="bob@acme.com",
            at=at(10, 58),
            reason="redeemed in the product",
        )

    page = entitlement_trace(entitlement)

    assert lines(page) == [
        (
            "Redeemed",
            "webhook:msg_redeem",
            "redeemed in the product",
            (
                Change("state", "Assigned", "Redeemed"),
                Change("redeemed by email", "—", "bob@acme.com"),
                Change("redeemed at", "—", "21 Nov 2030 10:58"),
            ),
            None,
        ),
        (
            "Reassigned",
            "Olga",
            "typo in the email",
            (
                Change("assignee email", "ann@acme.com", "bob@acme.com"),
                Change("assigned at", "21 Nov 2030 09:00", "21 Nov 2030 10:00"),
            ),
            f"Case #{case.pk}",
        ),
        (
            "Assigned",
            "Olga",
            "new hire",
            (
                Change("state", "Issued", "Assigned"),
                Change("assignee email", "—", "ann@acme.com"),
                Change("assigned at", "—", "21 Nov 2030 09:00"),
            ),
            f"Case #{case.pk}",
        ),
        ("Issued", "webhook:msg_order", "order ord_1 fulfilled", (), None),
        ("Order ord_1 ordered", "webhook:msg_order", "", (), None),
    ]
    assert [e.at.replace(second=0, microsecond=0) for e in page.entries] == [
        at(11),
        at(10),
        at(9),
        at(8, 5),
        at(8),
    ]
    assert page.entries[1].done_for.url == f"/admin/support/case/{case.pk}/change/"
    assert page.entries[-1].record.url == f"/admin/customers/order/{order.pk}/change/"
    assert page.has_next is False


def test_a_revoked_entitlement_shows_the_revocation_and_its_reason(order, case, ops_lead):
    entitlement = assigned(order, ops_lead)
    with time_machine.travel(at(12), tick=False), acting_as_user(ops_lead), acting_for(case):
        entitlement_revoke(entitlement=entitlement, reason="left the company", by=ops_lead)

    assert lines(entitlement_trace(entitlement))[0] == (
        "Revoked",
        "Olga",
        "left the company",
        (
            Change("state", "Assigned", "Revoked"),
            Change("revoked at", "—", "21 Nov 2030 12:00"),
            Change("revoke reason", "—", "left the company"),
        ),
        f"Case #{case.pk}",
    )


def test_a_reissued_code_shows_the_old_code_and_the_new(order, ops_lead):
    entitlement = assigned(order, ops_lead)
    old_code = entitlement.code
    with time_machine.travel(at(12), tick=False), acting_as_user(ops_lead):
        entitlement_reissue_code(entitlement=entitlement, reason="code leaked", by=ops_lead)
    entitlement.refresh_from_db()

    assert lines(entitlement_trace(entitlement))[0] == (
        "Code reissued",
        "Olga",
        "code leaked",
        (Change("code", old_code, entitlement.code),),
        None,
    )


def test_a_transfer_shows_both_customers_by_name(order, globex, ops_lead):
    entitlement = assigned(order, ops_lead)
    with time_machine.travel(at(12), tick=False), acting_as_user(ops_lead):
        entitlements_transfer(
            entitlements=[entitlement], target=globex, reason="sold with the unit", by=ops_lead
        )

    assert lines(entitlement_trace(entitlement))[0] == (
        "Transferred",
        "Olga",
        "sold with the unit",
        (Change("customer", "Acme Corp", "Globex"),),
        None,
    )


def test_expiry_by_the_daily_task_names_the_task(order, ops_lead):
    [entitlement] = fulfil(order)
    with (
        time_machine.travel(DAY + dt.timedelta(days=400), tick=False),
        acting_as("task:entitlements_expire"),
    ):
        assert entitlements_expire() == 1

    assert lines(entitlement_trace(entitlement))[0] == (
        "Expired",
        "task:entitlements_expire",
        "past its end date",
        (Change("state", "Issued", "Expired"),),
        None,
    )


# --- An order's trace -------------------------------------------------------------------


def test_an_orders_trace_shows_the_order_and_its_entitlements_issued_as_one_entry(order, ops_lead):
    first, *_ = fulfil(order, quantity=3)
    with time_machine.travel(at(9), tick=False), acting_as_user(ops_lead):
        entitlement_assign(entitlement=first, email="ann@acme.com", reason="new hire")

    page = order_trace(order)

    assert lines(page) == [
        (
            f"Entitlement {first.code} assigned",
            "Olga",
            "new hire",
            (
                Change("state", "Issued", "Assigned"),
                Change("assignee email", "—", "ann@acme.com"),
                Change("assigned at", "—", "21 Nov 2030 09:00"),
            ),
            None,
        ),
        (
            "Fulfilled",
            "webhook:msg_order",
            "order ord_1 fulfilled",
            (Change("fulfilment", "Pending", "Fulfilled"),),
            None,
        ),
        ("3 entitlements issued", "webhook:msg_order", "order ord_1 fulfilled", (), None),
        ("Ordered", "webhook:msg_order", "", (), None),
    ]


def test_a_refunded_order_reads_refunded(order, case, ops_lead):
    with time_machine.travel(at(10), tick=False), acting_as_user(ops_lead), acting_for(case):
        order.fulfilment = Order.Fulfilment.REFUNDED
        order.refunded_at = at(10)
        order.refund_reference = "CN-1"
        order._change_reason = "customer asked for a refund"
        order.save()

    assert lines(order_trace(order))[0] == (
        "Refunded",
        "Olga",
        "customer asked for a refund",
        (
            Change("fulfilment", "Pending", "Refunded"),
            Change("refunded at", "—", "21 Nov 2030 10:00"),
            Change("refund reference", "—", "CN-1"),
        ),
        f"Case #{case.pk}",
    )


def test_an_order_that_could_not_be_fulfilled_reads_so(customer):
    with time_machine.travel(at(8), tick=False), acting_as("webhook:msg_lost"):
        # From a tenant and of a SKU opsdesk does not know: no customer, no product.
        lost = builders.order(
            external_id="ord_lost",
            tenant_id="ghost",
            sku="NOPE",
            amount=Decimal("1.00"),
            paid_at=at(7),
            fulfilment=Order.Fulfilment.FAILED,
        )
    assert [e.headline for e in order_trace(lost).entries] == ["Ordered, not fulfilled"]


# --- A customer's trace -----------------------------------------------------------------


def test_a_bulk_expiry_splits_by_what_each_seat_was(order, ops_lead):
    first, *_ = fulfil(order, quantity=3)
    with time_machine.travel(at(9), tick=False), acting_as_user(ops_lead):
        entitlement_assign(entitlement=first, email="ann@acme.com", reason="new hire")
    with (
        time_machine.travel(DAY + dt.timedelta(days=400), tick=False),
        acting_as("task:entitlements_expire"),
    ):
        assert entitlements_expire() == 3

    entries = customer_trace(order.customer).entries

    assert {(e.headline, e.changes) for e in entries[:2]} == {
        ("2 entitlements expired", (Change("state", "Issued", "Expired"),)),
        (f"Entitlement {first.code} expired", (Change("state", "Assigned", "Expired"),)),
    }


def test_a_customer_sees_an_entitlement_until_it_moves_away_and_the_new_owner_from_then(
    order, globex, ops_lead
):
    entitlement = assigned(order, ops_lead)
    with time_machine.travel(at(12), tick=False), acting_as_user(ops_lead):
        entitlements_transfer(
            entitlements=[entitlement], target=globex, reason="sold with the unit", by=ops_lead
        )
    with time_machine.travel(at(13), tick=False), acting_as_user(ops_lead):
        entitlement_reassign(entitlement=entitlement, email="lou@globex.com", reason="new owner")

    acme_side = [e.headline for e in customer_trace(order.customer).entries]
    globex_side = [e.headline for e in customer_trace(globex).entries]

    code = entitlement.code
    assert acme_side[:3] == [
        f"Entitlement {code} transferred",
        f"Entitlement {code} assigned",
        f"Order {order.external_id} fulfilled",
    ]
    assert f"Entitlement {code} reassigned" not in acme_side
    assert globex_side == [
        f"Entitlement {code} reassigned",
        f"Entitlement {code} transferred",
        "Created",
    ]


# --- Account migration: one entry on both customers, one row on each entitlement --------


@pytest.fixture
def acme_with(customer, product):
    """Acme with two contacts and ``n`` entitlements (bulk-copied, like an import)."""

    def make(n: int) -> list[Entitlement]:
        with acting_as("test:fixture"):
            builders.contact(customer=customer, name="Pat", email="pat@acme.com")
            builders.contact(customer=customer, name="Kim", email="kim@acme.com")
            return copy_with_history(
                [
                    Entitlement(
                        customer=customer,
                        product=product,
                        code=f"BULK-{k:04d}",
                        valid_from=dt.date(2026, 1, 1),
                        issued_at=timezone.now(),
                    )
                    for k in range(n)
                ],
                Entitlement,
            )

    return make


# A customer's trace: a group query for each of its five sources (customer, contacts,
# contracts, orders, entitlements); the rows, with the ones before them, of each model on
# the page; one query per related model named: customers, products, and users (Acme's
# account manager) on Acme's page, where its contract's creation also is; users also on
# the target's, who acted (named by their full name, kit.people).
TARGET_TRACE_QUERIES = 5 + 3 + 3
SOURCE_TRACE_QUERIES = 5 + 4 + 3
# The order page: the admin's own (session, user, the order, permissions twice, and the
# customer and product its form's autocompletes show), the answer at its top (how it was
# recorded, who fulfilled it, its open cases: customers.answers, opsdesk.record_pages) and
# the trace's: a group query for the order and for its entitlements, their rows, then
# orders, customers, products and the users who acted named.
ORDER_PAGE_QUERIES = 5 + 2 + 3 + (2 + 2 + 4)
# An entitlement's (without an order): its group query, its rows, customers, products,
# the users who acted.
ENTITLEMENT_TRACE_QUERIES = 1 + 1 + 3


@pytest.mark.parametrize("n", [3, 1000])
def test_an_account_migration_reads_as_one_entry_on_both_customers_at_a_fixed_cost(
    customer, globex, acme_with, ops_lead, n, django_assert_num_queries
):
    moved = acme_with(n)
    with acting_as_user(ops_lead):
        account_migrate(source=customer, target=globex, reason=MIGRATION, by=ops_lead)
    reason = f"account migration from Acme Corp to Globex: {MIGRATION}"
    to_globex = (Change("customer", "Acme Corp", "Globex"),)

    with django_assert_num_queries(TARGET_TRACE_QUERIES):
        target = customer_trace(globex)
    with django_assert_num_queries(SOURCE_TRACE_QUERIES):
        source = customer_trace(customer)

    migration = [
        (f"{n:,} entitlements transferred", "Olga", reason, to_globex, None),
        ("2 contacts changed", "Olga", reason, to_globex, None),
    ]
    # Contacts move first, then the entitlements.
    assert lines(target)[:2] == migration
    assert lines(source)[:2] == migration
    assert [e.count for e in target.entries[:2]] == [n, 2]
    # Globex's own past before the move; Acme's stays on Acme's trace only.
    assert [e.headline for e in target.entries[2:]] == ["Created"]
    assert sorted(e.headline for e in source.entries[2:]) == sorted(
        [
            "2 contacts created",
            "Contract Acme Corp · Growth · 50 seats created",
            "Created",
            f"{n:,} entitlements issued",
        ]
    )

    for entitlement in [*moved[:: max(1, n // 10)], moved[-1]]:
        with django_assert_num_queries(ENTITLEMENT_TRACE_QUERIES):
            page = entitlement_trace(entitlement)
        assert lines(page) == [
            ("Transferred", "Olga", reason, to_globex, None),
            ("Issued", "test:fixture", "", (), None),
        ]


# --- On the admin -----------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["agent", "manager", "ops_lead"])
def test_the_entitlement_order_and_customer_pages_show_the_trace_to_every_role(
    request, client, order, case, ops_lead, persona
):
    entitlement = assigned(order, ops_lead)
    with time_machine.travel(at(10), tick=False), acting_as_user(ops_lead), acting_for(case):
        entitlement_reassign(entitlement=entitlement, email="bob@acme.com", reason="typo")
    client.force_login(request.getfixturevalue(persona))
    case_url = f"/admin/support/case/{case.pk}/change/"
    case_link = f'<a href="{case_url}" data-testid="trace-for">Case #{case.pk}</a>'

    linked = f"{entitlement.code}</a> reassigned"
    pages = {
        f"/admin/customers/entitlement/{entitlement.pk}/change/": "Reassigned",
        f"/admin/customers/order/{order.pk}/change/": linked,
        f"/admin/customers/customer/{order.customer_id}/change/": linked,
    }
    for url, headline in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert 'data-testid="trace"' in content, url
        assert headline in content, url
        assert case_link in content, url
        assert '<span class="od-diff-old">ann@acme.com</span>' in content, url
        assert '<span class="od-diff-new">bob@acme.com</span>' in content, url
        assert "typo" in content, url


def test_the_customer_trace_pages_with_trace_page(client, agent, customer):
    with acting_as("test:fixture"):
        pat = builders.contact(customer=customer, name="Pat", email="pat@acme.com")
    for n in range(49):  # with the customer's, its contract's and pat's creation: 52 groups
        with acting_as("alice", reason=f"rename {n}"):
            pat.name = f"Pat {n}"
            pat.save()
    client.force_login(agent)
    url = f"/admin/customers/customer/{customer.pk}/change/"

    first = client.get(url).content.decode()
    second = client.get(url + "?trace_page=2").content.decode()

    assert first.count('data-testid="trace-entry"') == 50
    assert '<a href="?trace_page=2#trace">Older →</a>' in first
    assert second.count('data-testid="trace-entry"') == 2
    assert '<a href="?trace_page=1#trace">← Newer</a>' in second
    assert "Older →" not in second


@pytest.mark.parametrize("value", ["abc", "-1", "0", "99"])
def test_a_bad_or_past_the_end_trace_page_is_never_an_error(client, agent, customer, value):
    client.force_login(agent)
    response = client.get(f"/admin/customers/customer/{customer.pk}/change/?trace_page={value}")
    assert response.status_code == 200
    content = response.content.decode()
    if value == "99":
        assert "No more history." in content
    else:
        assert content.count('data-testid="trace-entry"') == 2  # Acme and its contract


@pytest.mark.parametrize("count", [3, 30])
def test_an_order_page_costs_the_same_whatever_its_entitlements_did(client, ops_lead, order, count):
    issued = fulfil(order, quantity=count)
    for n, entitlement in enumerate(issued):
        # A reason each: one entry each.
        with time_machine.travel(at(9, n)), acting_as_user(ops_lead):
            entitlement_assign(entitlement=entitlement, email=f"p{n}@acme.com", reason=f"hire {n}")
    client.force_login(ops_lead)
    url = f"/admin/customers/order/{order.pk}/change/"
    client.get(url)  # warm per-process caches (content types, sessions)

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)

    assert response.content.decode().count('data-testid="trace-entry"') == count + 3
    assert len(captured.captured_queries) == ORDER_PAGE_QUERIES
