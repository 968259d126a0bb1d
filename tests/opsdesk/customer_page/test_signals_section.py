"""The customer page's health signals (#signals, where the digest links): the open ones
with their state, age, latest reason and latest changes, Acknowledge and Snooze for who
may take them, the resolved ones of the last 90 days, and the page's cost with them."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.context import acting_as
from customers.models import Customer
from opsdesk.customer_page import admin as customer_page_admin
from opsdesk.health.models import HealthSignal
from opsdesk.health.selectors import CustomerSignals, customer_signals
from opsdesk.health.signals import signal_acknowledge, signal_snooze
from tests import builders
from tests.personas import staff_user

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 22)
NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
SWEEP = "task:send_digests"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def at(day: dt.date, hour: int = 7) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def opened(customer, kind: str, label: str, *, days_ago: int, reason: str, **fields):
    """A signal opened ``days_ago`` days before today by the sweep, as it writes one."""
    day = TODAY - dt.timedelta(days=days_ago)
    with time_machine.travel(at(day), tick=False), acting_as(SWEEP, reason="flag appeared"):
        return HealthSignal.objects.create(
            customer=customer,
            kind=kind,
            label=label,
            opened_on=day,
            opened_reason=reason,
            reason=reason,
            **fields,
        )


def swept(signal, day: dt.date, **fields) -> None:
    """The sweep of ``day`` writing new figures (or a new state) on ``signal``."""
    signal.refresh_from_db()
    with time_machine.travel(at(day), tick=False), acting_as(SWEEP, reason="daily health sweep"):
        for name, value in fields.items():
            setattr(signal, name, value)
        signal.save()


def other_customer(manager) -> Customer:
    with acting_as("test:fixture"):
        return builders.customer(external_id="bolt", name="Bolt", account_manager=manager)


def page(client, user, customer) -> str:
    client.force_login(user)
    response = client.get(f"/admin/customers/customer/{customer.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def section(html: str) -> str:
    return html.split('id="signals"', 1)[1].split("</section>", 1)[0]


def blocks(html: str) -> dict[str, str]:
    """Each open signal's block by its label."""
    found = {}
    for block in re.findall(r'<article class="od-signal".*?</article>', section(html), re.DOTALL):
        label = re.search(r'class="od-signal-label"[^>]*>([^<]*)<', block).group(1)
        found[label] = block
    return found


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def signals(customer, manager):
    """Acme's signals: Dormant for 12 days, acknowledged by Alice 10 days ago, its figures
    updated daily since; No usage data new today; Urgent tickets snoozed by Alice; an
    overdue invoice resolved 5 days ago, a usage drop resolved 100 days ago."""
    dormant = opened(customer, "dormant", "Dormant", days_ago=12, reason="no login for 14 days")
    with time_machine.travel(at(TODAY - dt.timedelta(days=10), 10), tick=False):
        signal_acknowledge(signal=dormant, by=manager, note="calling them Monday")
    for back in range(9, 0, -1):
        swept(dormant, TODAY - dt.timedelta(days=back), reason=f"no login for {26 - back} days")
    swept(dormant, TODAY, reason="no login for 26 days")
    opened(customer, "no_data", "No usage data", days_ago=0, reason="no usage report for 21 Nov")
    urgent = opened(
        customer, "urgent_tickets", "Urgent tickets", days_ago=3, reason="1 open urgent ticket"
    )
    with time_machine.travel(at(TODAY - dt.timedelta(days=1), 15), tick=False):
        signal_snooze(
            signal=urgent,
            by=manager,
            until=TODAY + dt.timedelta(days=7),
            reason="fix ships Friday",
            today=TODAY - dt.timedelta(days=1),
        )
    invoice = opened(
        customer, "overdue_invoice", "Overdue invoice", days_ago=30, reason="1 overdue invoice"
    )
    swept(
        invoice,
        TODAY - dt.timedelta(days=5),
        state="resolved",
        resolved_on=TODAY - dt.timedelta(days=5),
        resolved_reason="no longer raised by its rule",
    )
    drop = opened(customer, "usage_drop", "Usage drop", days_ago=120, reason="WAU -40%")
    swept(
        drop,
        TODAY - dt.timedelta(days=100),
        state="resolved",
        resolved_on=TODAY - dt.timedelta(days=100),
        resolved_reason="WAU 30 vs 29 a week earlier",
    )
    return {"dormant": dormant, "urgent": urgent, "invoice": invoice}


def test_the_open_signals_say_their_state_age_reason_and_who_handles_them(
    client, manager, customer, signals
):
    html = page(client, manager, customer)
    shown = blocks(html)
    # Unhandled first, then handled, then snoozed.
    assert list(shown) == ["No usage data", "Dormant", "Urgent tickets"]
    assert text(shown["No usage data"]).startswith(
        "No usage data Open Acknowledge Snooze no usage report for 21 Nov "
        "Open since 22 Nov 2026 (new today)"
    )
    assert "Open since 10 Nov 2026 (12 days) · being handled by Alice: calling them Monday" in (
        text(shown["Dormant"])
    )
    assert "no login for 26 days" in text(shown["Dormant"])
    urgent = text(shown["Urgent tickets"])
    assert "Snoozed until 29 Nov 2026" in urgent
    snoozed = "snoozed until 29 Nov 2026 by Alice: fix ships Friday"
    assert f"Open since 19 Nov 2026 (3 days) · {snoozed}" in urgent
    dormant = signals["dormant"]
    assert f'href="/admin/opsdesk/healthsignal/{dormant.pk}/change/"' in shown["Dormant"]


def test_each_open_signal_shows_its_latest_changes_not_the_daily_figures(
    client, manager, customer, signals
):
    shown = blocks(page(client, manager, customer))
    history = re.findall(r"<li>(.*?)</li>", shown["Dormant"], re.DOTALL)
    # Opened by the sweep, acknowledged by Alice: the ten daily new figures are left to
    # the record's full history.
    assert [text(line) for line in history] == [
        "12 Nov 2026 10:00 Alice signal acknowledged",
        "10 Nov 2026 07:00 task:send_digests flag appeared",
    ]
    assert "Every change, with the daily figures" in shown["Dormant"]
    urgent = re.findall(r"<li>(.*?)</li>", shown["Urgent tickets"], re.DOTALL)
    assert [text(line) for line in urgent] == [
        "21 Nov 2026 15:00 Alice signal snoozed: fix ships Friday",
        "19 Nov 2026 07:00 task:send_digests flag appeared",
    ]
    dormant = signals["dormant"]
    assert f'href="/admin/opsdesk/healthsignal/{dormant.pk}/history/"' in shown["Dormant"]


def test_only_the_last_three_changes_are_shown_and_a_state_change_by_the_sweep_counts(
    customer, manager, signals
):
    dormant = signals["dormant"]
    for n in range(3):
        with time_machine.travel(at(TODAY, 10 + n), tick=False):
            signal_acknowledge(signal=dormant, by=manager, note=f"note {n}")
    found = customer_signals(customer=customer, user=manager, today=TODAY)
    [line] = [o for o in found.open if o.signal.kind == "dormant"]
    assert [(h.at.hour, h.reason) for h in line.history] == [
        (12, "signal acknowledged"),
        (11, "signal acknowledged"),
        (10, "signal acknowledged"),
    ]
    assert line.more_history
    # The sweep waking a snooze changes the state: it is listed.
    urgent = signals["urgent"]
    swept(urgent, TODAY, state="open", woke_reason="worse since the snooze: 2 open urgent")
    found = customer_signals(customer=customer, user=manager, today=TODAY)
    [line] = [o for o in found.open if o.signal.kind == "urgent_tickets"]
    assert [(h.actor, h.reason, h.state) for h in line.history] == [
        (SWEEP, "daily health sweep", "Open"),
        ("Alice", "signal snoozed: fix ships Friday", "Snoozed"),
        (SWEEP, "flag appeared", "Open"),
    ]
    assert not line.more_history


def test_the_resolved_of_the_last_90_days_are_listed_with_what_cleared_them(
    client, manager, customer, signals
):
    html = section(page(client, manager, customer))
    # Collapsed: a <details> closed until opened.
    assert '<details class="od-signals-resolved" data-testid="signals-resolved">' in html
    resolved = html.split('data-testid="signals-resolved"')[1]
    rows = [text(row) for row in re.findall(r"<tr data-testid=.*?</tr>", resolved, re.DOTALL)]
    assert rows == ["Overdue invoice 23 Oct 2026 17 Nov 2026 no longer raised by its rule"]
    assert "Resolved in the last 90 days" in resolved


@pytest.mark.parametrize("persona", ["other_manager", "agent"])
def test_who_may_not_handle_a_signal_reads_it_without_the_actions(
    client, request, customer, signals, persona
):
    shown = blocks(page(client, request.getfixturevalue(persona), customer))
    assert list(shown) == ["No usage data", "Dormant", "Urgent tickets"]
    for block in shown.values():
        assert "/acknowledge/" not in block and "/snooze/" not in block


def test_the_manager_and_an_ops_lead_get_the_actions_that_apply(
    client, manager, ops_lead, customer, signals
):
    for person in (manager, ops_lead):
        shown = blocks(page(client, person, customer))
        new = shown["No usage data"]
        no_data = HealthSignal.objects.get(kind="no_data")
        # Each comes back to this page's signals (next).
        back = f"?next=%2Fadmin%2Fcustomers%2Fcustomer%2F{customer.pk}%2Fchange%2F%23signals"
        assert f'href="/admin/opsdesk/healthsignal/{no_data.pk}/acknowledge/{back}"' in new
        assert f'href="/admin/opsdesk/healthsignal/{no_data.pk}/snooze/{back}"' in new
        # Acknowledged already: only Snooze; snoozed: Snooze again.
        assert "/acknowledge/" not in shown["Dormant"] and "/snooze/" in shown["Dormant"]
        assert "/snooze/" in shown["Urgent tickets"]


def test_the_section_links_to_exactly_the_customers_signals(
    client, manager, customer, other_manager, signals
):
    opened(other_customer(other_manager), "dormant", "Dormant", days_ago=1, reason="x")
    html = section(page(client, manager, customer))
    [url] = re.findall(r'href="(/admin/opsdesk/healthsignal/\?customer__id__exact=\d+)"', html)
    assert client.get(url).context["cl"].result_count == 5  # two resolved included


def test_only_the_latest_ten_resolved_are_listed_and_the_rest_linked(client, manager, customer):
    for n in range(12):
        signal = opened(customer, f"kind_{n}", f"Kind {n}", days_ago=30, reason="x")
        day = TODAY - dt.timedelta(days=n + 1)
        swept(signal, day, state="resolved", resolved_on=day, resolved_reason=f"gone {n}")
    html = section(page(client, manager, customer))
    assert html.count('data-testid="resolved-signal"') == 10
    assert "gone 0" in html and "gone 9" in html and "gone 10" not in html
    [url] = re.findall(r'href="(/admin/opsdesk/healthsignal/\?[^"]*open=no)"', html)
    assert client.get(url.replace("&amp;", "&")).context["cl"].result_count == 12


def test_who_may_not_open_the_signals_reads_them_without_links(client, customer, signals):
    reader = staff_user("nina")
    reader.user_permissions.add(Permission.objects.get(codename="view_customer"))
    html = page(client, reader, customer)
    assert "/admin/opsdesk/healthsignal/" not in section(html)
    assert list(blocks(html)) == ["No usage data", "Dormant", "Urgent tickets"]


def test_a_customer_without_signals_says_so(client, manager, customer):
    html = section(page(client, manager, customer))
    assert "No open signal: the digest flags nothing about this customer." in html
    assert "signals-resolved" not in html


def test_names_and_reasons_are_escaped(client, manager, customer):
    opened(customer, "dormant", "Dormant", days_ago=2, reason="<b>quiet</b>")
    html = section(page(client, manager, customer))
    assert "&lt;b&gt;quiet&lt;/b&gt;" in html and "<b>quiet</b>" not in html


def queries(client, customer) -> list[str]:
    url = f"/admin/customers/customer/{customer.pk}/change/"
    client.get(url)  # warm the per-process caches
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


# The customer page, signed in as its account manager, before the signals: what every
# section reads (contracts, onboarding, usage, chart, tickets, cases, billing, trace...).
PAGE_QUERIES_WITHOUT_SIGNALS = 32
# The signals' section: the customer's signals, and the latest history of the open ones.
SIGNALS_QUERIES = 2


def test_the_section_costs_two_queries_whatever_the_signals_or_their_history(
    client, manager, customer, monkeypatch
):
    client.force_login(manager)
    assert len(queries(client, customer)) == PAGE_QUERIES_WITHOUT_SIGNALS + SIGNALS_QUERIES
    for day in range(40):
        signal = opened(customer, f"kind_{day}", f"Kind {day}", days_ago=day, reason="x")
        swept(signal, TODAY, reason="y")
        if day % 2:
            swept(signal, TODAY, state="resolved", resolved_on=TODAY, resolved_reason="z")
    assert len(queries(client, customer)) == PAGE_QUERIES_WITHOUT_SIGNALS + SIGNALS_QUERIES
    monkeypatch.setattr(customer_page_admin, "customer_signals", lambda **_: CustomerSignals())
    assert len(queries(client, customer)) == PAGE_QUERIES_WITHOUT_SIGNALS
