"""``usage.daily`` events become one usage row per customer per day, through the receiver."""

import datetime as dt

import pytest

from customers.models import UsageDaily
from support.usage_events import usage_record
from support.webhook_schemas import parse_event
from support.webhooks import event_process, event_receive
from tests import builders
from tests.support.sender import SECRET, deliver, signed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


def usage_daily(tenant_id="acme-7f3a", **data) -> dict:
    return {
        "type": "usage.daily",
        "timestamp": "2026-11-21T00:05:00Z",
        "data": {
            "tenant_id": tenant_id,
            "date": "2026-11-20",
            "active_users_1d": 12,
            "active_users_7d": 40,
            "last_login_at": "2026-11-20T18:51:00Z",
            "requests": 13_801,
            "errors": 83,
            **data,
        },
    }


def reported(usage: UsageDaily) -> tuple:
    return (
        usage.date,
        usage.active_users_1d,
        usage.active_users_7d,
        usage.last_login_at,
        usage.requests,
        usage.errors,
    )


def test_a_report_becomes_the_customers_usage_of_that_day(customer):
    event = deliver(usage_daily())
    assert (event.status, event.error, event.warning) == ("processed", "", "")
    usage = UsageDaily.objects.get()
    assert usage.customer == customer
    assert reported(usage) == (
        dt.date(2026, 11, 20),
        12,
        40,
        dt.datetime(2026, 11, 20, 18, 51, tzinfo=dt.UTC),
        13_801,
        83,
    )
    [created] = usage.history.all()
    assert (created.history_type, created.history_actor) == ("+", "webhook:msg_1")


def test_a_later_report_of_the_same_day_replaces_the_values_and_keeps_the_old_in_history(
    customer,
):
    deliver(usage_daily(), webhook_id="msg_1")
    deliver(
        usage_daily(active_users_1d=14, last_login_at=None, requests=14_000, errors=90),
        webhook_id="msg_2",
    )
    usage = UsageDaily.objects.get()
    assert reported(usage) == (dt.date(2026, 11, 20), 14, 40, None, 14_000, 90)
    changed, created = usage.history.order_by("-history_id")
    assert (changed.history_type, changed.history_actor) == ("~", "webhook:msg_2")
    assert (created.active_users_1d, created.requests, created.errors) == (12, 13_801, 83)


def test_reports_of_other_days_and_tenants_are_rows_of_their_own(customer):
    builders.customer(external_id="globex-1", name="Globex")
    deliver(usage_daily(), webhook_id="msg_1")
    deliver(usage_daily(date="2026-11-19", errors=1), webhook_id="msg_2")
    deliver(usage_daily(tenant_id="globex-1", requests=5, errors=0), webhook_id="msg_3")
    assert sorted(
        UsageDaily.objects.values_list("customer__external_id", "date", "requests", "errors")
    ) == [
        ("acme-7f3a", dt.date(2026, 11, 19), 13_801, 1),
        ("acme-7f3a", dt.date(2026, 11, 20), 13_801, 83),
        ("globex-1", dt.date(2026, 11, 20), 5, 0),
    ]


def test_the_same_report_again_changes_nothing_and_writes_no_history(customer):
    event = deliver(usage_daily())
    assert event_process(event_id=event.pk) is None  # already processed
    usage_record(event, parse_event(event.payload)[1])  # the handler run again
    usage = UsageDaily.objects.get()
    assert usage.history.count() == 1
    deliver(usage_daily(), webhook_id="msg_2")  # the same report under another id
    assert usage.history.count() == 1
    assert UsageDaily.objects.count() == 1


def test_an_unknown_tenant_ends_processed_with_a_warning_and_no_usage(db):
    event = deliver(usage_daily(tenant_id="nobody-0000"))
    assert (event.status, event.attempts, event.error, event.next_attempt_at) == (
        "processed",
        1,
        "",
        None,
    )
    assert event.warning == "unknown tenant 'nobody-0000': usage of 2026-11-20 not recorded"
    assert event.history.latest().warning == event.warning
    assert not UsageDaily.objects.exists()


def test_a_report_that_breaks_the_contract_is_rejected_and_stores_nothing(customer):
    body, headers = signed(usage_daily(requests=10, errors=11))
    intake = event_receive(body=body, headers=headers)
    assert intake.status == 422
    assert intake.body["details"] == [
        {"field": "", "error": "Value error, errors must not exceed requests"}
    ]
    assert not UsageDaily.objects.exists()


def test_the_event_admin_shows_the_warning(client, superuser):
    event = deliver(usage_daily(tenant_id="nobody-0000"))
    client.force_login(superuser)
    warning = "unknown tenant &#x27;nobody-0000&#x27;: usage of 2026-11-20 not recorded"
    changelist = client.get("/admin/support/webhookevent/")
    assert warning in changelist.content.decode()
    page = client.get(f"/admin/support/webhookevent/{event.pk}/change/")
    assert page.status_code == 200
    assert warning in page.content.decode()
