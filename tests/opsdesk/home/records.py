"""What the home page's tests share: how many rows a linked page lists, and seeded rows."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from audit.context import acting_as
from customers.models import UsageDaily
from tests import builders


def listed(client, url: str) -> int:
    """How many rows the page at ``url`` lists (all its pages): a changelist's result
    count, or an opsdesk list page's paginator count."""
    assert url, "a count without a link"
    response = client.get(url)
    assert response.status_code == 200, url
    context = response.context
    if "cl" in context:
        assert not context.get("ERROR"), url
        return context["cl"].result_count
    messages = [str(m) for m in context.get("messages", [])]
    assert not any("not understood" in m for m in messages), (url, messages)
    return context["paginator"].count


def healthy(customer, *, date: dt.date) -> None:
    """Usage for ``date`` - 1 that raises no digest flag (steady WAU, a login that day)."""
    yesterday = date - dt.timedelta(days=1)
    login = timezone.make_aware(dt.datetime.combine(yesterday, dt.time(9)), dt.UTC)
    with acting_as("test:fixture"):
        for day in (yesterday, yesterday - dt.timedelta(days=7)):
            UsageDaily.objects.create(
                customer=customer,
                date=day,
                active_users_1d=5,
                active_users_7d=10,
                last_login_at=login,
                requests=50,
                errors=0,
            )


def managed_customer(manager, *, date: dt.date, healthy_usage: bool = True, **fields):
    """An active customer of ``manager`` with an open-ended active contract."""
    with acting_as("test:fixture"):
        customer = builders.customer(account_manager=manager, **{"status": "active", **fields})
        builders.contract(customer=customer)
    if healthy_usage:
        healthy(customer, date=date)
    return customer
