"""Billing records crafted for reconciliation: the month of October 2026 with one customer
per rule and edge (the ``month`` fixture), and Fjord's year of contracts, invoices and
worked findings (``fjord_year``); shared by the billing, inbox, customer page and browser
tests."""

import datetime as dt
from decimal import Decimal

import pytest

from audit.context import acting_as, acting_as_user
from billing.models import Invoice
from billing.reconciliation import reconciliation_run
from customers.models import Contract, Customer, UsageDaily
from kit.months import month_end
from support.cases import case_close, cases_acknowledge
from support.models import Case
from tests import builders
from tests.records import active_contract

OCTOBER = dt.date(2026, 10, 1)
TODAY = dt.date(2026, 11, 21)
D = Decimal


def customer(name: str) -> Customer:
    """An active customer ``name`` whose tenant id is ``name`` in lower case with dashes."""
    with acting_as("test:fixture"):
        return builders.customer(
            external_id=name.lower().replace(" ", "-"), name=name, status="active"
        )


def invoice(who: Customer | None, amount: str, *, tenant: str = "", **fields) -> Invoice:
    """A paid invoice of ``who`` (of ``tenant``, unknown, when None) for October, issued
    on 1 Oct and due on 31 Oct, numbered in the order made (``in_1``, ``OPS-1``...)."""
    number = Invoice.objects.count() + 1
    values = {
        "external_id": f"in_{number}",
        "tenant_id": who.external_id if who else tenant,
        "customer": who,
        "number": f"OPS-{number}",
        "status": "paid",
        "currency": "EUR",
        "amount_due": D(amount),
        "amount_paid": D(amount),
        "period_start": OCTOBER,
        "period_end": dt.date(2026, 10, 31),
        "issued_at": OCTOBER,
        "due_at": dt.date(2026, 10, 31),
        **fields,
    }
    with acting_as("test:fixture"):
        return builders.invoice(**values)


def peak(who: Customer, users: int, day: int = 12) -> None:
    """A usage report of ``day`` October with ``users`` active in the week to it."""
    with acting_as("test:fixture"):
        UsageDaily.objects.create(
            customer=who,
            date=dt.date(2026, 10, day),
            active_users_1d=1,
            active_users_7d=users,
            requests=100,
            errors=0,
        )


@pytest.fixture
def month():
    """One customer per rule and edge (contracts: 500.00 EUR for 20 seats, 10.00 per
    extra seat, unless said otherwise)."""
    made = {}

    def add(name, *, contract=True, **contract_fields):
        made[name] = who = customer(name)
        if contract:
            active_contract(who, **contract_fields)
        return who

    invoice(add("Exact"), "500.00")
    peak(made["Exact"], 20)  # at the seat count: no extra
    invoice(add("Extra seats"), "550.00")
    peak(made["Extra seats"], 25)
    peak(made["Extra seats"], 19, day=20)
    invoice(add("Within tolerance"), "502.50")  # 0.5% of 500 is 2.50: allowed
    invoice(add("Over tolerance"), "497.49")
    # 0.5% of 100 is 0.50: one unit is allowed.
    invoice(add("Small within", monthly_fee=D("100.00")), "101.00", status="open", due_at=TODAY)
    invoice(add("Small over", monthly_fee=D("100.00")), "98.99")
    add("Missing")
    invoice(add("Only void"), "500.00", status="void")
    invoice(add("Only draft"), "500.00", status="draft")
    invoice(add("Ended in September", end_date=dt.date(2026, 9, 30), status="ended"), "500.00")
    invoice(add("Draft contract", status="draft"), "500.00")
    invoice(None, "80.00", tenant="ghost-9")
    invoice(add("Dollars"), "500.00", currency="USD")
    invoice(add("Twice"), "500.00")
    invoice(made["Twice"], "500.00", issued_at=dt.date(2026, 10, 3))
    invoice(
        add("Late"), "500.00", status="open", amount_paid=D("100.00"), due_at=dt.date(2026, 11, 6)
    )
    invoice(
        add("Just in time"), "500.00", status="open", amount_paid=D(0), due_at=dt.date(2026, 11, 7)
    )
    invoice(add("Mid-month start", start_date=dt.date(2026, 10, 15)), "500.00")
    add("Starts November", start_date=dt.date(2026, 11, 1))
    return made


def month_of(text: str) -> dt.date:
    """``2026-10`` -> 1 Oct 2026."""
    return dt.datetime.strptime(text, "%Y-%m").date()


def bill(who: Customer, month: str, amount: str, number: str, **fields) -> Invoice:
    """An invoice for ``month``, paid, due at the end of the month, unless told otherwise."""
    start = month_of(month)
    end = month_end(start)
    values = {"period_start": start, "period_end": end, "issued_at": start, "due_at": end}
    return invoice(who, amount, number=number, external_id=f"in_{number}", **{**values, **fields})


def usage(who: Customer, day: dt.date, users: int) -> None:
    with acting_as("test:fixture"):
        UsageDaily.objects.create(
            customer=who, date=day, active_users_1d=1, active_users_7d=users, requests=10, errors=0
        )


def fjord_year(ops_lead) -> Customer:
    """Fjord's year to November 2026: an invoice before any contract (Jan), a 500.00 EUR
    contract for 20 seats at 10.00 per extra seat (Feb to May), a month with neither (Jun),
    an 800.00 EUR contract for 30 seats at 12.50 (from Jul); every slip reconciliation
    knows, and the findings of the real reconciliation of each month."""
    who = customer("Fjord")
    active_contract(
        who,
        start_date=dt.date(2026, 2, 1),
        end_date=dt.date(2026, 5, 31),
        status=Contract.Status.ENDED,
    )
    active_contract(
        who,
        seats=30,
        monthly_fee=D("800.00"),
        price_per_extra_seat=D("12.50"),
        start_date=dt.date(2026, 7, 1),
    )
    bill(who, "2026-01", "500.00", "F-01")  # no contract yet
    bill(who, "2026-02", "500.00", "F-02")
    usage(who, dt.date(2026, 3, 9), 25)  # 5 over the 20 seats
    usage(who, dt.date(2026, 3, 20), 18)
    bill(who, "2026-03", "550.00", "F-03")
    bill(who, "2026-04", "502.00", "F-04")  # 0.5% of 500 is 2.50: within
    bill(who, "2026-05", "500.00", "F-05", currency="USD")
    bill(who, "2026-07", "800.00", "F-07", status="void")  # void: not counted, so missing
    bill(who, "2026-08", "800.00", "F-08")
    bill(who, "2026-09", "720.00", "F-09")
    bill(who, "2026-10", "800.00", "F-10")
    bill(who, "2026-10", "800.00", "F-10-B", status="open", amount_paid=D("0.00"))
    usage(who, dt.date(2026, 11, 3), 32)  # 2 over the 30 seats
    bill(who, "2026-11", "800.00", "F-11", status="open", amount_paid=D("0.00"))
    for month in range(1, 12):
        reconciliation_run(month=dt.date(2026, month, 1), customer=who, today=TODAY)
    # Worked findings: one acknowledged (still shown), one waived (not shown).
    with acting_as_user(ops_lead):
        cases_acknowledge(
            cases=Case.objects.filter(kind="amount_mismatch", period="2026-09-01"), by=ops_lead
        )
        case_close(
            case=Case.objects.get(kind="duplicate_invoice"),
            state="waived",
            note="Credit note F-10-C follows",
            by=ops_lead,
        )
    # Another customer's finding of the same month is not Fjord's.
    other = customer("Other")
    active_contract(other)
    reconciliation_run(month=dt.date(2026, 8, 1), customer=other, today=TODAY)
    return who
