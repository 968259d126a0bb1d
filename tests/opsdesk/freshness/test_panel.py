"""The freshness panel (opsdesk.freshness, docs/product.md#freshness): each source's
figures as of a frozen moment, the lists its counts link to, who opens the page, its
fixed cost and its escaping.

The world, as of Tuesday 10 November 2026 12:00 UTC (floors: 1 h for every source):

- product webhooks: six events, 8 d, 2 d, 4 h, 3 h, 2 h and 30 min ago (the 2 h one and
  the 8 d one failed, the 30 min one pending), one stamped an hour ahead (not delivered
  yet as of now);
- CRM: four events 23, 22, 21 and 20 h ago (the 20 h one failed);
- inbound email: nothing;
- invoice imports: 10 d ago succeeded, 3 d ago failed, 2 d ago succeeded, 1 d and 5 h ago
  failed (two failures since the last good import).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from audit.bulk import bulk_create_with_history
from audit.context import acting_as
from billing.models import InvoiceImport
from opsdesk.freshness import PERMISSION
from opsdesk.freshness.selectors import (
    BACKLOG_CAP,
    NEVER,
    OK,
    SILENT,
    SourceState,
    sources_freshness,
)
from support.models import InboundEmail, WebhookEvent
from tests import builders

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.UTC)
PAGE = "/admin/freshness/"
H, D, M, S = (dt.timedelta(**{unit: 1}) for unit in ("hours", "days", "minutes", "seconds"))
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def floors(settings):
    settings.OPSDESK_FRESHNESS_FLOOR_MINUTES = dict.fromkeys(
        ("product", "crm", "email", "invoices"), 60
    )
    settings.OPSDESK_FRESHNESS_SAMPLE = 100
    settings.OPSDESK_FRESHNESS_PERCENTILE = 90
    settings.OPSDESK_FRESHNESS_MIN_GAPS = 3


def event(source, ago, status=WebhookEvent.Status.PROCESSED, error="", **fields):
    event.n = getattr(event, "n", 0) + 1
    with acting_as("test:fixture"):
        return WebhookEvent.objects.create(
            webhook_id=f"msg_{source}_{event.n}",
            source=source,
            type="usage.daily",
            status=status,
            error=error,
            received_at=NOW - ago,
            **fields,
        )


def an_import(ago, status, error=""):
    with acting_as("command:import_invoices"):
        return InvoiceImport.objects.create(
            received_at=NOW - ago, file_name="invoices.csv", status=status, error=error
        )


@pytest.fixture
def world():
    product, crm = WebhookEvent.Source.PRODUCT, WebhookEvent.Source.CRM
    failed, pending = WebhookEvent.Status.FAILED, WebhookEvent.Status.PENDING
    rows = {
        "product_failed": [
            event(product, 8 * D, failed, error="TimeoutError: old"),
            event(product, 2 * H, failed, error="KeyError: 'plan'"),
        ],
        "product_pending": [event(product, 30 * M, pending, next_attempt_at=NOW)],
    }
    for ago in (2 * D, 4 * H, 3 * H):
        event(product, ago)
    event(product, -H)  # stamped ahead of now: not delivered yet
    rows["crm_failed"] = [event(crm, 20 * H, failed, error="Unknown account 001-X")]
    for ago in (23 * H, 22 * H, 21 * H):
        event(crm, ago)
    ok, bad = InvoiceImport.Status.SUCCEEDED, InvoiceImport.Status.FAILED
    an_import(10 * D, ok)
    an_import(3 * D, bad, "line 4 (in_1): amount_due: Enter a number.")
    rows["last_good_import"] = an_import(2 * D, ok)
    rows["invoices_failed"] = [
        an_import(1 * D, bad, "The header lacks the column(s) due_at"),
        an_import(5 * H, bad, "line 2 (in_9): status: Select a valid choice."),
    ]
    return rows


def panel() -> dict:
    return {source.key: source for source in sources_freshness(now=NOW)}


def figures(source) -> dict:
    return {
        "last": source.last_delivered_at,
        "day": source.deliveries_day,
        "week": source.deliveries_week,
        "failed": source.failed,
        "pending": source.pending,
        "error": source.last_error,
        "rule": source.rule,
    }


def test_each_source_s_figures_as_of_now(world):
    sources = panel()
    assert list(sources) == ["product", "crm", "email", "invoices"]
    # Gaps 6 d, 1 d 20 h, 1 h, 1 h, 1 h 30 min: the 90th percentile of five is the longest.
    assert figures(sources["product"]) == {
        "last": NOW - 30 * M,
        "day": 4,
        "week": 5,
        "failed": 2,
        "pending": 1,
        "error": "KeyError: 'plan'",
        "rule": SourceState(state=OK, usual_gap=6 * D, quiet_for=30 * M, gaps=5, learned=6 * D),
    }
    # Gaps of an hour: the floor (1 h) is the usual gap, and 20 h is far longer.
    assert figures(sources["crm"]) == {
        "last": NOW - 20 * H,
        "day": 4,
        "week": 4,
        "failed": 1,
        "pending": 0,
        "error": "Unknown account 001-X",
        "rule": SourceState(state=SILENT, usual_gap=H, quiet_for=20 * H, gaps=3, learned=H),
    }
    assert figures(sources["email"]) == {
        "last": None,
        "day": 0,
        "week": 0,
        "failed": 0,
        "pending": 0,
        "error": "",
        "rule": SourceState(state=NEVER, usual_gap=H, quiet_for=None, gaps=0),
    }
    # Gaps 7 d, 1 d, 1 d, 19 h: the usual gap is 7 d; imports wait for no worker.
    assert figures(sources["invoices"]) == {
        "last": NOW - 5 * H,
        "day": 1,
        "week": 4,
        "failed": 2,
        "pending": None,
        "error": "line 2 (in_9): status: Select a valid choice.",
        "rule": SourceState(state=OK, usual_gap=7 * D, quiet_for=5 * H, gaps=4, learned=7 * D),
    }


def test_a_good_import_answers_the_failures_before_it(world):
    an_import(1 * H, InvoiceImport.Status.SUCCEEDED)
    invoices = panel()["invoices"]
    assert (invoices.failed, invoices.last_error, invoices.last_delivered_at) == (
        0,
        "",
        NOW - H,
    )


def test_a_source_turns_silent_a_second_after_its_usual_gap(world):
    """The frozen clock moves; the imports' usual gap stays 7 days (their gaps do not
    change), so they turn silent 7 days after the latest one, not a second before."""
    last = NOW - 5 * H
    with time_machine.travel(last + 7 * D, tick=False):
        assert sources_freshness(now=timezone.now())[3].rule == SourceState(
            state=OK, usual_gap=7 * D, quiet_for=7 * D, gaps=4, learned=7 * D
        )
    with time_machine.travel(last + 7 * D + S, tick=False):
        assert sources_freshness(now=timezone.now())[3].state == SILENT


def listed(client, url) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200, url
    return {row.pk for row in response.context["cl"].result_list}


def test_each_count_links_to_the_list_of_exactly_its_rows(world, superuser):
    client = Client()
    client.force_login(superuser)
    sources = panel()
    ids = {key: {row.pk for row in rows} for key, rows in world.items() if isinstance(rows, list)}
    assert listed(client, sources["product"].failed_url) == ids["product_failed"]
    assert listed(client, sources["product"].pending_url) == ids["product_pending"]
    assert listed(client, sources["crm"].failed_url) == ids["crm_failed"]
    assert listed(client, sources["crm"].pending_url) == set()
    assert listed(client, sources["invoices"].failed_url) == ids["invoices_failed"]
    assert sources["invoices"].pending_url == ""
    # The failed imports are those after the last good one, to the microsecond.
    query = dict(parse_qsl(urlsplit(sources["invoices"].failed_url).query))
    assert query == {
        "status__exact": "failed",
        "received_at__gt": world["last_good_import"].received_at.isoformat(),
    }
    assert listed(client, sources["product"].list_url) == set(
        WebhookEvent.objects.filter(source="product").values_list("pk", flat=True)
    )


def test_inbound_email_counts_every_message_and_links_to_the_failed_ones(superuser):
    with acting_as("test:fixture"):
        emails = [
            builders.inbound_email(received_at=NOW - ago, status=status, error=error)
            for ago, status, error in [
                (3 * H, InboundEmail.Status.PROCESSED, ""),
                (2 * H, InboundEmail.Status.FAILED, "SMTP said no"),
                (H, InboundEmail.Status.PENDING, ""),
            ]
        ]
    email = panel()["email"]
    assert figures(email) == {
        "last": NOW - H,
        "day": 3,
        "week": 3,
        "failed": 1,
        "pending": 1,
        "error": "SMTP said no",
        # Two gaps: too few to learn from, so the floor (1 h); exactly an hour is usual.
        "rule": SourceState(state=OK, usual_gap=H, quiet_for=H, gaps=2),
    }
    client = Client()
    client.force_login(superuser)
    assert listed(client, email.failed_url) == {emails[1].pk}
    assert listed(client, email.pending_url) == {emails[2].pk}


def test_counts_that_pile_up_stop_at_their_cap():
    with acting_as("test:fixture"):
        bulk_create_with_history(
            [
                WebhookEvent(
                    webhook_id=f"msg_pile_{n}",
                    source="crm",
                    status="failed",
                    received_at=NOW - n * S,
                )
                for n in range(BACKLOG_CAP + 5)
            ],
            WebhookEvent,
        )
    crm = panel()["crm"]
    assert (crm.failed, crm.failed_text) == (BACKLOG_CAP + 1, "999+")
    assert (crm.deliveries_day, crm.deliveries_day_text) == (BACKLOG_CAP + 5, "1,004")


def test_the_figures_are_one_query_whatever_the_number_of_rows(world, django_assert_num_queries):
    with django_assert_num_queries(1):
        small = sources_freshness(now=NOW)
    for n in range(40):
        event(WebhookEvent.Source.PRODUCT, n * M + 10 * M, WebhookEvent.Status.FAILED)
        an_import(n * M + 10 * M, InvoiceImport.Status.FAILED)
    with django_assert_num_queries(1):
        large = sources_freshness(now=NOW)
    assert (small[0].failed, large[0].failed) == (2, 42)


def test_the_page_costs_five_queries_whatever_the_number_of_rows(
    world, ops_lead, django_assert_num_queries
):
    """The session, the person, their own and their groups' permissions, the figures."""
    client = Client()
    client.force_login(ops_lead)
    client.get(PAGE)  # warm per-process caches (content types)
    with time_machine.travel(NOW, tick=False):
        with django_assert_num_queries(5):
            assert client.get(PAGE).status_code == 200
        for n in range(30):
            event(WebhookEvent.Source.CRM, n * M, WebhookEvent.Status.FAILED, error=f"E{n}")
            an_import(n * M, InvoiceImport.Status.FAILED)
        with django_assert_num_queries(5):
            assert client.get(PAGE).status_code == 200


@pytest.mark.parametrize(
    ("persona", "status", "in_sidebar"),
    [
        ("ops_lead", 200, True),
        ("superuser", 200, True),
        ("agent", 403, False),
        ("manager", 403, False),
    ],
)
def test_ops_leads_and_superusers_open_the_page_and_see_it_in_the_sidebar(
    request, persona, status, in_sidebar
):
    user = request.getfixturevalue(persona)
    client = Client()
    client.force_login(user)
    assert client.get(PAGE).status_code == status
    home = client.get("/admin/").content.decode()
    assert (f'href="{PAGE}"' in home) is in_sidebar
    assert user.has_perm(PERMISSION) is in_sidebar


def test_a_count_links_only_to_a_list_the_person_may_open(world, ops_lead):
    client = Client()
    client.force_login(ops_lead)
    with time_machine.travel(NOW, tick=False):
        response = client.get(PAGE)
    content = response.content.decode()
    for source in response.context["sources"]:
        source = source[0]
        may = any(ops_lead.has_perm(p) for p in source.list_permissions)
        assert bool(source.failed_url) is may, source.key
        assert bool(source.list_url) is may, source.key
    # Ops leads read webhook events and emails: the product's failures link to their list.
    assert 'href="/admin/support/webhookevent/?source__exact=product&amp;status__exact=failed"' in (
        content
    )


def test_the_page_says_which_sources_are_silent_and_never_delivered(world, ops_lead):
    client = Client()
    client.force_login(ops_lead)
    with time_machine.travel(NOW, tick=False):
        content = client.get(PAGE).content.decode()
    assert "Silent longer than usual: <strong>CRM</strong>." in content
    assert "Never delivered: <strong>Inbound email</strong>." in content
    assert "Nothing for 20 h, longer than its usual gap of 1 h." in content
    assert 'data-source="crm" data-state="silent"' in content
    assert 'data-source="product" data-state="ok"' in content


def test_text_from_outside_is_shown_as_text(ops_lead):
    event(WebhookEvent.Source.CRM, H, WebhookEvent.Status.FAILED, error=f"Bad {SCRIPT}\nline")
    client = Client()
    client.force_login(ops_lead)
    with time_machine.travel(NOW, tick=False):
        content = client.get(PAGE).content.decode()
    assert SCRIPT not in content
    assert "Bad &lt;script&gt;alert(1)&lt;/script&gt; line" in content


def test_a_hostile_import_filter_is_refused_not_a_500(superuser):
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    for value in ("abc", "9999-99-99T00:00", "\x00"):
        response = client.get("/admin/billing/invoiceimport/", {"received_at__gt": value})
        assert response.status_code in (200, 302), value


def test_the_usual_gap_says_where_it_comes_from(world, settings):
    settings.OPSDESK_FRESHNESS_FLOOR_MINUTES = {**settings.OPSDESK_FRESHNESS_FLOOR_MINUTES}
    settings.OPSDESK_FRESHNESS_FLOOR_MINUTES["crm"] = 120
    sources = panel()
    assert {key: (s.usual_gap_text, s.usual_gap_why) for key, s in sources.items()} == {
        "product": ("6 d", "90th percentile of its last 5 gaps"),
        "crm": ("2 h", "its floor; 90th percentile of its gaps: 1 h"),
        "email": ("1 h", "its floor: too few deliveries to learn from"),
        "invoices": ("7 d", "90th percentile of its last 4 gaps"),
    }
