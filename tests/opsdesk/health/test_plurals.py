"""Counts agree with their nouns (kit.text.count_of, Django's pluralize): 0, 1 and 2 of
each in the digest, and a contract's seats (a contract has at least one)."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.bulk import update_with_history
from audit.context import acting_as
from customers.models import Contract
from kit.text import count_of
from opsdesk.health.digest import digest_build, recipient_for
from tests import builders
from tests.opsdesk.health.followed import DAY, follow

pytestmark = pytest.mark.django_db


def test_a_count_agrees_with_its_noun():
    assert [count_of(n, "seat") for n in (0, 1, 2, 1000)] == [
        "0 seats",
        "1 seat",
        "2 seats",
        "1,000 seats",
    ]
    assert count_of(1, "match", "matches") == "1 match"
    assert count_of(2, "match", "matches") == "2 matches"


@pytest.mark.parametrize(
    ("healthy", "renewing", "silent", "subject", "heading"),
    [
        (0, 0, 0, "nobody needs attention (0 customers)", "Nobody needs attention today"),
        (1, 0, 0, "nobody needs attention (1 customer)", "Nobody needs attention today"),
        (2, 0, 0, "nobody needs attention (2 customers)", "Nobody needs attention today"),
        # A renewing customer has one signal (renewal soon), a silent one two (dormant,
        # no usage data).
        (0, 1, 0, "1 new signal, 0 still open (1 customer)", "1 new signal, 0 still open"),
        (1, 1, 0, "1 new signal, 0 still open (2 customers)", "1 new signal, 0 still open"),
        (0, 0, 1, "2 new signals, 0 still open (1 customer)", "2 new signals, 0 still open"),
        (1, 1, 1, "3 new signals, 0 still open (3 customers)", "3 new signals, 0 still open"),
    ],
)
def test_the_digest_counts_in_agreement(manager, healthy, renewing, silent, subject, heading):
    for n in range(healthy):
        follow(f"Healthy {n}", manager)
    for n in range(renewing):
        customer = follow(f"Renewing {n}", manager)
        with acting_as("test:fixture"):
            update_with_history(
                Contract.objects.filter(customer=customer), end_date=DAY + dt.timedelta(days=10)
            )
    for n in range(silent):
        follow(f"Silent {n}", manager, usage_days=0)

    digest = digest_build(date=DAY, recipient=recipient_for(f"user:{manager.pk}"))

    assert digest.subject == f"Usage digest Sun 22 Nov 2026: {subject}"
    assert heading in digest.html


@pytest.mark.parametrize(("seats", "text"), [(1, "1 seat"), (2, "2 seats")])
def test_a_contract_reads_its_seats_in_agreement(seats, text):
    with acting_as("test:fixture"):
        contract = builders.contract(seats=seats)
    assert str(Contract.objects.get(pk=contract.pk)).endswith(f" · {text}")
