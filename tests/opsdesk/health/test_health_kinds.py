"""The health flags read from what opsdesk itself knows of a customer (invoices, billing
findings, seats, service levels, onboarding, a renewal at risk): each rule at its edges,
then each through ``customer_health`` on real rows, in the same fixed number of queries."""

import datetime as dt
from decimal import Decimal

import pytest

from audit.context import acting_as
from billing.models import Invoice
from customers.models import Contract, UsageDaily
from onboarding.models import Checklist, ChecklistTask, Role
from opsdesk.health.flags import (
    KINDS,
    BreachedTicket,
    Flag,
    OpenFinding,
    OpenInvoice,
    OverdueTask,
    UsageDay,
    billing_finding,
    customer_health,
    onboarding_stalled,
    overdue_invoice,
    renewal_at_risk,
    seats_over,
    sla_breach,
    urgent_tickets,
    usage_drop,
)
from support.models import Case, Ticket
from tests import builders

D = dt.date(2026, 11, 22)  # the digest's date: it covers usage up to 21 Nov
NOW = dt.datetime(2026, 11, 22, 7, 0, tzinfo=dt.UTC)  # when it is built


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def day(wau: int, wau_week_ago: int | None = None) -> UsageDay:
    return UsageDay(1, D - days(1), wau, wau_week_ago, 1000, 4, 0.004, 0.001, 28)


def test_every_kind_has_a_code_and_a_label_in_the_order_flags_are_listed():
    assert list(KINDS) == [
        "error_rate", "usage_drop", "dormant", "no_data", "renewal_soon", "urgent_tickets",
        "sla_breach", "seats_over", "overdue_invoice", "billing_finding",
        "onboarding_stalled", "renewal_at_risk",
    ]  # fmt: skip
    assert KINDS["seats_over"] == "Seats over contract"


# --- overdue invoice ----------------------------------------------------------------------


def invoice(due_days_ago: int, outstanding="1000.00", currency="EUR") -> OpenInvoice:
    return OpenInvoice(D - days(due_days_ago), currency, Decimal(outstanding))


def test_an_open_invoice_more_than_14_days_past_due_is_overdue():
    assert overdue_invoice(date=D, invoices=[invoice(15)]) == Flag(
        "overdue_invoice",
        "Overdue invoice",
        "1 overdue invoice, 1,000.00 EUR outstanding, oldest due 7 Nov 2026 (15 days ago)",
        15.0,
    )


def test_an_invoice_14_days_past_due_or_less_is_not_overdue_yet():
    assert overdue_invoice(date=D, invoices=[invoice(14)]) is None
    assert overdue_invoice(date=D, invoices=[invoice(1), invoice(0)]) is None
    assert overdue_invoice(date=D, invoices=[]) is None


def test_overdue_invoices_add_up_per_currency_and_the_oldest_gives_the_value():
    flag = overdue_invoice(
        date=D,
        invoices=[
            invoice(20, "700.00"),
            invoice(14, "5000.00"),  # not overdue yet: neither counted nor added
            invoice(49, "500.00"),
            invoice(30, "99.50", "USD"),
        ],
    )
    assert flag.reason == (
        "3 overdue invoices, 1,200.00 EUR + 99.50 USD outstanding, "
        "oldest due 4 Oct 2026 (49 days ago)"
    )
    assert flag.value == 49.0


def test_the_overdue_grace_is_reconciliations_setting(settings):
    settings.OPSDESK_OVERDUE_AFTER_DAYS = 0
    assert overdue_invoice(date=D, invoices=[invoice(0)]) is None  # due today
    assert overdue_invoice(date=D, invoices=[invoice(1)]).reason == (
        "1 overdue invoice, 1,000.00 EUR outstanding, oldest due 21 Nov 2026 (1 day ago)"
    )


# --- billing finding ----------------------------------------------------------------------


def finding(kind: str, opened_days_ago: int, hour: int = 5) -> OpenFinding:
    opened = dt.datetime.combine(D - days(opened_days_ago), dt.time(hour), tzinfo=dt.UTC)
    return OpenFinding(kind, opened)


def test_an_open_billing_finding_is_flagged_with_its_kind_and_age():
    assert billing_finding(date=D, findings=[finding("missing_invoice", 3)]) == Flag(
        "billing_finding",
        "Billing finding",
        "1 open billing finding, oldest Missing invoice since 19 Nov 2026 (3 days ago)",
        1.0,
    )
    assert billing_finding(date=D, findings=[]) is None


def test_several_findings_count_and_name_the_oldest():
    flag = billing_finding(
        date=D,
        findings=[finding("amount_mismatch", 2), finding("duplicate_invoice", 12), finding("x", 0)],
    )
    assert flag.reason == (
        "3 open billing findings, oldest Duplicate invoices since 10 Nov 2026 (12 days ago)"
    )
    assert flag.value == 3.0


def test_a_finding_that_began_on_the_day_is_a_day_old_in_utc():
    # 23:30 on 21 Nov in UTC-2 is 22 Nov in UTC: opened today.
    late = dt.datetime(2026, 11, 21, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    flag = billing_finding(date=D, findings=[OpenFinding("currency_mismatch", late)])
    assert flag.reason.endswith("Currency differs from contract since 22 Nov 2026 (today)")


# --- seats over contract ------------------------------------------------------------------


def test_weekly_users_above_the_contracted_seats_are_seats_over():
    assert seats_over(day=day(118), seats=50) == Flag(
        "seats_over",
        "Seats over contract",
        "WAU 118 vs 50 contracted seats (68 above)",
        1.36,
    )
    one = seats_over(day=day(51), seats=50)
    assert (one.reason, one.value) == ("WAU 51 vs 50 contracted seats (1 above)", 0.02)
    assert seats_over(day=day(2), seats=1).reason == "WAU 2 vs 1 contracted seat (1 above)"


def test_weekly_users_up_to_the_contracted_seats_are_not_over():
    assert seats_over(day=day(50), seats=50) is None
    assert seats_over(day=day(10), seats=50) is None
    assert seats_over(day=day(50), seats=None) is None  # no active contract
    assert seats_over(day=None, seats=50) is None  # no report for D-1


def test_the_share_above_the_contract_that_counts_is_a_setting(settings):
    settings.OPSDESK_HEALTH_SEATS_OVER = 0.1
    assert seats_over(day=day(55), seats=50) is None  # exactly 10% above
    assert seats_over(day=day(56), seats=50).value == 0.12


# --- SLA breach ---------------------------------------------------------------------------


def test_an_open_ticket_past_its_deadline_is_an_sla_breach():
    breached = BreachedTicket(123, NOW - dt.timedelta(hours=5))
    assert sla_breach(now=NOW, tickets=[breached]) == Flag(
        "sla_breach", "SLA breach", "1 open ticket past its SLA target (#123, 5 h over)", 1.0
    )
    assert sla_breach(now=NOW, tickets=[]) is None


def test_several_breaches_count_and_name_the_longest_over():
    flag = sla_breach(
        now=NOW,
        tickets=[
            BreachedTicket(7, NOW - dt.timedelta(minutes=20)),
            BreachedTicket(9, NOW - dt.timedelta(days=2, hours=4)),
            BreachedTicket(8, NOW),
        ],
    )
    assert flag.reason == "3 open tickets past their SLA target (oldest #9, 2 d 4 h over)"
    assert flag.value == 3.0


# --- onboarding stalled -------------------------------------------------------------------


def test_a_task_overdue_by_more_than_7_days_stalls_the_onboarding():
    task = OverdueTask("Kick-off call", D - days(8))
    assert onboarding_stalled(date=D, task=task) == Flag(
        "onboarding_stalled",
        "Stalled onboarding",
        'onboarding task "Kick-off call" overdue by 8 days (due 14 Nov 2026)',
        8.0,
    )


def test_a_task_overdue_by_7_days_or_less_does_not_stall_it(settings):
    assert onboarding_stalled(date=D, task=OverdueTask("Kick-off call", D - days(7))) is None
    assert onboarding_stalled(date=D, task=OverdueTask("Kick-off call", D - days(1))) is None
    assert onboarding_stalled(date=D, task=None) is None
    settings.OPSDESK_HEALTH_ONBOARDING_STALLED_DAYS = 0
    assert onboarding_stalled(date=D, task=OverdueTask("SSO", D - days(1))).reason == (
        'onboarding task "SSO" overdue by 1 day (due 21 Nov 2026)'
    )


# --- renewal at risk ----------------------------------------------------------------------


DROP = usage_drop(day(26, 40))
URGENT = urgent_tickets(2)


def test_a_renewal_within_60_days_with_another_flag_is_at_risk():
    assert renewal_at_risk(date=D, contract_end=D + days(60), others=[DROP, URGENT]) == Flag(
        "renewal_at_risk",
        "Renewal at risk",
        "contract ends 21 Jan 2027 (in 60 days) with 2 other signals: Usage drop, Urgent tickets",
        60.0,
    )
    today = renewal_at_risk(date=D, contract_end=D, others=[URGENT])
    assert (today.reason, today.value) == (
        "contract ends 22 Nov 2026 (today) with 1 other signal: Urgent tickets",
        0.0,
    )


def test_a_renewal_further_away_ended_or_without_another_flag_is_not_at_risk():
    assert renewal_at_risk(date=D, contract_end=D + days(61), others=[DROP]) is None
    assert renewal_at_risk(date=D, contract_end=D - days(1), others=[DROP]) is None
    assert renewal_at_risk(date=D, contract_end=None, others=[DROP]) is None
    assert renewal_at_risk(date=D, contract_end=D + days(10), others=[]) is None


def test_renewal_soon_is_the_same_fact_not_another_signal(settings):
    soon = Flag("renewal_soon", "Renewal soon", "contract ends 2 Dec 2026, in 10 days", 10.0)
    assert renewal_at_risk(date=D, contract_end=D + days(10), others=[soon]) is None
    flag = renewal_at_risk(date=D, contract_end=D + days(10), others=[soon, DROP])
    assert flag.reason.endswith("with 1 other signal: Usage drop")
    settings.OPSDESK_HEALTH_RENEWAL_RISK_DAYS = 90
    assert renewal_at_risk(date=D, contract_end=D + days(90), others=[DROP]) is not None


# --- through customer_health --------------------------------------------------------------


def reports(customer, *, wau=15) -> None:
    """Steady usage D-8..D-1 (WAU ``wau`` both weeks, logins every day)."""
    for back in range(1, 9):
        date = D - days(back)
        UsageDaily.objects.create(
            customer=customer,
            date=date,
            active_users_1d=min(wau, 8),
            active_users_7d=wau,
            requests=1000,
            errors=2,
            last_login_at=dt.datetime.combine(date, dt.time(9), tzinfo=dt.UTC),
        )


def follow(name: str, *, wau=15, seats=20, end=None) -> object:
    customer = builders.customer(external_id=name.lower(), name=name)
    builders.contract(customer=customer, seats=seats, end_date=end)
    reports(customer, wau=wau)
    return customer


def open_invoice(customer, *, due: dt.date, due_amount="500.00", paid="0.00", **fields):
    return builders.invoice(
        customer=customer,
        status=Invoice.Status.OPEN,
        due_at=due,
        amount_due=Decimal(due_amount),
        amount_paid=Decimal(paid),
        **fields,
    )


def checklist(customer, contract, tasks: list[tuple[str, dt.date, str]]) -> Checklist:
    made = Checklist.objects.create(contract=contract, customer=customer)
    for position, (title, due, state) in enumerate(tasks):
        ChecklistTask.objects.create(
            checklist=made,
            position=position,
            title=title,
            role=Role.ACCOUNT_MANAGER,
            due_date=due,
            state=state,
            done_at=NOW if state == ChecklistTask.State.DONE else None,
        )
    return made


@pytest.fixture
def world(db):
    """A customer per new kind, each with what almost raises it beside what does."""
    with acting_as("test:fixture"):
        c = {
            name: follow(name)
            for name in ("Steady", "Owing", "Audited", "Breached", "Stalled", "Waiting")
        }
        c["Crowded"] = follow("Crowded", wau=23, seats=20)
        c["Full"] = follow("Full", wau=20, seats=20)
        c["Risky"] = follow("Risky", end=D + days(45))
        c["Renewing"] = follow("Renewing", end=D + days(45))
        # Two active contracts that ran on 21 Nov: 20 + 10 seats; one starting on the
        # digest's day does not count yet.
        c["Grown"] = follow("Grown", wau=25, seats=20)
        builders.contract(customer=c["Grown"], seats=10, start_date=D - days(30))
        builders.contract(customer=c["Grown"], seats=100, start_date=D)

        # Owing: 2 overdue (one part paid), one 14 days past due, one paid, one void.
        open_invoice(c["Owing"], due=D - days(40), due_amount="1000.00", paid="300.00")
        open_invoice(c["Owing"], due=D - days(15))
        open_invoice(c["Owing"], due=D - days(14), due_amount="9999.00")
        builders.invoice(customer=c["Owing"], due_at=D - days(90))  # paid
        builders.invoice(customer=c["Owing"], status=Invoice.Status.VOID, due_at=D - days(90))
        open_invoice(c["Steady"], due=D + days(10))  # not due yet

        # Audited: two open findings (one acknowledged); resolved and non-billing ones
        # and an overdue invoice's finding (the invoice has its own flag) do not count.
        # The oldest is the one whose problem began first: found last, about October.
        opened = dt.datetime(2026, 11, 12, 5, 30, tzinfo=dt.UTC)
        october = {"period": dt.date(2026, 10, 1)}
        for kind, state, at, more in [
            (Case.Kind.AMOUNT_MISMATCH, Case.State.OPEN, opened + days(3), october),
            (Case.Kind.MISSING_INVOICE, Case.State.ACKNOWLEDGED, opened, {}),
            (Case.Kind.CURRENCY_MISMATCH, Case.State.RESOLVED, opened - days(30), {}),
            (Case.Kind.FAILED_FULFILMENT, Case.State.OPEN, opened - days(30), {}),
            (Case.Kind.OVERDUE_INVOICE, Case.State.OPEN, opened - days(30), {}),
        ]:
            builders.case(customer=c["Audited"], kind=kind, state=state, opened_at=at, **more)

        # Breached: past due, due exactly now; not: due in a second, waiting on the
        # customer (its clocks paused), solved.
        hour = dt.timedelta(hours=1)
        for status, due in [
            (Ticket.Status.OPEN, NOW - 3 * hour),
            (Ticket.Status.OPEN, NOW),
            (Ticket.Status.OPEN, NOW + dt.timedelta(seconds=1)),
            (Ticket.Status.PENDING, NOW - 9 * hour),
            (Ticket.Status.SOLVED, NOW - 9 * hour),
        ]:
            ticket = builders.ticket(customer=c["Breached"], status=status, sla_due_at=due)
            if due == NOW - 3 * hour:
                oldest = ticket
        builders.ticket(customer=c["Waiting"], sla_due_at=NOW + hour)

        # Stalled: its most overdue open task is 8 days late; Waiting's only 7.
        open_, done = ChecklistTask.State.OPEN, ChecklistTask.State.DONE
        checklist(
            c["Stalled"],
            c["Stalled"].contracts.get(),
            [
                ("Done long ago", D - days(30), done),
                ("Kick-off call", D - days(8), open_),
                ("Training", D - days(2), open_),
            ],
        )
        checklist(c["Waiting"], c["Waiting"].contracts.get(), [("Kick-off", D - days(7), open_)])
        # An ended contract's checklist is no onboarding in progress.
        ended = builders.contract(
            customer=c["Steady"], status=Contract.Status.ENDED, end_date=D - days(100)
        )
        checklist(c["Steady"], ended, [("Old kick-off", D - days(200), open_)])

        # Risky: renewal in 45 days and an overdue invoice; Renewing only the renewal.
        open_invoice(c["Risky"], due=D - days(20))
    c["oldest_breach"] = oldest
    return c


def flags_of(health) -> dict[str, list[tuple[str, str, float]]]:
    return {h.name: [(f.code, f.reason, f.value) for f in h.flags] for h in health}


def test_each_kind_is_raised_on_real_rows_exactly_where_its_rule_says(world):
    health = customer_health(date=D, now=NOW)
    oldest = world["oldest_breach"].pk
    assert flags_of(health) == {
        "Audited": [
            (
                "billing_finding",
                "2 open billing findings, oldest Amount mismatch since 1 Oct 2026 (52 days ago)",
                2.0,
            )
        ],
        "Breached": [
            (
                "sla_breach",
                f"2 open tickets past their SLA target (oldest #{oldest}, 3 h over)",
                2.0,
            )
        ],
        "Crowded": [("seats_over", "WAU 23 vs 20 contracted seats (3 above)", 0.15)],
        "Full": [],
        "Grown": [],
        "Owing": [
            (
                "overdue_invoice",
                "2 overdue invoices, 1,200.00 EUR outstanding, oldest due 13 Oct 2026 "
                "(40 days ago)",
                40.0,
            )
        ],
        "Renewing": [],
        "Risky": [
            (
                "overdue_invoice",
                "1 overdue invoice, 500.00 EUR outstanding, oldest due 2 Nov 2026 (20 days ago)",
                20.0,
            ),
            (
                "renewal_at_risk",
                "contract ends 6 Jan 2027 (in 45 days) with 1 other signal: Overdue invoice",
                45.0,
            ),
        ],
        "Stalled": [
            (
                "onboarding_stalled",
                'onboarding task "Kick-off call" overdue by 8 days (due 14 Nov 2026)',
                8.0,
            )
        ],
        "Steady": [],
        "Waiting": [],
    }


def test_the_figures_behind_the_new_kinds_are_reported_flagged_or_not(world):
    health = {h.name: h for h in customer_health(date=D, now=NOW)}
    figures = {
        name: (
            h.contracted_seats,
            h.overdue_invoices,
            h.billing_findings,
            h.sla_breached_tickets,
            h.onboarding_days_overdue,
        )
        for name, h in health.items()
    }
    assert figures["Owing"] == (20, 2, 0, 0, 0)
    assert figures["Audited"] == (20, 0, 2, 0, 0)
    assert figures["Breached"] == (20, 0, 0, 2, 0)
    assert figures["Stalled"] == (20, 0, 0, 0, 8)
    assert figures["Waiting"] == (20, 0, 0, 0, 7)
    assert figures["Grown"] == (30, 0, 0, 0, 0)
    assert figures["Steady"] == (20, 0, 0, 0, 0)


def test_an_sla_deadline_counts_as_breached_from_its_very_moment(world):
    [before] = customer_health(
        date=D, now=NOW - dt.timedelta(hours=3, seconds=1), customer_ids=[world["Breached"].pk]
    )
    [at] = customer_health(
        date=D, now=NOW - dt.timedelta(hours=3), customer_ids=[world["Breached"].pk]
    )
    [later] = customer_health(
        date=D, now=NOW + dt.timedelta(seconds=1), customer_ids=[world["Breached"].pk]
    )
    assert (before.flags, at.sla_breached_tickets, later.sla_breached_tickets) == ((), 1, 3)
    assert at.flags[0].reason.endswith(f"(#{world['oldest_breach'].pk}, 0 min over)")


def test_a_digest_of_a_later_date_sees_the_invoice_and_task_overdue_longer(world):
    later = {h.name: h for h in customer_health(date=D + days(1), now=NOW)}
    # Waiting's task is now 8 days late; the 9,999.00 invoice 15 days past due.
    assert later["Waiting"].flags[-1].reason == (
        'onboarding task "Kick-off" overdue by 8 days (due 15 Nov 2026)'
    )
    assert next(f for f in later["Owing"].flags if f.code == "overdue_invoice").reason == (
        "3 overdue invoices, 11,199.00 EUR outstanding, oldest due 13 Oct 2026 (41 days ago)"
    )


def rich(customer) -> None:
    """Every kind's figures for ``customer``: what costs a query if read per customer."""
    contract = customer.contracts.get()
    open_invoice(customer, due=D - days(30))
    builders.case(customer=customer, kind=Case.Kind.AMOUNT_MISMATCH)
    builders.ticket(customer=customer, sla_due_at=NOW - dt.timedelta(hours=2))
    builders.ticket(customer=customer, priority=Ticket.Priority.URGENT)
    checklist(customer, contract, [("Kick-off", D - days(10), ChecklistTask.State.OPEN)])


@pytest.mark.parametrize("customers", [1, 12])
def test_every_kind_for_every_customer_costs_the_same_two_queries(
    db, django_assert_num_queries, customers
):
    with acting_as("test:fixture"):
        for n in range(customers):
            customer = follow(f"Customer {n:02}", wau=40, seats=20, end=D + days(20))
            rich(customer)
    with django_assert_num_queries(2):
        health = customer_health(date=D, now=NOW)
    assert len(health) == customers
    assert {f.code for f in health[0].flags} == set(KINDS) - {
        "error_rate", "usage_drop", "dormant", "no_data",
    }  # fmt: skip
