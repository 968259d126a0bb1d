"""Settings for the whole run and the well-known customer. The personas are the plugin
tests/personas.py, the onboarding templates tests/checklists.py; records are made with
tests/builders.py."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer

from audit.context import acting_as
from customers.models import Customer
from tests import builders

pytest_plugins = ["tests.personas", "tests.checklists", "tests.mailserver", "tests.sla_policies"]

# The live server's listen backlog is 10 (Django's WSGIServer); a burst of concurrent
# deliveries (the webhook drill sends 50 at once) would see connection resets, as it
# would not behind gunicorn (backlog 2048).
ThreadedWSGIServer.request_queue_size = 128


@pytest.fixture(autouse=True, scope="session")
def _test_transport():
    """Settings for the whole run, in place before the live server loads its middleware."""
    from django.conf import settings

    # Tests talk plain HTTP to the test client and live server; production redirects to HTTPS.
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    # The manifest storage of production needs `collectstatic`; tests serve sources.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """PBKDF2 at production strength costs about a second a hash on this hardware, and
    every persona is created with a password (and signs in with it in the browser tests);
    what the tests check is who may sign in, not how hard a hash is to crack."""
    from django.conf import settings
    from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()


@pytest.fixture(autouse=True, scope="session")
def _broker_keys_per_xdist_worker():
    """Under pytest-xdist every worker has its own test database but all share one Redis:
    a key prefix per worker keeps the tasks one worker's tests publish (ids in its own
    database) away from the real Celery worker another worker's tests start."""
    from opsdesk.celery import app

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        app.conf.broker_transport_options = {
            **app.conf.broker_transport_options,
            "global_keyprefix": f"opsdesk-test-{worker}:",
        }


@pytest.fixture
def customer(db, manager) -> Customer:
    """Acme, managed by Alice, with an active growth contract."""
    with acting_as("test:fixture"):
        acme = builders.customer(
            external_id="acme-7f3a",
            name="Acme Corp",
            account_manager=manager,
            crm_id="CRM-1001",
            status=Customer.Status.ACTIVE,
        )
        # Growth from 1 Jan 2026 in EUR, active: the contract builder's defaults.
        builders.contract(
            customer=acme,
            seats=50,
            monthly_fee=Decimal("1450.00"),
            price_per_extra_seat=Decimal("25.00"),
            end_date=dt.date(2026, 12, 31),
            integrations=["sso", "crm_sync"],
        )
    return acme
