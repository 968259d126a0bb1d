"""The customer page's billing tab: a year of expected against invoiced, month by month,
with the month's invoices and open billing findings, in a fixed number of queries."""

import datetime as dt
import re
from decimal import Decimal
from html import unescape

import pytest
import time_machine

from audit.context import acting_as
from billing.models import Invoice
from billing.reconciliation import reconciliation_run
from customers.models import Customer
from opsdesk.customer_page.selectors import customer_billing
from support.models import Case
from tests.billing import crafted
from tests.billing.crafted import bill, fjord_year, usage
from tests.records import active_contract

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 21)
D = Decimal


@pytest.fixture(autouse=True)
def _actor():
    with acting_as("test:billing-tab"):
        yield


@pytest.fixture
def fjord(ops_lead):
    return fjord_year(ops_lead)


def rows(billing):
    return [
        (
            f"{m.month:%Y-%m}",
            m.expected,
            m.invoiced_amounts,
            m.difference,
            m.outside_tolerance,
            [(i.number, i.pk in m.counted_ids, i.pk in m.overdue_ids) for i in m.invoices],
            [(c.kind, c.state) for c in m.cases],
        )
        for m in billing.months
    ]


def test_the_tab_shows_each_month_newest_first_with_its_invoices_and_open_findings(fjord):
    billing = customer_billing(customer=fjord, today=TODAY)
    assert (billing.first, billing.last) == (dt.date(2025, 12, 1), dt.date(2026, 11, 1))
    eur = "EUR"
    assert rows(billing) == [
        (
            "2026-11",
            D("825.00"),
            [(eur, D("800.00"))],
            D("-25.00"),
            True,
            [("F-11", True, False)],
            [("amount_mismatch", "open")],
        ),
        (
            "2026-10",
            D("800.00"),
            [(eur, D("1600.00"))],
            D("800.00"),
            True,
            [("F-10", True, False), ("F-10-B", True, True)],
            [("overdue_invoice", "open")],  # the duplicate was waived
        ),
        (
            "2026-09",
            D("800.00"),
            [(eur, D("720.00"))],
            D("-80.00"),
            True,
            [("F-09", True, False)],
            [("amount_mismatch", "acknowledged")],
        ),
        (
            "2026-08",
            D("800.00"),
            [(eur, D("800.00"))],
            D("0.00"),
            False,
            [("F-08", True, False)],
            [],
        ),
        (
            "2026-07",
            D("800.00"),
            [],
            D("-800.00"),
            True,
            [("F-07", False, False)],
            [("missing_invoice", "open")],
        ),
        ("2026-06", None, [], None, False, [], []),
        (
            "2026-05",
            D("500.00"),
            [("USD", D("500.00"))],
            None,
            True,
            [("F-05", True, False)],
            [("currency_mismatch", "open")],
        ),
        (
            "2026-04",
            D("500.00"),
            [(eur, D("502.00"))],
            D("2.00"),
            False,
            [("F-04", True, False)],
            [],
        ),
        (
            "2026-03",
            D("550.00"),
            [(eur, D("550.00"))],
            D("0.00"),
            False,
            [("F-03", True, False)],
            [],
        ),
        (
            "2026-02",
            D("500.00"),
            [(eur, D("500.00"))],
            D("0.00"),
            False,
            [("F-02", True, False)],
            [],
        ),
        (
            "2026-01",
            None,
            [(eur, D("500.00"))],
            D("500.00"),
            True,
            [("F-01", True, False)],
            [("invoice_without_contract", "open")],
        ),
        # Dec 2025: before anything was billed, left out.
    ]
    assert [(t.currency, t.expected, t.invoiced, t.difference) for t in billing.totals] == [
        ("EUR", D("6075.00"), D("5972.00"), D("-103.00")),
        ("USD", D("0.00"), D("500.00"), D("500.00")),
    ]
    assert (billing.invoice_count, billing.case_count) == (11, 6)


def test_expected_explains_extra_seats_at_the_peak(fjord):
    months = {f"{m.month:%Y-%m}": m for m in customer_billing(customer=fjord, today=TODAY).months}
    march, november, august = months["2026-03"], months["2026-11"], months["2026-08"]
    assert (march.fees, march.extra_seats, march.extra_seat_price, march.peak, march.seats) == (
        D("500.00"),
        5,
        D("10.00"),
        25,
        20,
    )
    assert (november.fees, november.extra_seats, november.extra_seat_price) == (
        D("800.00"),
        2,
        D("12.50"),
    )
    assert (august.fees, august.extra_seats, august.peak) == (D("800.00"), 0, None)
    assert november.contract == fjord.contracts.get(seats=30)
    assert months["2026-06"].empty and not months["2026-07"].empty


def test_a_month_invoiced_in_another_currency_is_not_compared(fjord):
    may = next(
        m for m in customer_billing(customer=fjord, today=TODAY).months if m.month.month == 5
    )
    assert (may.currency, may.other_currencies, may.difference) == ("EUR", ["USD"], None)
    assert may.outside_tolerance


def test_a_month_invoiced_in_two_currencies_without_a_contract_is_not_summed(client, agent):
    who = crafted.customer("Drifter")
    bill(who, "2026-10", "300.00", "X-1")
    bill(who, "2026-10", "200.00", "X-2", currency="USD")
    billing = customer_billing(customer=who, today=TODAY)
    [november, october] = billing.months
    assert november.empty
    assert (october.expected, october.currency, october.difference) == (None, None, None)
    assert october.invoiced_amounts == [("EUR", D("300.00")), ("USD", D("200.00"))]
    assert october.outside_tolerance
    assert [(t.currency, t.expected, t.invoiced) for t in billing.totals] == [
        ("EUR", D("0.00"), D("300.00")),
        ("USD", D("0.00"), D("200.00")),
    ]
    client.force_login(agent)
    with time_machine.travel(dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)):
        content = client.get(f"/admin/customers/customer/{who.pk}/change/").content.decode()
    assert page_rows(content)["2026-10"].startswith(
        "Oct 2026 — no active contract 300.00 EUR 200.00 USD not comparable "
        "invoiced in 2 currencies X-1 Paid"
    )


def test_the_tolerance_decides_the_colour_at_its_edges():
    who = crafted.customer("Edges")
    active_contract(who, start_date=dt.date(2026, 9, 1))
    bill(who, "2026-09", "502.50", "E-09")  # exactly 0.5% over: within
    bill(who, "2026-10", "497.49", "E-10")  # 2.51 under: outside
    bill(who, "2026-11", "499.00", "E-11")
    months = customer_billing(customer=who, today=TODAY).months
    assert [(m.month.month, m.difference, m.tolerance, m.outside_tolerance) for m in months] == [
        (11, D("-1.00"), D("2.50"), False),
        (10, D("-2.51"), D("2.50"), True),
        (9, D("2.50"), D("2.50"), False),
    ]


def test_a_month_not_invoiced_yet_is_off_only_once_its_invoice_is_due(client, agent):
    """Billing invoices in arrears: reconciliation finds an invoice missing only after the
    month and its grace days (``OPSDESK_INVOICE_GRACE_DAYS``, 5); the tab marks the month
    by the same rule (it used to mark any month with nothing issued, this one included)."""
    who = crafted.customer("Arrears")
    active_contract(who, start_date=dt.date(2026, 10, 1))
    bill(who, "2026-10", "500.00", "A-10")
    [november, october] = customer_billing(customer=who, today=TODAY).months
    assert (november.difference, november.outside_tolerance, november.awaiting_invoice) == (
        D("-500.00"),
        False,
        True,
    )
    assert november.invoice_due_by == dt.date(2026, 12, 5)
    assert (october.outside_tolerance, october.awaiting_invoice) == (False, False)
    client.force_login(agent)
    with time_machine.travel(dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)):
        content = client.get(f"/admin/customers/customer/{who.pk}/change/").content.decode()
    assert page_rows(content)["2026-11"] == (
        "Nov 2026 this month 500.00 EUR fees; no usage reported — nothing issued "
        "-500.00 invoice expected by 5 Dec 2026 none —"
    )
    row = re.search(r'data-testid="billing-2026-11".*?</tr>', content, re.S).group()
    assert 'od-billing-off" data-testid="difference"' not in row

    on_the_last_day = customer_billing(customer=who, today=dt.date(2026, 12, 5)).months
    assert [(m.month.month, m.mismatches, m.awaiting_invoice) for m in on_the_last_day] == [
        (12, (), True),
        (11, (), True),
        (10, (), False),
    ]
    a_day_later = customer_billing(customer=who, today=dt.date(2026, 12, 6)).months
    assert [(m.month.month, m.mismatches, m.outside_tolerance) for m in a_day_later] == [
        (12, (), False),
        (11, ("missing_invoice",), True),
        (10, (), False),
    ]


def test_a_month_invoiced_twice_or_without_a_contract_is_off_whatever_the_amounts():
    """As reconciliation finds them: duplicates even when they add up to what was expected,
    and an invoice without an active contract even when it is within a unit of nothing
    (the tab used to compare these amounts with the tolerance)."""
    who = crafted.customer("Halves")
    active_contract(who, start_date=dt.date(2026, 10, 1))
    bill(who, "2026-09", "0.50", "H-09")  # before the contract
    bill(who, "2026-10", "250.00", "H-10-A")
    bill(who, "2026-10", "250.00", "H-10-B")
    bill(who, "2026-11", "500.00", "H-11")
    months = customer_billing(customer=who, today=TODAY).months
    assert [(m.month.month, m.difference, m.mismatches, m.outside_tolerance) for m in months] == [
        (11, D("0.00"), (), False),
        (10, D("0.00"), ("duplicate_invoice",), True),
        (9, D("0.50"), ("invoice_without_contract",), True),
    ]


def test_a_customer_with_nothing_billed_has_no_rows():
    who = crafted.customer("Prospect")
    billing = customer_billing(customer=who, today=TODAY)
    assert (billing.months, billing.totals) == ([], [])


def year_of_invoices(name: str, months: int) -> Customer:
    who = crafted.customer(name)
    active_contract(who, start_date=dt.date(2025, 1, 1))
    for month in range(12 - months, 12):
        start = dt.date(2025 + (month + 11) // 12, (month + 11) % 12 + 1, 1)
        bill(who, f"{start:%Y-%m}", "500.00", f"{name}-{start:%Y-%m}")
        usage(who, start + dt.timedelta(days=4), 21)
    reconciliation_run(month=dt.date(2026, 5, 1), customer=who, today=TODAY)  # a missing invoice
    return who


@pytest.mark.parametrize("months", [2, 12])
def test_the_tab_takes_four_queries_whatever_the_number_of_invoices(
    months, django_assert_num_queries
):
    who = year_of_invoices(f"Q{months}", months)
    with django_assert_num_queries(4):  # comparison, contracts, invoices, cases
        billing = customer_billing(customer=who, today=TODAY)
        assert [m.expected for m in billing.months] == [D("510.00")] * months + [D("500.00")] * (
            12 - months
        )
    assert billing.invoice_count == months
    assert billing.case_count == 1  # May: missing (2 months) or short (12 months)


# The page.


def page_rows(content: str) -> dict[str, str]:
    """Each month's row of the tab as its visible text."""
    found = re.findall(r'<tr data-testid="billing-(\d{4}-\d\d)"[^>]*>(.*?)</tr>', content, re.S)
    return {month: visible(html) for month, html in found}


def visible(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.mark.parametrize("persona", ["agent", "manager", "ops_lead"])
def test_the_customer_page_shows_the_tab_to_each_role(client, request, persona, fjord):
    client.force_login(request.getfixturevalue(persona))
    with time_machine.travel(dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)):
        response = client.get(f"/admin/customers/customer/{fjord.pk}/change/")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'data-testid="overview-billing"' in content
    text = page_rows(content)
    assert list(text) == [f"2026-{m:02d}" for m in range(11, 0, -1)]
    assert text["2026-11"] == (
        "Nov 2026 this month 825.00 EUR fees 800.00 + 2 extra seats \N{MULTIPLICATION SIGN} 12.50 "
        "peak 32 users on 30 seats 800.00 EUR -25.00 F-11 Open "
        "800.00 EUR · paid 0.00 · due 30 Nov Amount mismatch"
    )
    assert text["2026-10"] == (
        "Oct 2026 800.00 EUR fees; no usage reported 1,600.00 EUR +800.00 "
        "F-10 Paid 800.00 EUR · paid 800.00 · due 31 Oct "
        "F-10-B Open Overdue 800.00 EUR · paid 0.00 · due 31 Oct Overdue invoice"
    )
    assert text["2026-09"] == (
        "Sep 2026 800.00 EUR fees; no usage reported 720.00 EUR -80.00 "
        "F-09 Paid 720.00 EUR · paid 720.00 · due 30 Sep Amount mismatch Acknowledged"
    )
    assert text["2026-07"] == (
        "Jul 2026 800.00 EUR fees; no usage reported — nothing issued -800.00 "
        "F-07 Void 800.00 EUR · paid 800.00 · due 31 Jul · not counted Missing invoice"
    )
    assert text["2026-06"] == "Jun 2026 — — — No contract and no invoice"
    assert text["2026-05"] == (
        "May 2026 500.00 EUR fees; no usage reported 500.00 USD not comparable "
        "USD invoiced, EUR contract F-05 Paid 500.00 USD · paid 500.00 · due 31 May "
        "Currency differs from contract"
    )
    assert text["2026-04"] == (
        "Apr 2026 500.00 EUR fees; no usage reported 502.00 EUR +2.00 within tolerance "
        "F-04 Paid 502.00 EUR · paid 502.00 · due 30 Apr —"
    )
    assert text["2026-03"] == (
        "Mar 2026 550.00 EUR fees 500.00 + 5 extra seats \N{MULTIPLICATION SIGN} 10.00 "
        "peak 25 users on 20 seats 550.00 EUR 0.00 "
        "F-03 Paid 550.00 EUR · paid 550.00 · due 31 Mar —"
    )
    assert text["2026-01"] == (
        "Jan 2026 — no active contract 500.00 EUR +500.00 "
        "F-01 Paid 500.00 EUR · paid 500.00 · due 31 Jan Invoice without active contract"
    )
    # Outside the tolerance is coloured; within it is not.
    for month, off in [
        ("2026-11", True),
        ("2026-05", True),
        ("2026-04", False),
        ("2026-08", False),
    ]:
        row = re.search(rf'data-testid="billing-{month}".*?</tr>', content, re.S).group()
        assert ('od-billing-off" data-testid="difference"' in row) is off, month
    # Links: each invoice and each finding.
    for invoice in Invoice.objects.filter(customer=fjord):
        assert f'href="/admin/billing/invoice/{invoice.pk}/change/"' in content
    for case in Case.objects.filter(customer=fjord, state__in=Case.OPEN_STATES):
        assert f'href="/admin/support/case/{case.pk}/change/"' in content
    waived = Case.objects.get(state="waived")
    assert (
        f'href="/admin/support/case/{waived.pk}/change/"'
        not in content.split('data-testid="overview-billing"')[1].split("</section>")[0]
    )
    totals = re.findall(r'<tr data-testid="billing-total-(\w+)">(.*?)</tr>', content, re.S)
    assert [(currency, visible(html)) for currency, html in totals] == [
        ("EUR", "Total, 11 months 6,075.00 EUR 5,972.00 EUR -103.00 11 invoices 6 open findings"),
        ("USD", "0.00 USD 500.00 USD +500.00"),
    ]
    assert f"/admin/support/case/inbox/?customer={fjord.external_id}" in content


def test_the_page_of_a_customer_without_billing_says_so(client, agent):
    client.force_login(agent)
    who = crafted.customer("Prospect")
    response = client.get(f"/admin/customers/customer/{who.pk}/change/")
    assert "No contract and no invoice in the last 12 months." in response.content.decode()
