"""A billing finding's age counts from when the problem began, not from the run that found
it: an overdue invoice from its due date, a finding about a month from that month."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from billing.reconciliation import reconciliation_run
from opsdesk.casework.inbox import case_age
from support.models import Case
from tests.billing.crafted import OCTOBER, TODAY, month  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


def test_findings_record_the_day_their_problem_began(month):  # noqa: F811
    with time_machine.travel(NOW, tick=False):
        reconciliation_run(month=OCTOBER, today=TODAY)
    late = Case.objects.get(kind="overdue_invoice")
    missing = Case.objects.get(kind="missing_invoice", customer=month["Missing"])
    assert late.details["since"] == "2026-11-06"
    assert late.began_at == dt.datetime(2026, 11, 6, tzinfo=dt.UTC)
    assert missing.details["since"] == "2026-10-01"
    assert missing.began_at == dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    assert late.opened_at == NOW
    # The inbox's age: two weeks for the invoice due on 6 Nov, seven weeks for October.
    assert case_age(late, NOW) == ("2\xa0weeks", "overdue")
    assert case_age(missing, NOW) == ("1\xa0month", "overdue")


def test_a_case_opened_by_hand_ages_from_its_opening(customer):
    with time_machine.travel(NOW - dt.timedelta(hours=3), tick=False):
        case = Case.objects.create(
            kind=Case.Kind.FAILED_FULFILMENT, customer=customer, summary="x", dedupe_key="k"
        )
    assert case.began_at == case.opened_at
    assert case_age(case, NOW) == ("3\xa0hours", "ok")


def test_the_inbox_shows_the_age_since_the_problem_began(client, ops_lead, month):  # noqa: F811
    with time_machine.travel(NOW, tick=False):
        reconciliation_run(month=OCTOBER, today=TODAY)
        client.force_login(ops_lead)
        page = client.get(reverse("admin:support_case_inbox"), {"kind": "overdue_invoice"})
    assert page.context["rows"][0][1:3] == ("2\xa0weeks", "overdue")
    assert 'data-testid="case-age">2\xa0weeks</td>' in page.content.decode()
