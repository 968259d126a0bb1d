"""Customers followed by an account manager, with the usage the digest reads."""

from __future__ import annotations

import datetime as dt

from audit.context import acting_as
from customers.models import Customer, UsageDaily
from tests import builders
from tests.records import active_contract

# The digest's date: usage is reported up to the day before.
DAY = dt.date(2026, 11, 22)


def follow(name: str, manager=None, *, usage_days: int = 20, status="active") -> Customer:
    """A customer with ``usage_days`` of steady, healthy usage up to DAY - 1 and a
    contract far from renewal."""
    with acting_as("test:fixture"):
        customer = builders.customer(
            external_id=name.lower(), name=name, account_manager=manager, status=status
        )
        active_contract(customer, end_date=dt.date(2027, 12, 31))
        for back in range(1, usage_days + 1):
            day = DAY - dt.timedelta(days=back)
            UsageDaily.objects.create(
                customer=customer,
                date=day,
                active_users_1d=8,
                active_users_7d=15,
                last_login_at=dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC),
                requests=1000,
                errors=2,
            )
    return customer
