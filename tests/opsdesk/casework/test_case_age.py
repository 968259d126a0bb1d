"""A case's age is counted one way everywhere (support.case_age, docs/product.md#exceptions):
from when its problem began, a billing finding from its month or its invoice's due date,
any other case from its opening. So the same case falls in the same age bucket on the ops
lead's home and in the inbox's age filters its count links to, and reads the same age in
the inbox, the case list and the home page's "oldest"."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from bs4 import BeautifulSoup
from django.db import connection
from django.urls import reverse

from opsdesk.home.selectors import exceptions_by_age
from opsdesk.home.views import exceptions_table
from support.case_age import age_q, age_text, began_at, began_at_sql
from support.models import Case
from tests.opsdesk.casework.cases import INBOX, make_case, shown
from tests.opsdesk.home.records import listed

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.UTC)
MAY = dt.date(2026, 5, 1)
FULFIL, MISSING, OVERDUE = (
    Case.Kind.FAILED_FULFILMENT,
    Case.Kind.MISSING_INVOICE,
    Case.Kind.OVERDUE_INVOICE,
)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def utc(month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


def test_when_a_case_began_reads_the_same_in_python_in_a_query_and_in_sql():
    make_case("by hand", opened_at=utc(6, 8, 9))
    make_case("may's finding", kind=MISSING, period=MAY, opened_at=utc(6, 10, 6))
    make_case(
        "overdue", kind=OVERDUE, period=MAY, details={"since": "2026-05-20"}, opened_at=utc(6, 9)
    )
    make_case("no since", kind=MISSING, period=MAY, details={"since": ""}, opened_at=utc(6, 9))
    # A day recorded after the opening (a finding raised early): its opening.
    make_case("later", kind=OVERDUE, details={"since": "2026-06-09"}, opened_at=utc(6, 7, 5))
    expected = {
        "by hand": utc(6, 8, 9),
        "may's finding": utc(5, 1),
        "overdue": utc(5, 20),
        "no since": utc(5, 1),
        "later": utc(6, 7, 5),
    }

    assert {case.summary: case.began_at for case in Case.objects.all()} == expected
    assert dict(Case.objects.annotate(began=began_at()).values_list("summary", "began")) == (
        expected
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT c.summary, {began_at_sql('c')} FROM support_case c")
        assert dict(cursor.fetchall()) == expected


def test_older_than_and_younger_than_split_the_cases_at_when_they_began():
    make_case("2 d", days_old=2)
    make_case("may's finding, opened an hour ago", kind=MISSING, period=MAY, days_old=1 / 24)

    def summaries(**ages) -> list[str]:
        return sorted(Case.objects.filter(age_q(now=NOW, **ages)).values_list("summary", flat=True))

    assert summaries(older_than=7) == ["may's finding, opened an hour ago"]
    assert summaries(older_than=1, younger_than=3) == ["2 d"]
    assert summaries(younger_than=1) == []


def test_a_billing_finding_is_in_the_same_age_bucket_on_the_home_and_in_the_inbox(client, ops_lead):
    """May's missing invoice, found an hour ago, has waited since 1 May: "Older" on the
    home page, "Older than a week" in the inbox, "1 month" wherever its age is shown."""
    finding = make_case("may's finding", kind=MISSING, period=MAY, days_old=1 / 24)
    order = make_case("failed order", days_old=2)
    client.force_login(ops_lead)

    rows = exceptions_by_age(now=NOW)

    buckets = {row.kind: [tally.count for tally in row.buckets] for row in rows}
    assert buckets == {FULFIL: [0, 1, 0, 0], MISSING: [0, 0, 0, 1], "all": [0, 1, 0, 1]}
    missing = next(row for row in rows if row.kind == MISSING)
    older = missing.buckets[-1]
    assert listed(client, older.url) == 1
    assert shown(client.get(older.url)) == ["may's finding"]
    assert shown(client.get(INBOX, {"age": "7"})) == ["may's finding"]
    assert shown(client.get(INBOX, {"age": "1", "younger": "3"})) == ["failed order"]
    # Its age, the same on every page.
    assert age_text(finding) == "1\xa0month"
    [cells] = [row for row in exceptions_table(rows)["rows"] if row[0] == missing.label]
    assert "1\xa0month ago" in str(cells[-1])
    inbox = client.get(INBOX, {"kind": MISSING})
    assert [(case.summary, age) for case, age, *_ in inbox.context["rows"]] == [
        ("may's finding", "1\xa0month")
    ]
    changelist = client.get(reverse("admin:support_case_changelist"), {"kind__exact": MISSING})
    page = BeautifulSoup(changelist.content, "html.parser")
    assert [" ".join(td.get_text().split()) for td in page.select("td.field-age")] == ["1 month"]
    assert order.began_at == order.opened_at
