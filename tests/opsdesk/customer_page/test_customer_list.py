"""The customer list: whose customers (me, anyone, unassigned, one manager) and each
customer's health today, the digest's own flags, at a cost that does not grow with the page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.context import acting_as
from customers.models import Customer, UsageDaily
from opsdesk.health.models import HealthSignal
from tests import builders

pytestmark = pytest.mark.django_db

LIST = reverse("admin:customers_customer_changelist")
TODAY = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)


def names(response) -> list[str]:
    return sorted(str(customer) for customer in response.context["cl"].result_list)


@pytest.fixture
def three(customer, manager, other_manager):
    """Acme (Alice's), Bolt (Bob's) and Cove (nobody's)."""
    with acting_as("test:fixture"):
        builders.customer(external_id="bolt", name="Bolt", account_manager=other_manager)
        builders.customer(external_id="cove", name="Cove", account_manager=None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ["Acme Corp", "Bolt", "Cove"]),
        ("me", ["Acme Corp"]),
        ("none", ["Cove"]),
    ],
)
def test_the_list_narrows_to_my_customers_or_the_unassigned(
    client, manager, three, value, expected
):
    client.force_login(manager)
    query = {} if value is None else {"account_manager__id__exact": value}
    assert names(client.get(LIST, query)) == expected


def test_a_manager_named_in_the_filter_is_that_managers_customers(
    client, manager, other_manager, three
):
    client.force_login(manager)
    response = client.get(LIST, {"account_manager__id__exact": other_manager.pk})
    assert names(response) == ["Bolt"]
    (spec,) = [f for f in response.context["cl"].filter_specs if f.title == "account manager"]
    choices = list(spec.choices(response.context["cl"]))
    assert [(c["display"], c["selected"]) for c in choices] == [
        ("Anyone", False),
        ("Me", False),
        ("Unassigned", False),
        ("Alice", False),
        ("Bob", True),
    ]


def test_a_manager_that_is_not_an_id_is_refused_not_a_500(client, manager, three):
    client.force_login(manager)
    response = client.get(LIST, {"account_manager__id__exact": "abc"})
    assert response.status_code in (200, 302)
    assert "abc" not in names(client.get(LIST)) if response.status_code == 200 else True


def test_the_health_column_shows_todays_flags_with_their_reasons(client, superuser, customer):
    with acting_as("test:fixture"):
        UsageDaily.objects.create(
            customer=customer,
            date=dt.date(2026, 11, 21),
            active_users_1d=5,
            active_users_7d=30,
            requests=10,
            errors=0,
            last_login_at=dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC),
        )
        builders.customer(external_id="quiet", name="Quiet", status=Customer.Status.CHURNED)
    client.force_login(superuser)
    with time_machine.travel(TODAY, tick=False):
        page = client.get(LIST).content.decode()
    rows = re.findall(r"<tr[^>]*>.*?</tr>", page, re.DOTALL)
    acme = next(row for row in rows if "Acme Corp" in row)
    quiet = next(row for row in rows if "Quiet" in row)
    assert '<span class="od-pill od-active">healthy</span>' in acme
    assert "od-pill" not in quiet.split("Quiet", 1)[1].split("</tr>")[0].replace("od-pill od-", "x")


def test_a_flagged_customer_shows_each_flag(client, superuser, customer):
    client.force_login(superuser)
    with time_machine.travel(TODAY, tick=False):
        page = client.get(LIST).content.decode()
    # No usage reported for 21 Nov: the digest's "no usage data", with its reason.
    assert '<span class="od-pill od-open" title="no usage report for ' in page
    assert ">No usage data</span>" in page


def test_the_flags_of_a_customer_with_open_signals_lead_to_them(client, superuser, customer):
    with acting_as("test:fixture"):
        other = builders.customer(external_id="bolt", name="Bolt", status=Customer.Status.ACTIVE)
        for who, state in ((customer, "open"), (other, "resolved")):
            HealthSignal.objects.create(
                customer=who,
                kind="no_data",
                label="No usage data",
                state=state,
                opened_on=dt.date(2026, 11, 20),
                resolved_on=dt.date(2026, 11, 21) if state == "resolved" else None,
            )
    client.force_login(superuser)
    with time_machine.travel(TODAY, tick=False):
        page = client.get(LIST).content.decode()
    rows = re.findall(r"<tr[^>]*>.*?</tr>", page, re.DOTALL)
    acme = next(row for row in rows if "Acme Corp" in row)
    bolt = next(row for row in rows if "Bolt" in row)
    link = f'<a href="/admin/customers/customer/{customer.pk}/change/#signals"'
    assert link in acme and ">No usage data</span>" in acme.split(link)[1]
    # Flagged live too, but its only signal is resolved: no link.
    assert "#signals" not in bolt and ">No usage data</span>" in bolt


def test_the_list_costs_the_same_for_1_customer_and_20(client, superuser):
    client.force_login(superuser)

    def cost(n: int) -> int:
        with acting_as("test:fixture"):
            for i in range(Customer.objects.count(), n):
                builders.customer(external_id=f"t-{i}", name=f"Customer {i:02}")
        client.get(LIST)  # warm the per-process caches
        with CaptureQueriesContext(connection) as queries:
            response = client.get(LIST)
        assert len(response.context["cl"].result_list) == n
        return len(queries)

    one = cost(1)
    assert cost(20) == one
    assert one == 7  # session, user, count, page, managers of the filter, health (2)
