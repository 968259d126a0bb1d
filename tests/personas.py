"""The personas of docs/product.md, as a pytest plugin (registered in tests/conftest.py): a
support agent, two account managers, an ops lead, a superuser and an outsider, each a
fixture; ``staff_user`` makes any other staff member the same way."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from kit import roles

PASSWORD = "correct-horse-battery-staple"


def ensure_roles() -> None:
    """Transactional tests (live server) flush the database, groups of the roles
    migration included; put them back as kit.roles.GRANTS makes them."""
    if Group.objects.filter(name=roles.SUPPORT).exists():
        return
    roles.roles_sync()


def staff_user(username: str, group: str | None = None, **extra) -> User:
    """A staff member ``username`` (email ``<username>@opsdesk.test``, password
    ``PASSWORD``) in ``group``, one of kit.roles' groups; ``extra`` sets other user
    fields (``is_active=False``, ``is_superuser=True``)."""
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
    return staff_user("sam", roles.SUPPORT)


@pytest.fixture
def manager(db) -> User:
    """Alice, an account manager."""
    return staff_user("alice", roles.ACCOUNT_MANAGERS)


@pytest.fixture
def other_manager(db) -> User:
    """Bob, an account manager with customers of his own."""
    return staff_user("bob", roles.ACCOUNT_MANAGERS)


@pytest.fixture
def ops_lead(db) -> User:
    """Olga, an ops lead."""
    return staff_user("olga", roles.OPS_LEADS)


@pytest.fixture
def superuser(db) -> User:
    return staff_user("root", is_superuser=True)


@pytest.fixture
def outsider(db) -> User:
    """Otto: has an account but is not staff and belongs to no group."""
    return User.objects.create_user(username="otto", password=PASSWORD)
