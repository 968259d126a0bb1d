"""The signals' pages: the confirmation pages the digest links to (a GET shows, only a
POST changes), who may act, the record page's actions, the reasons per kind."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.context import acting_as
from opsdesk.health.models import HealthSignal
from opsdesk.health.signals import signals_sweep
from tests.opsdesk.health.followed import DAY, follow

pytestmark = pytest.mark.django_db


@pytest.fixture
def signal(manager):
    follow("Silent <b>Co</b>", manager, usage_days=0)
    with acting_as("test:sweep"):
        signals_sweep(date=DAY)
    return HealthSignal.objects.get(kind="dormant")


def url(signal, action):
    return f"/admin/opsdesk/healthsignal/{signal.pk}/{action}/"


@pytest.mark.parametrize("action", ["acknowledge", "snooze"])
def test_a_get_shows_the_signal_and_changes_nothing(client, manager, signal, action):
    client.force_login(manager)
    before = signal.history.count()
    response = client.get(url(signal, action))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Silent &lt;b&gt;Co&lt;/b&gt;" in page and "<b>Co</b>" not in page
    assert 'data-testid="signal-form"' in page
    signal.refresh_from_db()
    assert (signal.state, signal.history.count()) == ("open", before)


def customer_signals(signal) -> str:
    return f"/admin/customers/customer/{signal.customer_id}/change/#signals"


def messages_of(client) -> list[str]:
    page = client.get("/admin/opsdesk/healthsignal/")
    return [str(m) for m in page.context["messages"]]


def test_acknowledging_without_a_next_goes_to_the_customers_signals(client, manager, signal):
    """As from the digest's links, which carry no ``next``."""
    client.force_login(manager)
    response = client.post(url(signal, "acknowledge"), {"note": "call booked"})
    assert response.status_code == 302
    assert response["Location"] == customer_signals(signal)
    assert messages_of(client) == ["Dormant of Silent <b>Co</b>: being handled."]
    signal.refresh_from_db()
    assert (signal.state, signal.acknowledged_by, signal.acknowledge_note) == (
        "acknowledged",
        manager,
        "call booked",
    )


def test_the_page_carries_a_safe_next_and_its_post_goes_back_there(client, manager, signal):
    back = "/admin/?from=home#attention"
    client.force_login(manager)
    page = client.get(url(signal, "snooze"), {"next": back})
    assert page.context["next"] == page.context["back"] == back
    html = page.content.decode()
    assert '<input type="hidden" name="next" value="/admin/?from=home#attention">' in html
    assert '<a class="od-button" href="/admin/?from=home#attention">Cancel</a>' in html

    until = timezone.localdate() + dt.timedelta(days=10)
    response = client.post(
        url(signal, "snooze"), {"until": str(until), "reason": "on holiday", "next": back}
    )
    assert response.status_code == 302 and response["Location"] == back
    assert messages_of(client) == [
        f"Dormant of Silent <b>Co</b>: snoozed until {until.day} {until:%b %Y}."
    ]
    signal.refresh_from_db()
    assert (signal.state, signal.snoozed_until) == ("snoozed", until)


def test_a_form_sent_back_with_an_error_keeps_its_next(client, manager, signal):
    client.force_login(manager)
    back = f"/admin/opsdesk/healthsignal/{signal.pk}/change/"
    page = client.post(url(signal, "snooze"), {"until": "", "reason": "x", "next": back})
    assert page.status_code == 200 and page.context["next"] == back
    assert f'<input type="hidden" name="next" value="{back}">' in page.content.decode()


@pytest.mark.parametrize(
    "elsewhere",
    ["https://evil.example/admin/", "//evil.example/", "javascript:alert(1)"],
)
def test_a_next_off_this_site_is_ignored_for_the_customers_signals(
    client, manager, signal, elsewhere
):
    client.force_login(manager)
    page = client.get(url(signal, "acknowledge"), {"next": elsewhere})
    html = page.content.decode()
    assert (page.context["next"], page.context["back"]) == ("", customer_signals(signal))
    assert 'name="next"' not in html and "evil.example" not in html
    assert f'<a class="od-button" href="{customer_signals(signal)}">Cancel</a>' in html

    response = client.post(url(signal, "acknowledge"), {"note": "", "next": elsewhere})
    assert response.status_code == 302
    assert response["Location"] == customer_signals(signal)
    signal.refresh_from_db()
    assert signal.state == "acknowledged"


def test_the_customer_page_and_the_record_page_links_carry_their_own_page_as_next(
    client, manager, signal
):
    client.force_login(manager)
    customer = f"/admin/customers/customer/{signal.customer_id}/change/"
    html = client.get(customer).content.decode()
    carried = f"?next={customer.replace('/', '%2F')}%23signals"
    assert f'href="{url(signal, "acknowledge")}{carried}"' in html
    assert f'href="{url(signal, "snooze")}{carried}"' in html

    record = f"/admin/opsdesk/healthsignal/{signal.pk}/change/"
    html = client.get(record).content.decode()
    assert f'href="{url(signal, "snooze")}?next={record.replace("/", "%2F")}"' in html


def test_snoozing_needs_a_reason_and_a_date_ahead_and_keeps_what_was_typed(client, manager, signal):
    client.force_login(manager)
    today = timezone.localdate()
    response = client.post(url(signal, "snooze"), {"until": str(today), "reason": "on holiday"})
    assert response.status_code == 200
    assert "Nothing changed. Snooze until a day after today." in [
        str(m) for m in response.context["messages"]
    ]
    assert 'value="on holiday"' in response.content.decode()
    response = client.post(url(signal, "snooze"), {"until": "5/1/2027", "reason": "x"})
    assert response.status_code == 200 and response.context["form"].errors["until"]

    until = today + dt.timedelta(days=10)
    response = client.post(url(signal, "snooze"), {"until": str(until), "reason": "on holiday"})
    assert response.status_code == 302
    signal.refresh_from_db()
    assert (signal.state, signal.snoozed_until, signal.snooze_reason) == (
        "snoozed",
        until,
        "on holiday",
    )


@pytest.mark.parametrize("persona", ["other_manager", "agent"])
def test_who_may_not_handle_it_is_told_so_and_nothing_changes(client, request, persona, signal):
    client.force_login(request.getfixturevalue(persona))
    page = client.get(url(signal, "snooze"))
    assert page.status_code == 200
    assert "Only the customer&#x27;s account manager (Alice) or an ops lead" in (
        page.content.decode()
    )
    assert 'data-testid="signal-form"' not in page.content.decode()
    posted = client.post(url(signal, "acknowledge"), {"note": "mine now"})
    assert posted.status_code == 200
    signal.refresh_from_db()
    assert signal.state == "open" and signal.acknowledged_by is None


def test_an_ops_lead_handles_any_customers_signal(client, ops_lead, signal):
    client.force_login(ops_lead)
    assert client.post(url(signal, "acknowledge"), {"note": ""}).status_code == 302
    signal.refresh_from_db()
    assert signal.acknowledged_by == ops_lead


def test_a_resolved_signal_has_nothing_to_do(client, manager, signal):
    with acting_as("test:fixture"):
        signal.state, signal.resolved_on, signal.resolved_reason = "resolved", DAY, "logged in"
        signal.save()
    client.force_login(manager)
    page = client.get(url(signal, "acknowledge")).content.decode()
    assert "It was resolved on 22 Nov 2026: nothing to do." in page


@pytest.mark.parametrize("raw", ["999999", "abc", "1%2F2"])
def test_an_unknown_signal_is_a_404(client, manager, raw):
    client.force_login(manager)
    assert client.get(f"/admin/opsdesk/healthsignal/{raw}/snooze/").status_code == 404


def test_the_record_page_offers_the_actions_to_who_may_take_them(
    client, manager, other_manager, signal
):
    change = f"/admin/opsdesk/healthsignal/{signal.pk}/change/"
    client.force_login(manager)
    assert 'data-testid="signal-actions"' in client.get(change).content.decode()
    client.force_login(other_manager)
    page = client.get(change)
    assert page.status_code == 200 and 'data-testid="signal-actions"' not in page.content.decode()
    # The record is read-only: a POST to it changes nothing.
    assert client.post(change, {"state": "resolved"}).status_code == 403


def test_the_reasons_page_lists_each_reason_given_per_kind(client, manager, signal):
    client.force_login(manager)
    client.post(
        url(signal, "snooze"),
        {"until": str(timezone.localdate() + dt.timedelta(days=3)), "reason": "<i>holiday</i>"},
    )
    page = client.get("/admin/opsdesk/healthsignal/reasons/")
    assert page.status_code == 200
    [kind] = page.context["table"]
    assert (kind["kind"], kind["reasons"]) == ("dormant", [("snoozed", "<i>holiday</i>", 1)])
    assert "&lt;i&gt;holiday&lt;/i&gt;" in page.content.decode()
