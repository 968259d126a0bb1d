"""The service levels as support.0019 installs them (docs/product.md#service-levels), as a
pytest plugin (registered in tests/conftest.py): a test that counts on a stored policy
asks for ``sla_policies`` rather than on the migration's rows, which a transactional test
run before it may have flushed. Helpers to read the default calendar and a target."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings

from audit.context import acting_as
from support import sla
from support.models import SlaPolicy, SlaTarget

# name: (plans, is_default, priorities around the clock), as support.0019.
DEFAULTS = {
    "Starter": (["starter"], False, ()),
    "Growth": (["growth"], False, ()),
    "Enterprise": (["enterprise"], False, ("urgent", "high")),
    "Default": ([], True, ()),
}


def business_hours() -> sla.Calendar:
    """Mon-Fri 09:00-17:00 in ``OPSDESK_TIME_ZONE``, no holidays: the defaults' calendar."""
    return sla.Calendar(zone=settings.TIME_ZONE, week=sla.week_parse(sla.DEFAULT_HOURS))


def first_response(priority: str) -> dt.timedelta:
    return sla.default_targets()[priority].first_response


@pytest.fixture
def sla_policies(db) -> dict[str, SlaPolicy]:
    """The four default policies (Starter, Growth, Enterprise, Default), made again if a
    flush removed them, by name."""
    policies = {}
    with acting_as("test:fixture"):
        for name, (plans, is_default, around_the_clock) in DEFAULTS.items():
            policy, made = SlaPolicy.objects.get_or_create(
                name=name,
                defaults={
                    "plans": plans,
                    "is_default": is_default,
                    "time_zone": settings.TIME_ZONE,
                    "business_hours": sla.DEFAULT_HOURS,
                },
            )
            if made:
                for priority, target in sla.default_targets(
                    around_the_clock=around_the_clock
                ).items():
                    SlaTarget.objects.create(
                        policy=policy,
                        priority=priority,
                        first_response_minutes=target.first_response // dt.timedelta(minutes=1),
                        next_response_minutes=target.next_response // dt.timedelta(minutes=1),
                        resolution_minutes=target.resolution // dt.timedelta(minutes=1),
                        business_hours=target.business_hours,
                    )
            policies[name] = policy
    return policies


def first_response_clock(
    due: dt.datetime | None, *, status: str = "open", target: dt.timedelta | None = None
) -> dict:
    """The stored clock fields of a ticket whose first response is due at ``due`` and is
    the clock that matters (its warning a quarter of ``target``, 8 h, before), as
    support.ticket_sla would store them; none while it waits on the customer, is solved
    or has no deadline. For tests that make tickets directly."""
    if due is None:
        return {}
    warn = due - (target or dt.timedelta(hours=8)) * (1 - settings.OPSDESK_SLA_WARN_SHARE)
    if status != "open":
        return {"first_response_due_at": due}
    return {
        "first_response_due_at": due,
        "first_response_warn_at": warn,
        "sla_due_at": due,
        "sla_warn_at": warn,
    }
