"""Customer health for the digest: each flag's rule at its edges, and the selector over
all customers in a fixed number of queries."""

import datetime as dt
from decimal import Decimal

import pytest

from audit.bulk import bulk_create_with_history
from audit.context import acting_as
from customers.models import Contract, Customer, UsageDaily
from opsdesk.health.flags import (
    Flag,
    UsageDay,
    customer_health,
    dormant,
    error_rate_anomaly,
    no_usage_data,
    renewal_soon,
    urgent_tickets,
    usage_days,
    usage_drop,
)
from tests import builders
from tests.records import populate

D = dt.date(2026, 11, 22)  # the digest's date: it covers usage up to 21 Nov


def day(**figures) -> UsageDay:
    """A reported 21 Nov: 1,000 requests, 4 errors, WAU 40 both weeks, 28 days of
    history at a 0.4% median."""
    return UsageDay(
        **{
            "customer_id": 1,
            "date": D - dt.timedelta(days=1),
            "wau": 40,
            "wau_week_ago": 40,
            "requests": 1000,
            "errors": 4,
            "baseline_median": 0.004,
            "baseline_mad": 0.001,
            "baseline_days": 28,
            **figures,
        }
    )


# --- error-rate anomaly -------------------------------------------------------------------


def test_an_error_rate_far_above_the_usual_is_an_anomaly_against_the_median():
    assert error_rate_anomaly(day(errors=79)) == Flag(
        "error_rate",
        "Error-rate anomaly",
        "error rate 7.9% (79 of 1,000 requests) vs 0.4% median of 28 days",
        0.079,
    )


def test_an_error_rate_below_the_floor_is_no_anomaly_however_unusual():
    assert error_rate_anomaly(day(errors=19)) is None  # 1.9%, 15 sigmas above the median


def test_an_error_rate_exactly_at_the_floor_counts_when_above_the_baseline():
    flag = error_rate_anomaly(day(errors=20))
    assert flag.reason == "error rate 2.0% (20 of 1,000 requests) vs 0.4% median of 28 days"


def test_an_error_rate_within_three_robust_deviations_is_no_anomaly():
    # Limit: 3% + 3 x 1.4826 x 0.5% = 5.22%.
    usual = {"baseline_median": 0.03, "baseline_mad": 0.005}
    assert error_rate_anomaly(day(errors=52, **usual)) is None
    assert error_rate_anomaly(day(errors=53, **usual)).reason == (
        "error rate 5.3% (53 of 1,000 requests) vs 3.0% median of 28 days"
    )


def test_an_error_rate_equal_to_the_limit_is_not_above_it():
    # No spread at all: the limit is the median itself.
    flat = {"baseline_median": 0.03, "baseline_mad": 0.0}
    assert error_rate_anomaly(day(errors=30, **flat)) is None
    assert error_rate_anomaly(day(errors=31, **flat)) is not None


def test_fewer_than_100_requests_are_never_an_anomaly():
    assert error_rate_anomaly(day(requests=99, errors=50)) is None
    assert error_rate_anomaly(day(requests=100, errors=50)) is not None


def test_zero_requests_and_no_data_are_no_anomaly(settings):
    settings.OPSDESK_HEALTH_ERROR_RATE_MIN_REQUESTS = 0
    assert error_rate_anomaly(day(requests=0, errors=0)) is None
    assert error_rate_anomaly(None) is None


def test_with_fewer_than_7_days_of_history_the_floor_alone_decides():
    new = {"baseline_median": 0.05, "baseline_mad": 0.0, "baseline_days": 6}
    assert error_rate_anomaly(day(errors=20, **new)) == Flag(
        "error_rate",
        "Error-rate anomaly",
        "error rate 2.0% (20 of 1,000 requests) vs the 2% floor; 6 days of history",
        0.02,
    )
    assert error_rate_anomaly(day(errors=19, **new)) is None
    # From 7 days on, the baseline decides: 2% is below this customer's usual 5%.
    assert error_rate_anomaly(day(errors=20, **{**new, "baseline_days": 7})) is None


def test_without_any_history_the_floor_decides():
    none = {"baseline_median": None, "baseline_mad": None, "baseline_days": 0}
    assert error_rate_anomaly(day(errors=25, **none)).reason == (
        "error rate 2.5% (25 of 1,000 requests) vs the 2% floor; 0 days of history"
    )
    one = {"baseline_median": 0.001, "baseline_mad": 0.0, "baseline_days": 1}
    assert error_rate_anomaly(day(errors=25, **one)).reason == (
        "error rate 2.5% (25 of 1,000 requests) vs the 2% floor; 1 day of history"
    )


def test_the_error_rate_thresholds_are_settings(settings):
    settings.OPSDESK_HEALTH_ERROR_RATE_FLOOR = 0.1
    assert error_rate_anomaly(day(errors=79)) is None
    settings.OPSDESK_HEALTH_ERROR_RATE_FLOOR = 0.015
    settings.OPSDESK_HEALTH_MIN_HISTORY_DAYS = 30
    assert error_rate_anomaly(day(errors=15)).reason == (
        "error rate 1.5% (15 of 1,000 requests) vs the 1.5% floor; 28 days of history"
    )


# --- usage drop --------------------------------------------------------------------------


def test_wau_down_30_percent_on_the_week_is_a_usage_drop():
    assert usage_drop(day(wau=7, wau_week_ago=10)) == Flag(
        "usage_drop", "Usage drop", "WAU 7 vs 10 a week earlier (-30%)", 0.3
    )
    drop = usage_drop(day(wau=26, wau_week_ago=40))
    assert (drop.reason, drop.value) == ("WAU 26 vs 40 a week earlier (-35%)", 0.35)


def test_wau_down_less_than_30_percent_is_no_drop():
    assert usage_drop(day(wau=71, wau_week_ago=100)) is None  # -29%
    assert usage_drop(day(wau=50, wau_week_ago=40)) is None  # growth


def test_a_drop_from_fewer_than_5_weekly_users_is_no_drop():
    assert usage_drop(day(wau=0, wau_week_ago=4)) is None
    assert usage_drop(day(wau=3, wau_week_ago=5)).reason == "WAU 3 vs 5 a week earlier (-40%)"


def test_no_report_a_week_earlier_or_none_at_all_is_no_drop():
    assert usage_drop(day(wau=0, wau_week_ago=None)) is None
    assert usage_drop(None) is None


def test_the_usage_drop_thresholds_are_settings(settings):
    settings.OPSDESK_HEALTH_USAGE_DROP = 0.5
    assert usage_drop(day(wau=7, wau_week_ago=10)) is None
    settings.OPSDESK_HEALTH_USAGE_DROP_MIN_WAU = 20
    assert usage_drop(day(wau=0, wau_week_ago=19)) is None
    settings.OPSDESK_HEALTH_USAGE_DROP_MIN_WAU = 0
    assert usage_drop(day(wau=0, wau_week_ago=0)) is None  # no change from nothing


# --- dormant -----------------------------------------------------------------------------


def at(date: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(date, dt.time(hour), tzinfo=dt.UTC)


def test_no_login_for_14_days_is_dormant():
    assert dormant(date=D, last_login_at=at(D - dt.timedelta(days=14)), active_since=None) == (
        Flag("dormant", "Dormant", "no login for 14 days (last 8 Nov 2026)", 14.0)
    )


def test_a_login_13_days_ago_is_not_dormant():
    last = at(D - dt.timedelta(days=13), hour=0)
    assert dormant(date=D, last_login_at=last, active_since=dt.date(2026, 1, 1)) is None


def test_days_without_login_are_counted_in_utc():
    # 9 Nov 01:30 in UTC, though 8 Nov in Sao Paulo.
    last = dt.datetime(2026, 11, 8, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    assert dormant(date=D, last_login_at=last, active_since=None) is None


def test_never_logging_in_is_dormant_once_an_active_contract_has_run_14_days():
    assert dormant(date=D, last_login_at=None, active_since=D - dt.timedelta(days=14)) == Flag(
        "dormant", "Dormant", "no login ever; active contract since 8 Nov 2026", 14.0
    )
    ever = dormant(date=D, last_login_at=None, active_since=D - dt.timedelta(days=40))
    assert ever.value == 40.0  # days since the contract started
    assert dormant(date=D, last_login_at=None, active_since=D - dt.timedelta(days=13)) is None
    assert dormant(date=D, last_login_at=None, active_since=None) is None


def test_the_dormancy_threshold_is_a_setting(settings):
    settings.OPSDESK_HEALTH_DORMANT_DAYS = 30
    assert dormant(date=D, last_login_at=at(D - dt.timedelta(days=29)), active_since=None) is None


# --- no usage data, renewal soon, urgent tickets -------------------------------------------


def test_no_report_for_the_day_before_is_no_usage_data():
    assert no_usage_data(date=D, day=None) == Flag(
        "no_data", "No usage data", "no usage report for 21 Nov 2026", 1.0
    )
    assert no_usage_data(date=D, day=day(requests=0, errors=0, wau=0)) is None


def test_a_contract_ending_within_30_days_is_a_renewal_soon():
    assert renewal_soon(date=D, contract_end=D + dt.timedelta(days=30)) == Flag(
        "renewal_soon", "Renewal soon", "contract ends 22 Dec 2026, in 30 days", 30.0
    )
    assert renewal_soon(date=D, contract_end=D + dt.timedelta(days=1)).reason == (
        "contract ends 23 Nov 2026, in 1 day"
    )
    today = renewal_soon(date=D, contract_end=D)
    assert (today.reason, today.value) == ("contract ends 22 Nov 2026, today", 0.0)


def test_a_contract_ending_later_ended_or_open_ended_is_no_renewal_soon(settings):
    assert renewal_soon(date=D, contract_end=D + dt.timedelta(days=31)) is None
    assert renewal_soon(date=D, contract_end=D - dt.timedelta(days=1)) is None
    assert renewal_soon(date=D, contract_end=None) is None
    settings.OPSDESK_HEALTH_RENEWAL_DAYS = 60
    assert renewal_soon(date=D, contract_end=D + dt.timedelta(days=31)) is not None


def test_open_urgent_tickets_are_flagged_with_their_number():
    assert urgent_tickets(0) is None
    assert urgent_tickets(1) == Flag(
        "urgent_tickets", "Urgent tickets", "1 open urgent ticket", 1.0
    )
    assert (urgent_tickets(3).reason, urgent_tickets(3).value) == ("3 open urgent tickets", 3.0)


# --- the selector --------------------------------------------------------------------------


def contract(customer, *, start=dt.date(2026, 1, 1), end=None, status=Contract.Status.ACTIVE):
    return builders.contract(
        customer=customer,
        seats=50,
        monthly_fee=Decimal("1000.00"),
        start_date=start,
        end_date=end,
        status=status,
    )


def report(customer, days_ago, *, wau=40, requests=1000, errors=4, login_days_ago=None):
    date = D - dt.timedelta(days=days_ago)
    return UsageDaily(
        customer=customer,
        date=date,
        active_users_1d=min(wau, 10),
        active_users_7d=wau,
        requests=requests,
        errors=errors,
        last_login_at=at(D - dt.timedelta(days=login_days_ago or days_ago), hour=9),
    )


def history(customer, days=range(1, 30), **figures) -> list[UsageDaily]:
    """29 days (D-29..D-1) of steady usage: 0.3/0.4/0.5% error rates, median 0.4%."""
    return [report(customer, n, errors=3 + n % 3, **figures) for n in days]


@pytest.fixture
def world(db, manager):
    """Ten customers of 22 Nov 2026 with one story each (and one churned)."""
    with acting_as("test:fixture"):
        c = {
            name: builders.customer(
                external_id=name.lower(),
                name=name,
                account_manager=manager,
                status=Customer.Status.CHURNED if name == "Gone" else Customer.Status.ACTIVE,
            )
            for name in (
                "Steady", "Spiking", "Noisy", "Newcomer", "Shrinking",
                "Sleepy", "Silent", "Tiny", "Never", "Gone",
            )
        }  # fmt: skip
        for customer in c.values():
            if customer.name == "Newcomer":
                contract(customer, start=D - dt.timedelta(days=10))
            elif customer.name == "Silent":
                contract(customer, end=D + dt.timedelta(days=10))
                contract(customer, end=D - dt.timedelta(days=40), status=Contract.Status.ENDED)
            elif customer.name == "Never":
                contract(customer, start=D - dt.timedelta(days=30))
            else:
                contract(customer)
        rows = [
            *history(c["Steady"]),
            *history(c["Spiking"], days=range(2, 30)),
            report(c["Spiking"], 1, errors=79),
            # Rates of 1% and 5% alternate: 6% is within this customer's usual spread.
            *(report(c["Noisy"], n, errors=10 if n % 2 else 50) for n in range(2, 30)),
            report(c["Noisy"], 1, errors=60),
            *(report(c["Newcomer"], n, errors=1) for n in range(2, 7)),
            report(c["Newcomer"], 1, errors=25),
            *history(c["Shrinking"], days=range(2, 30)),
            report(c["Shrinking"], 1, wau=26),
            *history(c["Sleepy"], login_days_ago=20),
            *history(c["Silent"], days=range(2, 30)),
            *history(c["Tiny"], days=range(2, 30)),
            report(c["Tiny"], 1, requests=50, errors=10),
            *history(c["Gone"], days=range(2, 30)),
            report(c["Gone"], 1, errors=500),
        ]
        bulk_create_with_history(rows, UsageDaily)
        for priority, status in [
            ("urgent", "open"),
            ("urgent", "pending"),
            ("urgent", "solved"),
            ("high", "open"),
        ]:
            builders.ticket(customer=c["Tiny"], subject="Down", priority=priority, status=status)
    return c


def test_exactly_the_customers_with_a_story_are_flagged_and_why(world):
    health = customer_health(date=D)
    assert {h.name: [(f.code, f.reason) for f in h.flags] for h in health} == {
        "Never": [
            ("dormant", "no login ever; active contract since 23 Oct 2026"),
            ("no_data", "no usage report for 21 Nov 2026"),
        ],
        "Newcomer": [
            (
                "error_rate",
                "error rate 2.5% (25 of 1,000 requests) vs the 2% floor; 5 days of history",
            )
        ],
        "Noisy": [],
        "Shrinking": [("usage_drop", "WAU 26 vs 40 a week earlier (-35%)")],
        "Silent": [
            ("no_data", "no usage report for 21 Nov 2026"),
            ("renewal_soon", "contract ends 2 Dec 2026, in 10 days"),
            (
                "renewal_at_risk",
                "contract ends 2 Dec 2026 (in 10 days) with 1 other signal: No usage data",
            ),
        ],
        "Sleepy": [("dormant", "no login for 20 days (last 2 Nov 2026)")],
        "Spiking": [
            ("error_rate", "error rate 7.9% (79 of 1,000 requests) vs 0.4% median of 28 days")
        ],
        "Steady": [],
        "Tiny": [("urgent_tickets", "2 open urgent tickets")],
    }
    assert [h.name for h in health if h.needs_attention] == [
        "Never", "Newcomer", "Shrinking", "Silent", "Sleepy", "Spiking", "Tiny",
    ]  # fmt: skip


def test_the_figures_are_those_of_the_day_before_and_a_week_before_that(world, manager):
    [shrinking] = customer_health(date=D, customer_ids=[world["Shrinking"].pk])
    assert shrinking == type(shrinking)(
        customer_id=world["Shrinking"].pk,
        name="Shrinking",
        external_id="shrinking",
        account_manager_id=manager.pk,
        wau=26,
        wau_week_ago=40,
        wau_change=-0.35,
        last_login_at=at(D - dt.timedelta(days=1), hour=9),
        requests=1000,
        errors=4,
        error_rate=0.004,
        contract_end=None,
        urgent_open_tickets=0,
        contracted_seats=50,
        overdue_invoices=0,
        billing_findings=0,
        sla_breached_tickets=0,
        onboarding_days_overdue=0,
        flags=(Flag("usage_drop", "Usage drop", "WAU 26 vs 40 a week earlier (-35%)", 0.35),),
    )
    [silent] = customer_health(date=D, customer_ids=[world["Silent"].pk])
    assert (silent.wau, silent.wau_change, silent.requests, silent.error_rate) == (
        None,
        None,
        None,
        None,
    )
    assert silent.last_login_at == at(D - dt.timedelta(days=2), hour=9)  # from 20 Nov
    assert silent.contract_end == D + dt.timedelta(days=10)


def test_a_digest_of_an_earlier_date_sees_only_what_was_reported_before_it(world):
    [spiking] = customer_health(date=D - dt.timedelta(days=1), customer_ids=[world["Spiking"].pk])
    assert (spiking.errors, spiking.flags) == (5, ())  # 20 Nov: 5 of 1,000
    assert spiking.last_login_at == at(D - dt.timedelta(days=2), hour=9)


def test_churned_customers_and_customers_not_asked_for_are_left_out(world):
    ids = [world["Gone"].pk, world["Tiny"].pk, world["Steady"].pk]
    assert [h.name for h in customer_health(date=D, customer_ids=ids)] == ["Steady", "Tiny"]
    assert customer_health(date=D, customer_ids=[]) == []


def test_the_baseline_is_the_previous_28_days_with_requests(db):
    with acting_as("test:fixture"):
        acme = builders.customer(external_id="acme", name="Acme")
        rows = [report(acme, 30, errors=900)]  # a day too early for the baseline
        # 28 days of 0.1%, 0.2%, ... 2.8%: median 1.45%, MAD 0.7%.
        rows += [report(acme, n, errors=30 - n) for n in range(2, 30)]
        rows += [report(acme, 1, errors=800)]  # the day itself is not its own baseline
        bulk_create_with_history(rows, UsageDaily)
    [last] = usage_days(customer_ids=[acme.pk], first=D - dt.timedelta(days=1), last=D)
    assert (last.date, last.baseline_days) == (D - dt.timedelta(days=1), 28)
    assert last.baseline_median == pytest.approx(0.0145)
    assert last.baseline_mad == pytest.approx(0.007)
    # A day without requests has no rate: it leaves the baseline.
    quiet = UsageDaily.objects.get(customer=acme, date=D - dt.timedelta(days=2))
    quiet.requests = quiet.errors = 0
    with acting_as("test:fixture"):
        quiet.save()
    [last] = usage_days(customer_ids=[acme.pk], first=D - dt.timedelta(days=1), last=D)
    assert last.baseline_days == 27


@pytest.mark.parametrize("customers", [2, 20])
def test_the_health_of_all_customers_costs_two_queries_whatever_their_number(
    db, django_assert_num_queries, customers
):
    populate(customers)
    with django_assert_num_queries(2):
        health = customer_health(date=D)
    assert len(health) == customers
