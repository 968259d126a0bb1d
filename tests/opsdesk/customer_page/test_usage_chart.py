"""The customer page's usage chart: 90 days of WAU and error rate, flagged days marked by
the digest's own rules."""

import datetime as dt
import json

import pytest
import time_machine

from audit.bulk import bulk_create_with_history
from audit.context import acting_as
from customers.models import UsageDaily
from opsdesk.customer_page.selectors import usage_chart
from opsdesk.health.flags import customer_health

pytestmark = pytest.mark.django_db

LAST = dt.date(2026, 11, 21)  # the last complete day on 22 Nov


def seed(customer):
    """60 reported days up to 21 Nov, with a gap on 1 Nov, an error spike on 10 Nov and
    WAU falling from 40 to 20 from 15 Nov on."""
    rows = []
    for n in range(60):
        date = LAST - dt.timedelta(days=n)
        if date == dt.date(2026, 11, 1):
            continue
        rows.append(
            UsageDaily(
                customer=customer,
                date=date,
                active_users_1d=5,
                active_users_7d=20 if date >= dt.date(2026, 11, 15) else 40,
                requests=1000,
                errors=90 if date == dt.date(2026, 11, 10) else 3 + n % 3,
            )
        )
    with acting_as("test:fixture"):
        bulk_create_with_history(rows, UsageDaily)


def test_the_chart_has_90_days_with_the_flags_the_digest_raises(
    customer, django_assert_num_queries
):
    seed(customer)
    with django_assert_num_queries(1):
        chart = usage_chart(customer=customer, last=LAST)
    assert len(chart.points) == 90
    assert (chart.points[0].date, chart.points[-1].date) == (dt.date(2026, 8, 24), LAST)
    assert [p.date for p in chart.points if p.day is None] == [
        dt.date(2026, 8, 24) + dt.timedelta(days=n) for n in range(30)
    ] + [dt.date(2026, 11, 1)]
    assert [(p.date, [f.code for f in p.flags]) for p in chart.flagged] == [
        (dt.date(2026, 11, 21), ["usage_drop"]),
        (dt.date(2026, 11, 20), ["usage_drop"]),
        (dt.date(2026, 11, 19), ["usage_drop"]),
        (dt.date(2026, 11, 18), ["usage_drop"]),
        (dt.date(2026, 11, 17), ["usage_drop"]),
        (dt.date(2026, 11, 16), ["usage_drop"]),
        (dt.date(2026, 11, 15), ["usage_drop"]),
        (dt.date(2026, 11, 10), ["error_rate"]),
    ]
    # The same flags, with the same reasons, as the digests of the next mornings.
    for point in chart.flagged:
        [health] = customer_health(
            date=point.date + dt.timedelta(days=1), customer_ids=[customer.pk]
        )
        digest = [f for f in health.flags if f.code in ("error_rate", "usage_drop")]
        assert list(point.flags) == digest


def test_the_chart_data_marks_flagged_days_on_their_line(customer):
    seed(customer)
    data = json.loads(usage_chart(customer=customer, last=LAST).data)
    assert data["labels"][:2] == ["24 Aug", "25 Aug"]
    assert data["labels"][-1] == "21 Nov"
    wau, rate, anomalies, drops = (d["data"] for d in data["datasets"])
    assert [d["label"] for d in data["datasets"]] == [
        "WAU",
        "Error rate (%)",
        "Error-rate anomaly",
        "Usage drop",
    ]
    assert wau[29:32] == [None, 40, 40]  # reports start on 23 Sep
    assert wau[-1] == 20
    assert rate[-3:] == [0.5, 0.4, 0.3]
    assert [i for i, v in enumerate(anomalies) if v is not None] == [78]  # 10 Nov
    assert anomalies[78] == 9.0
    assert [v for v in drops if v is not None] == [20] * 7


@time_machine.travel(dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC), tick=False)
def test_the_customer_page_draws_the_chart_and_lists_the_flagged_days(client, agent, customer):
    seed(customer)
    client.force_login(agent)
    content = client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    assert 'data-testid="overview-usage-chart"' in content
    assert '<canvas class="chart"' in content and 'data-type="line"' in content
    assert "&quot;Error-rate anomaly&quot;" in content  # the data, escaped in its attribute
    assert "WAU 20 vs 40 a week earlier (-50%)" in content
    # 1 Nov, unreported, is not in the baseline of 10 Nov.
    assert "error rate 9.0% (90 of 1,000 requests) vs 0.4% median of 27 days" in content


@time_machine.travel(dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC), tick=False)
def test_a_customer_without_usage_gets_no_empty_chart(client, agent, customer):
    client.force_login(agent)
    content = client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    assert "No usage reported in the last 90 days." in content
    assert '<canvas class="chart"' not in content
