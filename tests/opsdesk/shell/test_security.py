"""Security hardening: sign-in throttling, idle sessions, the CSP, digest subjects."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from opsdesk.health.digest import digest_build, recipient_for
from tests.personas import PASSWORD
from tests.records import populate

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
LOGIN = "/admin/login/"


def sign_in(client, username, password, ip="10.0.0.1"):
    return client.post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip
    )


def fail(client, username, times, ip="10.0.0.1"):
    return [sign_in(client, username, "wrong-password", ip).status_code for _ in range(times)]


# --- Sign-in throttling (django-axes) ------------------------------------------------


def test_the_defaults_lock_a_username_and_address_out_after_five_failures_for_15_minutes():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert dt.timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


@time_machine.travel(START, tick=False)
def test_the_fifth_failure_locks_the_username_out_with_a_clear_429(client, agent):
    assert fail(client, agent.username, 4) == [200, 200, 200, 200]
    response = sign_in(client, agent.username, "wrong-password")
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    text = response.content.decode()
    assert "Sign-in is locked for this username from your address after 5 failed attempts." in text
    assert "You can try again in 15 minutes" in text
    assert "09:15 UTC" in text
    assert 'data-testid="lockout"' in text


@time_machine.travel(START, tick=False)
def test_while_locked_out_even_the_right_password_is_refused(client, agent):
    fail(client, agent.username, 5)
    response = sign_in(client, agent.username, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lock_lifts_after_the_cool_off(client, agent):
    with time_machine.travel(START, tick=False):
        fail(client, agent.username, 5)
    with time_machine.travel(START + dt.timedelta(minutes=16), tick=False):
        response = sign_in(client, agent.username, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_other_users_and_other_addresses_are_not_locked_out(client, agent, manager):
    fail(client, agent.username, 5, ip="10.0.0.1")
    assert sign_in(client, manager.username, PASSWORD, ip="10.0.0.1").status_code == 302
    client.logout()
    assert sign_in(client, agent.username, PASSWORD, ip="10.0.0.2").status_code == 302


def test_a_successful_sign_in_resets_the_count(client, agent):
    fail(client, agent.username, 4)
    assert sign_in(client, agent.username, PASSWORD).status_code == 302
    client.logout()
    assert fail(client, agent.username, 4) == [200, 200, 200, 200]


# --- Session idle timeout --------------------------------------------------------------


def test_sessions_end_after_30_idle_minutes_and_12_hours_at_most():
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.OPSDESK_SESSION_MAX_AGE_SECONDS == 12 * 3600


def test_an_idle_session_is_sent_to_the_login_page(client, agent):
    with time_machine.travel(START, tick=False):
        client.force_login(agent)
        assert client.get("/admin/").status_code == 200
    with time_machine.travel(START + dt.timedelta(minutes=31), tick=False):
        response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"


def test_an_active_session_stays_signed_in_past_the_idle_limit(client, agent):
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(agent)
        for _ in range(12):  # two hours, a request every ten minutes
            assert client.get("/admin/").status_code == 200
            traveller.shift(dt.timedelta(minutes=10))
        assert client.get("/admin/").status_code == 200


def test_however_active_a_session_ends_12_hours_after_signing_in(client, agent):
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(agent)
        codes = []
        for _ in range(12 * 3 + 1):  # a request every twenty minutes, 12 hours and one more
            codes.append(client.get("/admin/").status_code)
            traveller.shift(dt.timedelta(minutes=20))
    assert codes == [200] * 36 + [302]
    assert "_auth_user_id" not in client.session


def test_an_active_session_is_saved_at_most_once_a_minute(client, agent):
    """The expiry slides without writing the session row on every request."""

    def session_writes(captured):
        return [q for q in captured if q["sql"].startswith('UPDATE "django_session"')]

    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(agent)
        client.get("/admin/")
        traveller.shift(dt.timedelta(seconds=30))
        with CaptureQueriesContext(connection) as quiet:
            client.get("/admin/")
        traveller.shift(dt.timedelta(seconds=31))
        with CaptureQueriesContext(connection) as refreshed:
            client.get("/admin/")
    assert session_writes(quiet.captured_queries) == []
    assert len(session_writes(refreshed.captured_queries)) == 1


# --- Security headers ------------------------------------------------------------------


def test_pages_carry_the_content_security_policy(client, agent):
    client.force_login(agent)
    response = client.get("/admin/")
    directives = [part.split(" ", 1) for part in response["Content-Security-Policy"].split("; ")]
    policy = dict(directives)
    assert policy == {
        "default-src": "'self'",
        "script-src": "'self' 'unsafe-eval'",
        "style-src": "'self' 'unsafe-inline'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


def test_the_login_and_lockout_pages_carry_it_too(client, agent):
    assert "script-src 'self' 'unsafe-eval'" in client.get(LOGIN)["Content-Security-Policy"]
    fail(client, agent.username, 5)
    locked = sign_in(client, agent.username, "wrong-password")
    assert "frame-ancestors 'none'" in locked["Content-Security-Policy"]


def test_pages_refuse_framing_and_keep_the_referrer_on_site(client):
    response = client.get(LOGIN)
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_our_templates_have_no_inline_script_or_event_handler():
    """The CSP allows no inline script: behaviour lives in opsdesk/static/opsdesk/opsdesk.js."""
    offenders = []
    for path in (settings.BASE_DIR / "templates").rglob("*.html"):
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+=", text):
            offenders.append(str(path.relative_to(settings.BASE_DIR)))
    assert offenders == []


# --- Digest subjects -------------------------------------------------------------------


@time_machine.travel(START, tick=False)
def test_digest_subjects_carry_no_personal_or_customer_data(manager):
    customers = populate(3, manager=manager)
    digest = digest_build(date=START.date(), recipient=recipient_for(f"user:{manager.pk}"))
    subject = digest.subject
    assert re.fullmatch(
        r"Usage digest Sat 21 Nov 2026: "
        r"(\d+ new signals?|nothing new), \d+ still open \(3 customers\)"
        r"|Usage digest Sat 21 Nov 2026: nobody needs attention \(3 customers\)",
        subject,
    ), subject
    for customer in customers:
        for value in (customer.name, customer.external_id, customer.crm_id or "CRM"):
            assert value not in subject
    assert "@" not in subject and manager.username not in subject
