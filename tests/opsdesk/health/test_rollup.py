"""The weekly team roll-up: who gets which, its figures against hand-written SQL over the
signals table, sent once per date and key, escaped, and in a fixed number of queries."""

from __future__ import annotations

import datetime as dt
import re
import smtplib

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, migrations, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.context import acting_as
from kit import roles
from opsdesk.health import tasks
from opsdesk.health.digest import DigestError, digest_send, recipient_for
from opsdesk.health.flags import KINDS
from opsdesk.health.models import HealthSignal, HealthSweep
from opsdesk.health.rollup import (
    OLDEST_LISTED,
    Team,
    rollup_build,
    rollup_for,
    rollup_recipients,
    rollup_send,
)
from opsdesk.models import DigestDelivery
from tests import builders
from tests.personas import staff_user
from tests.publishing import publish_thread_done
from tests.records import active_contract

pytestmark = pytest.mark.django_db

R = dt.date(2026, 11, 23)  # a Monday
EVIL = '<script>alert("x")</script> Beta'
ALL = Team("All account managers", None)


def days(n: int) -> dt.date:
    return R - dt.timedelta(days=n)


def company(name, manager=None, *, status="active", contract_end=None):
    with acting_as("test:fixture"):
        customer = builders.customer(
            external_id=name.lower().replace(" ", "-")[:40],
            name=name,
            account_manager=manager,
            status=status,
        )
    if contract_end is not None:
        active_contract(customer, end_date=contract_end)
    return customer


def signal(customer, kind, *, age, state="open", by=None) -> HealthSignal:
    """A stored signal of ``kind`` opened ``age`` days before R, in ``state``."""
    values = {
        "customer": customer,
        "kind": kind,
        "label": KINDS[kind],
        "state": state,
        "opened_on": days(age),
        "opened_reason": "seeded",
        "reason": "seeded",
        "value": 1.0,
    }
    if state == "acknowledged":
        values |= {"acknowledged_by": by, "acknowledged_at": timezone.now()}
    if state == "snoozed":
        values |= {"snoozed_until": R + dt.timedelta(days=7), "snooze_reason": "holiday"}
    if state == "resolved":
        values["resolved_on"] = days(2)
    with acting_as("test:fixture"):
        return HealthSignal.objects.create(**values)


@pytest.fixture
def carol(db):
    return staff_user("carol", roles.ACCOUNT_MANAGERS)


@pytest.fixture
def book(manager, other_manager, carol):
    """Alice, Bob and Carol's customers and one without a manager, with signals of every
    state and age; a churned customer's and a future one's are nobody's concern."""
    acme = company("Acme Co", manager, contract_end=R + dt.timedelta(days=20))
    signal(acme, "dormant", age=30)
    signal(acme, "usage_drop", age=20, state="acknowledged", by=manager)
    signal(acme, "renewal_soon", age=5)
    beta = company(EVIL, manager)
    signal(beta, "no_data", age=3, state="snoozed")
    signal(beta, "error_rate", age=16, state="snoozed")
    signal(beta, "urgent_tickets", age=40, state="resolved")
    company("Calm Co", manager)
    delta = company("Delta Co", other_manager, contract_end=R + dt.timedelta(days=45))
    signal(delta, "error_rate", age=16)
    signal(delta, "renewal_at_risk", age=2)
    signal(delta, "dormant", age=15, state="snoozed")
    echo = company("Echo Co", other_manager, contract_end=R + dt.timedelta(days=10))
    signal(echo, "renewal_soon", age=1)
    hotel = company("Hotel Co", other_manager)
    signal(hotel, "sla_breach", age=-1)  # opened after R
    india = company("India Co", other_manager)
    signal(india, "renewal_soon", age=9, state="resolved")
    signal(india, "dormant", age=7)
    fox = company("Fox Co", carol)
    signal(fox, "seats_over", age=40)
    golf = company("Golf Co")
    signal(golf, "overdue_invoice", age=1)
    signal(golf, "billing_finding", age=18, state="acknowledged", by=manager)
    gone = company("Gone Co", manager, status="churned")
    signal(gone, "dormant", age=50)
    return {"acme": acme, "beta": beta, "delta": delta, "fox": fox, "golf": golf}


@pytest.fixture
def teams(book, manager, other_manager, carol, ops_lead):
    """Team North: Alice, Bob and Olga (an ops lead, so its lead); Team South: Carol and
    no lead. "Teamwork" is not a team. Golf Co has no manager: no team covers it."""
    north = Group.objects.create(name="Team North")
    north.user_set.add(manager, other_manager, ops_lead)
    south = Group.objects.create(name="Team South")
    south.user_set.add(carol)
    Group.objects.create(name="Teamwork").user_set.add(manager)
    return {"north": north, "south": south}


@pytest.fixture
def swept(db):
    """R's sweep has run: sending reads the seeded signals as they are."""
    with acting_as("test:fixture"):
        HealthSweep.objects.create(
            date=R, status="finished", claimed_at=timezone.now(), finished_at=timezone.now()
        )


# --- The figures against SQL --------------------------------------------------------------

SCOPES = {
    # Every followed customer (no team group exists).
    "all": "TRUE",
    # Team North's: the account manager is a member of the group.
    "north": """c.account_manager_id IN (
        SELECT user_id FROM auth_user_groups WHERE group_id = %(g)s)""",
    # No team's: no manager, or one in no group named "Team ...".
    "rest": """(c.account_manager_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id
        WHERE ug.user_id = c.account_manager_id AND g.name LIKE 'Team %%'))""",
}

OPEN_SQL = """
    FROM opsdesk_healthsignal s JOIN customers_customer c ON c.id = s.customer_id
    WHERE s.state <> 'resolved' AND s.opened_on <= %(d)s AND c.status <> 'churned' AND {scope}
"""


def sql_figures(scope: str, group_id: int | None) -> dict:
    """The roll-up's figures, each by one SELECT written by hand."""
    where = OPEN_SQL.format(scope=SCOPES[scope])
    params = {"d": R, "g": group_id}
    figures = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.account_manager_id, s.kind, count(*) {where} GROUP BY 1, 2", params
        )
        figures["cells"] = {(manager, kind): n for manager, kind, n in cursor.fetchall()}
        cursor.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE s.state = 'open'
                AND s.acknowledged_at IS NULL), count(DISTINCT c.id) {where}""",
            params,
        )
        figures["total"], figures["unhandled"], figures["customers_open"] = cursor.fetchone()
        cursor.execute(
            f"""SELECT c.account_manager_id, count(*) FROM customers_customer c
                WHERE c.status <> 'churned' AND {SCOPES[scope]} GROUP BY 1""",
            params,
        )
        figures["customers"] = dict(cursor.fetchall())
        cursor.execute(
            f"""SELECT c.name, s.label, %(d)s - s.opened_on {where}
                AND s.state = 'open' AND s.acknowledged_at IS NULL
                ORDER BY s.opened_on, c.name, c.id, s.kind LIMIT 10""",
            params,
        )
        figures["oldest"] = cursor.fetchall()
        cursor.execute(
            f"""SELECT c.name, array_agg(s.label ORDER BY s.opened_on, s.kind)
                FILTER (WHERE %(d)s - s.opened_on > 14), max(%(d)s - s.opened_on) {where}
                GROUP BY c.id, c.name HAVING max(%(d)s - s.opened_on) > 14
                ORDER BY 3 DESC, lower(c.name) COLLATE "C" """,
            params,
        )
        figures["stale"] = [(name, labels, age) for name, labels, age in cursor.fetchall()]
        cursor.execute(
            f"""SELECT c.name,
                  array_agg(s.label ORDER BY lower(s.label)) FILTER (
                    WHERE s.kind NOT IN ('renewal_soon', 'renewal_at_risk')),
                  (SELECT min(k.end_date) FROM customers_contract k WHERE k.customer_id = c.id
                    AND k.status = 'active' AND k.end_date >= %(d)s)
                {where}
                GROUP BY c.id, c.name
                HAVING bool_or(s.kind IN ('renewal_soon', 'renewal_at_risk'))
                  AND bool_or(s.kind NOT IN ('renewal_soon', 'renewal_at_risk'))
                ORDER BY 3 NULLS LAST, lower(c.name) COLLATE "C" """,
            params,
        )
        figures["renewals"] = cursor.fetchall()
    return figures


def rollup_figures(rollup) -> dict:
    codes = [code for code, _label, _url in rollup.kinds]
    return {
        "cells": {
            (row.manager_id, code): n
            for row in rollup.managers
            for code, n in zip(codes, row.counts, strict=True)
            if n
        },
        "total": rollup.total,
        "unhandled": rollup.unhandled,
        "customers_open": rollup.customers_open,
        "customers": {row.manager_id: row.customers for row in rollup.managers},
        "oldest": [(s.customer, s.label, s.age) for s in rollup.oldest],
        "stale": [(c.customer, c.labels, c.age) for c in rollup.stale],
        "renewals": [(c.customer, c.labels, c.contract_end) for c in rollup.renewals],
    }


@pytest.mark.parametrize("scope", ["all", "north", "rest"])
def test_the_figures_agree_with_hand_written_sql(request, book, scope):
    if scope == "all":
        team = ALL
    else:
        groups = request.getfixturevalue("teams")
        team = (
            Team("Team North", groups["north"].pk)
            if scope == "north"
            else Team("Customers of no team", None)
        )

    rollup = rollup_build(date=R, team=team)

    expected = sql_figures(scope, team.group_id)
    assert rollup_figures(rollup) == expected
    assert expected["total"] > 0  # the SQL sees the seeded rows


def test_the_figures_by_hand(book, manager, other_manager, carol):
    """The same figures, written out: the seed's states and ages give exactly these."""
    rollup = rollup_build(date=R, team=ALL)

    assert [code for code, _label, _url in rollup.kinds] == [
        "error_rate",
        "usage_drop",
        "dormant",
        "no_data",
        "renewal_soon",
        "seats_over",
        "overdue_invoice",
        "billing_finding",
        "renewal_at_risk",
    ]
    assert [
        (row.name, row.customers, row.counts, row.total, row.unhandled) for row in rollup.managers
    ] == [
        ("Alice", 3, [1, 1, 1, 1, 1, 0, 0, 0, 0], 5, 2),
        ("Bob", 4, [1, 0, 2, 0, 1, 0, 0, 0, 1], 5, 4),
        ("Carol", 1, [0, 0, 0, 0, 0, 1, 0, 0, 0], 1, 1),
        ("Unassigned", 1, [0, 0, 0, 0, 0, 0, 1, 1, 0], 2, 1),
    ]
    assert rollup.column_totals == [2, 1, 3, 1, 2, 1, 1, 1, 1]
    assert (rollup.total, rollup.unhandled, rollup.customers, rollup.customers_open) == (
        13,
        8,
        9,
        7,
    )
    assert [(s.customer, s.label, s.age, s.manager) for s in rollup.oldest] == [
        ("Fox Co", "Seats over contract", 40, "Carol"),
        ("Acme Co", "Dormant", 30, "Alice"),
        ("Delta Co", "Error-rate anomaly", 16, "Bob"),
        ("India Co", "Dormant", 7, "Bob"),
        ("Acme Co", "Renewal soon", 5, "Alice"),
        ("Delta Co", "Renewal at risk", 2, "Bob"),
        ("Echo Co", "Renewal soon", 1, "Bob"),
        ("Golf Co", "Overdue invoice", 1, "Unassigned"),
    ]
    assert [(c.customer, c.manager, c.labels, c.age) for c in rollup.stale] == [
        ("Fox Co", "Carol", ["Seats over contract"], 40),
        ("Acme Co", "Alice", ["Dormant", "Usage drop"], 30),
        ("Golf Co", "Unassigned", ["Billing finding"], 18),
        (EVIL, "Alice", ["Error-rate anomaly"], 16),
        ("Delta Co", "Bob", ["Error-rate anomaly", "Dormant"], 16),
    ]
    assert [
        (c.customer, c.manager, c.renewal, c.contract_end, c.labels) for c in rollup.renewals
    ] == [
        ("Acme Co", "Alice", "Renewal soon", R + dt.timedelta(days=20), ["Dormant", "Usage drop"]),
        (
            "Delta Co",
            "Bob",
            "Renewal at risk",
            R + dt.timedelta(days=45),
            ["Dormant", "Error-rate anomaly"],
        ),
    ]
    assert (
        rollup.subject
        == "Team roll-up Mon 23 Nov 2026, All account managers: 13 open signals (8 unhandled)"
    )


def test_the_long_open_threshold_is_a_setting(book, settings):
    settings.OPSDESK_ROLLUP_STALE_DAYS = 29
    rollup = rollup_build(date=R, team=ALL)
    assert [(c.customer, c.labels) for c in rollup.stale] == [
        ("Fox Co", ["Seats over contract"]),
        ("Acme Co", ["Dormant"]),
    ]
    assert "Open more than 29 days (2)" in rollup.html


def test_only_the_ten_oldest_unhandled_are_listed_with_the_count_of_all(manager):
    for n in range(OLDEST_LISTED + 2):
        signal(company(f"Customer {n:02}", manager), "dormant", age=20 + n)

    rollup = rollup_build(date=R, team=ALL)

    assert [s.customer for s in rollup.oldest] == [f"Customer {n:02}" for n in range(11, 1, -1)]
    assert rollup.unhandled == 12
    assert "Oldest unhandled (10 of 12," in rollup.html
    assert "OLDEST UNHANDLED (10 of 12)" in rollup.text


def test_a_team_with_nothing_open_says_so(manager):
    company("Calm Co", manager)
    rollup = rollup_build(date=R, team=ALL)
    assert rollup.subject == "Team roll-up Mon 23 Nov 2026, All account managers: no open signals"
    assert [(row.name, row.customers, row.total) for row in rollup.managers] == [("Alice", 1, 0)]
    assert "* Alice (1 customer): nothing open" in rollup.text
    assert "Every open signal is acknowledged or snoozed." in rollup.text


@pytest.mark.parametrize("size", [1, 4])
def test_building_takes_three_queries_whatever_the_size(
    manager, other_manager, size, django_assert_num_queries
):
    for n in range(size * 5):
        customer = company(
            f"Customer {n}",
            [manager, other_manager, None][n % 3],
            contract_end=R + dt.timedelta(days=10 + n),
        )
        signal(customer, "renewal_soon", age=n % 20)
        signal(customer, "dormant", age=n, state=["open", "acknowledged", "snoozed"][n % 3])

    # The signals, the customers per manager, the managers.
    with django_assert_num_queries(3):
        rollup = rollup_build(date=R, team=ALL)
    assert rollup.total == size * 10


# --- Who gets which ----------------------------------------------------------------------


def test_without_team_groups_one_roll_up_covers_every_manager(book, settings):
    settings.OPSDESK_ROLLUP_FALLBACK_EMAIL = "am-leads@opsdesk.test"
    [(team, recipient)] = rollup_recipients()
    assert team == ALL
    assert (recipient.key, recipient.email) == ("rollup:fallback", "am-leads@opsdesk.test")
    assert rollup_for("rollup:fallback") == (team, recipient)


def test_each_team_goes_to_its_leads_and_the_rest_to_the_fallback(teams, ops_lead):
    north, south = teams["north"], teams["south"]
    pairs = rollup_recipients()
    assert [(team, r.key, r.email) for team, r in pairs] == [
        (Team("Team North", north.pk), f"rollup:{north.pk}:{ops_lead.pk}", "olga@opsdesk.test"),
        (
            Team("Team South", south.pk),
            f"rollup:{south.pk}:fallback",
            "account-management@localhost",
        ),
        (Team("Customers of no team", None), "rollup:fallback", "account-management@localhost"),
    ]
    for team, recipient in pairs:
        assert rollup_for(recipient.key) == (team, recipient)

    north_rollup = rollup_build(date=R, team=pairs[0][0])
    assert [row.name for row in north_rollup.managers] == ["Alice", "Bob"]
    assert north_rollup.total == 10
    rest = rollup_build(date=R, team=pairs[2][0])
    assert [row.name for row in rest.managers] == ["Unassigned"]


def test_an_inactive_lead_gets_nothing_and_the_team_falls_back(teams, ops_lead):
    ops_lead.is_active = False
    ops_lead.save()
    north = teams["north"]
    keys = [r.key for _team, r in rollup_recipients()]
    assert keys[0] == f"rollup:{north.pk}:fallback"


def test_every_customer_in_a_team_sends_no_fallback(teams, book, carol):
    with acting_as("test:fixture"):
        book["golf"].account_manager = carol
        book["golf"].save()
    assert [r.key for _t, r in rollup_recipients()][-1] != "rollup:fallback"


@pytest.mark.parametrize(
    "key",
    ["rollup:999999:1", "rollup:abc:1", "user:1", "rollup:", "fallback"],
)
def test_an_unknown_key_is_a_clear_error(teams, key):
    with pytest.raises(DigestError, match=r"^No team roll-up "):
        rollup_for(key)


def test_a_key_of_a_group_that_is_no_team_is_refused(teams):
    other = Group.objects.get(name="Teamwork")
    with pytest.raises(DigestError, match=r"^No team roll-up "):
        rollup_for(f"rollup:{other.pk}:fallback")
    with pytest.raises(DigestError, match=r"^No team lead "):
        rollup_for(f"rollup:{teams['north'].pk}:999999")


# --- Sending -----------------------------------------------------------------------------


def test_two_runs_send_each_roll_up_once(teams, swept, capsys, ops_lead):
    call_command("send_rollups", "--date", "2026-11-23")
    call_command("send_rollups", "--date", "2026-11-23")

    assert capsys.readouterr().out.splitlines() == [
        "send_rollups 2026-11-23: 3 sent, 0 already sent, 0 failed",
        "send_rollups 2026-11-23: 0 sent, 3 already sent, 0 failed",
    ]
    assert sorted((m.to[0], m.subject) for m in mail.outbox) == [
        (
            "account-management@localhost",
            "Team roll-up Mon 23 Nov 2026, Customers of no team: 2 open signals (1 unhandled)",
        ),
        (
            "account-management@localhost",
            "Team roll-up Mon 23 Nov 2026, Team South: 1 open signal (1 unhandled)",
        ),
        (
            "olga@opsdesk.test",
            "Team roll-up Mon 23 Nov 2026, Team North: 10 open signals (6 unhandled)",
        ),
    ]
    north = teams["north"]
    delivery = DigestDelivery.objects.get(recipient_key=f"rollup:{north.pk}:{ops_lead.pk}")
    assert (delivery.status, delivery.attempts, delivery.recipient, delivery.email) == (
        "sent",
        1,
        ops_lead,
        "olga@opsdesk.test",
    )
    # Alice, Bob: 7 customers (Calm Co and Hotel Co with nothing open).
    assert (delivery.customer_count, delivery.attention_count) == (7, 5)
    email = next(m for m in mail.outbox if m.to == ["olga@opsdesk.test"])
    assert (
        email.extra_headers["Message-ID"] == f"<rollup-{north.pk}-{ops_lead.pk}-2026-11-23@opsdesk>"
    )
    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html" and "Delta Co" in html and "Fox Co" not in html


def test_a_dry_run_sends_and_records_nothing(book, capsys):
    call_command("send_rollups", "--date", "2026-11-23", "--dry-run")
    assert capsys.readouterr().out.splitlines() == [
        "account-management@localhost: Team roll-up Mon 23 Nov 2026, All account managers: "
        "13 open signals (8 unhandled)",
        "send_rollups 2026-11-23 (dry run): 1 would be sent",
    ]
    assert mail.outbox == [] and not DigestDelivery.objects.exists()


def test_a_bad_date_is_a_clear_error(db):
    with pytest.raises(CommandError, match="--date '23/11/2026' is not a date like 2026-11-23"):
        call_command("send_rollups", "--date", "23/11/2026")


def test_sending_sweeps_the_date_first(manager):
    """Without R's sweep stored, the send runs it: its signals are what the roll-up counts."""
    company("Silent Co", manager, contract_end=R + dt.timedelta(days=300))  # no usage at all

    assert rollup_send(date=R, team=ALL, recipient=rollup_for("rollup:fallback")[1]) is True

    assert HealthSweep.objects.get(date=R).status == "finished"
    [email] = mail.outbox
    assert email.subject == (
        "Team roll-up Mon 23 Nov 2026, All account managers: 2 open signals (2 unhandled)"
    )


def test_a_failed_send_is_recorded_then_retried_by_its_task(book, swept, monkeypatch):
    def refuse(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("mail server went away")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refuse)
    team, recipient = rollup_for("rollup:fallback")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        rollup_send(date=R, team=team, recipient=recipient)
    delivery = DigestDelivery.objects.get()
    assert (delivery.status, delivery.error) == (
        "failed",
        "SMTPServerDisconnected: mail server went away",
    )

    monkeypatch.undo()
    tasks.team_rollup_send.apply(args=["2026-11-23", "rollup:fallback"])
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error, delivery.attempts) == ("sent", "", 2)
    assert len(mail.outbox) == 1


def test_a_lead_without_an_email_address_fails_visibly(teams, swept, ops_lead):
    ops_lead.email = ""
    ops_lead.save()
    team, recipient = rollup_for(f"rollup:{teams['north'].pk}:{ops_lead.pk}")
    with pytest.raises(DigestError, match=r"^Olga has no email address; add one to their user\.$"):
        rollup_send(date=R, team=team, recipient=recipient)
    assert DigestDelivery.objects.get().status == "failed" and mail.outbox == []


def test_beat_sends_it_weekly_at_the_digests_time(teams, swept, ops_lead, monkeypatch, settings):
    entry = settings.CELERY_BEAT_SCHEDULE["send-team-rollups"]
    assert entry["task"] == "opsdesk.team_rollups_send"
    assert entry["options"] == {"expires": 3600}
    schedule = entry["schedule"]
    assert (schedule.day_of_week, schedule.hour, schedule.minute) == ({1}, {7}, {0})
    queued = []
    monkeypatch.setattr(tasks.team_rollup_send, "delay", lambda *args: queued.append(args))

    assert tasks.team_rollups_send.apply(args=["2026-11-23"]).result == 3
    assert queued == [
        ("2026-11-23", f"rollup:{teams['north'].pk}:{ops_lead.pk}"),
        ("2026-11-23", f"rollup:{teams['south'].pk}:fallback"),
        ("2026-11-23", "rollup:fallback"),
    ]


# --- The email ---------------------------------------------------------------------------


def test_names_from_outside_are_escaped_in_the_html_and_plain_in_the_text(book, settings):
    settings.OPSDESK_BASE_URL = "https://ops.example.com"
    rollup = rollup_build(date=R, team=Team("Team <i>Evil</i>", None))

    assert "<script" not in rollup.html and "<i>" not in rollup.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Beta" in rollup.html
    assert "Team &lt;i&gt;Evil&lt;/i&gt;" in rollup.html
    assert f"* {EVIL} (Alice): Error-rate anomaly; oldest 16 days" in rollup.text
    assert type(rollup.text) is str


def test_the_links_open_opsdesk_pages_that_filter_as_they_say(book, settings, client, ops_lead):
    settings.OPSDESK_BASE_URL = "https://ops.example.com"
    rollup = rollup_build(date=R, team=ALL)
    base = "https://ops.example.com/admin/opsdesk/healthsignal/"
    acme = f"https://ops.example.com/admin/customers/customer/{book['acme'].pk}/change/"

    assert f'<a href="{base}?open=yes&amp;kind__exact=dormant"' in rollup.html
    assert f'<a href="{base}?open=yes&amp;manager=none"' in rollup.html
    assert f'<a href="{acme}"' in rollup.html and acme in rollup.text
    oldest = HealthSignal.objects.get(customer=book["fox"])
    assert f"{base}{oldest.pk}/change/" in rollup.text

    client.force_login(ops_lead)
    for query, count in [
        ("?open=yes", 13 + 2),  # and Gone Co's (churned) and Hotel Co's (opened after R)
        ("?open=yes&kind__exact=dormant", 3 + 1),
        ("?open=yes&manager=none", 2),
        ("?state__exact=open", 8 + 2),  # and Gone Co's and Hotel Co's, opened after R
    ]:
        response = client.get("/admin/opsdesk/healthsignal/" + query)
        assert response.status_code == 200
        assert response.context["cl"].result_count == count, query


def test_ops_send_a_failed_roll_up_again_from_the_delivery_log(
    client, book, ops_lead, monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: published.append((name, args)))
    with acting_as("test:fixture"):
        DigestDelivery.objects.create(
            digest_date=R,
            kind="rollup",
            team="All account managers",
            recipient_key="rollup:fallback",
            email="account-management@localhost",
            status="failed",
            error="SMTPServerDisconnected: gone",
        )
        DigestDelivery.objects.create(
            digest_date=R,
            recipient_key=f"user:{ops_lead.pk}",
            email="olga@opsdesk.test",
            status="failed",
        )
    client.force_login(ops_lead)
    selected = list(DigestDelivery.objects.values_list("pk", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/opsdesk/digestdelivery/",
            {"action": "send_again", "_selected_action": selected},
        )
    publish_thread_done()

    assert sorted(published) == [
        ("opsdesk.digest_send", ["2026-11-23", f"user:{ops_lead.pk}"]),
        ("opsdesk.team_rollup_send", ["2026-11-23", "rollup:fallback"]),
    ]
    rollups = client.get("/admin/opsdesk/digestdelivery/", {"kind__exact": "rollup"})
    digests = client.get("/admin/opsdesk/digestdelivery/", {"kind__exact": "digest"})
    assert [d.recipient_key for d in rollups.context["cl"].result_list] == ["rollup:fallback"]
    assert [d.recipient_key for d in digests.context["cl"].result_list] == [f"user:{ops_lead.pk}"]


# --- The delivery log --------------------------------------------------------------------


def what_column(html: str) -> list[str]:
    return re.findall(r'<td class="field-what[^"]*"[^>]*>([^<]*)</td>', html)


def test_each_delivery_says_what_it_is_in_the_log(teams, swept, ops_lead, manager, client):
    call_command("send_rollups", "--date", "2026-11-23")
    digest_send(date=R, recipient=recipient_for(f"user:{manager.pk}"))

    north, south = teams["north"], teams["south"]
    rows = DigestDelivery.objects.order_by("recipient_key")
    assert [(d.recipient_key, d.kind, d.team, str(d)) for d in rows] == [
        (
            f"rollup:{north.pk}:{ops_lead.pk}",
            "rollup",
            "Team North",
            "Team roll-up, week of 2026-11-23 for Team North (olga@opsdesk.test)",
        ),
        (
            f"rollup:{south.pk}:fallback",
            "rollup",
            "Team South",
            "Team roll-up, week of 2026-11-23 for Team South (account-management@localhost)",
        ),
        (
            "rollup:fallback",
            "rollup",
            "Customers of no team",
            "Team roll-up, week of 2026-11-23 for Customers of no team "
            "(account-management@localhost)",
        ),
        (f"user:{manager.pk}", "digest", "", "Digest 2026-11-23 for alice@opsdesk.test"),
    ]

    client.force_login(ops_lead)
    log = client.get("/admin/opsdesk/digestdelivery/")
    assert sorted(what_column(log.content.decode())) == [
        "Daily digest",
        "Team roll-up, Customers of no team",
        "Team roll-up, Team North",
        "Team roll-up, Team South",
    ]
    rollups = client.get("/admin/opsdesk/digestdelivery/", {"kind__exact": "rollup"})
    assert sorted(what_column(rollups.content.decode())) == [
        "Team roll-up, Customers of no team",
        "Team roll-up, Team North",
        "Team roll-up, Team South",
    ]

    north_row = rows[0]
    record = client.get(f"/admin/opsdesk/digestdelivery/{north_row.pk}/change/")
    assert record.context["title"] == "Team roll-up delivery"
    assert (
        "<title> Team roll-up, week of 2026-11-23 for Team North (olga@opsdesk.test) | "
        "Team roll-up delivery | opsdesk</title>"
    ) in record.content.decode()
    digest_row = rows[3]
    record = client.get(f"/admin/opsdesk/digestdelivery/{digest_row.pk}/change/")
    assert record.context["title"] == "Daily digest delivery"


def test_a_teams_later_name_does_not_change_what_was_sent(teams, swept, ops_lead):
    north = teams["north"]
    team, recipient = rollup_for(f"rollup:{north.pk}:{ops_lead.pk}")
    rollup_send(date=R, team=team, recipient=recipient)
    north.name = "Team Far North"
    north.save()
    delivery = DigestDelivery.objects.get()
    assert (delivery.team, delivery.history.count()) == ("Team North", 3)


@pytest.mark.parametrize(
    ("kind", "key"), [("digest", "rollup:fallback"), ("rollup", "user:1"), ("weekly", "user:1")]
)
def test_a_delivery_whose_kind_and_key_disagree_is_refused(db, kind, key):
    with acting_as("test:fixture"), pytest.raises(IntegrityError), transaction.atomic():
        DigestDelivery.objects.create(digest_date=R, kind=kind, recipient_key=key, email="a@b.c")
    assert not DigestDelivery.objects.exists()


def test_the_migration_tells_the_logged_roll_ups_by_their_key(teams, ops_lead, manager):
    """opsdesk.0018 on a log written before it: the roll-ups' rows (kind "digest", no
    team) get their kind and team, each with a history row naming the migration."""
    with connection.cursor() as cursor:  # the log as it was: no constraint yet
        cursor.execute("ALTER TABLE opsdesk_digestdelivery DROP CONSTRAINT digest_kind_matches_key")
    north = teams["north"]
    keys = [
        f"rollup:{north.pk}:{ops_lead.pk}",
        "rollup:fallback",
        "rollup:999999:fallback",  # a team deleted since
        f"user:{manager.pk}",
    ]
    with acting_as("test:fixture"):
        for key in keys:
            DigestDelivery.objects.create(digest_date=R, recipient_key=key, email="a@b.c")

    executor = MigrationExecutor(connection)
    node = ("opsdesk", "0018_delivery_kind")
    state = executor.loader.project_state(node, at_end=True)
    [fill] = [
        op
        for op in executor.loader.get_migration(*node).operations
        if isinstance(op, migrations.RunPython)
    ]
    with connection.schema_editor() as editor:
        fill.code(state.apps, editor)

    rows = {d.recipient_key: d for d in DigestDelivery.objects.all()}
    assert [(rows[k].kind, rows[k].team) for k in keys] == [
        ("rollup", "Team North"),
        ("rollup", "Customers of no team"),
        ("rollup", ""),
        ("digest", ""),
    ]
    for key in keys[:3]:
        latest = rows[key].history.first()
        assert (latest.history_actor, latest.kind, latest.history_type) == (
            "migration:opsdesk.0018_delivery_kind",
            "rollup",
            "~",
        )
        assert rows[key].history.count() == 2
    assert rows[keys[3]].history.count() == 1
