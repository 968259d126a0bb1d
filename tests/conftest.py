"""Shared fixtures: the personas of PRODUCT.md and a few well-known records."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.servers.basehttp import ThreadedWSGIServer

from audit.context import acting_as
from customers.models import Contract, Customer
from kit import roles

PASSWORD = "correct-horse-battery-staple"

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


def ensure_roles() -> None:
    """Transactional tests (live server) flush the database, groups of the roles
    migration included; put them back as kit.roles.GRANTS makes them."""
    if Group.objects.filter(name=roles.SUPPORT).exists():
        return
    roles.roles_sync()


def _staff(username: str, group: str | None = None, **extra) -> User:
    ensure_roles()
    user = User.objects.create_user(
        username=username,
        email=f"{username}@opsdesk.test",
        password=PASSWORD,
        is_staff=True,
        first_name=username.capitalize(),
        **extra,
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def agent(db) -> User:
    """Sam, a support agent."""
    return _staff("sam", roles.SUPPORT)


@pytest.fixture
def manager(db) -> User:
    """Alice, an account manager."""
    return _staff("alice", roles.ACCOUNT_MANAGERS)


@pytest.fixture
def other_manager(db) -> User:
    """Bob, an account manager with customers of his own."""
    return _staff("bob", roles.ACCOUNT_MANAGERS)


@pytest.fixture
def ops_lead(db) -> User:
    """Olga, an ops lead."""
    return _staff("olga", roles.OPS_LEADS)


@pytest.fixture
def superuser(db) -> User:
    return _staff("root", is_superuser=True)


@pytest.fixture
def outsider(db) -> User:
    """Otto: has an account but is not staff and belongs to no group."""
    return User.objects.create_user(username="otto", password=PASSWORD)


@pytest.fixture
def customer(db, manager) -> Customer:
    """Acme, managed by Alice, with an active growth contract."""
    with acting_as("test:fixture"):
        acme = Customer.objects.create(
            external_id="acme-7f3a",
            name="Acme Corp",
            account_manager=manager,
            crm_id="CRM-1001",
            status=Customer.Status.ACTIVE,
        )
        Contract.objects.create(
            customer=acme,
            plan=Contract.Plan.GROWTH,
            seats=50,
            monthly_fee=Decimal("1450.00"),
            price_per_extra_seat=Decimal("25.00"),
            currency="EUR",
            start_date=dt.date(2026, 1, 1),
            end_date=dt.date(2026, 12, 31),
            status=Contract.Status.ACTIVE,
            integrations=["sso", "crm_sync"],
        )
    return acme
