import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from opsdesk.settings import envbool, envint, envlist

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("on", True), ("false", False), ("0", False)],
)
def test_envbool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("OPSDESK_FLAG", raw)
    assert envbool("OPSDESK_FLAG", not expected) is expected


def test_envbool_rejects_anything_else(monkeypatch):
    monkeypatch.setenv("OPSDESK_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="OPSDESK_FLAG must be true or false"):
        envbool("OPSDESK_FLAG", False)


def test_envint_rejects_a_non_number(monkeypatch):
    monkeypatch.setenv("OPSDESK_N", "25x")
    with pytest.raises(ImproperlyConfigured, match="OPSDESK_N must be an integer, got '25x'"):
        envint("OPSDESK_N", 1)


def test_envlist_drops_blanks(monkeypatch):
    monkeypatch.setenv("OPSDESK_HOSTS", " a.example ,, b.example ")
    assert envlist("OPSDESK_HOSTS", "") == ["a.example", "b.example"]


def test_debug_off_without_a_secret_key_refuses_to_start():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is false" in result.stderr


def deploy_env() -> dict[str, str]:
    # Without what the browser tests set for their own process (the deploy check
    # rightly refuses DJANGO_ALLOW_ASYNC_UNSAFE in production).
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {
        **inherited,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
    }


def test_check_deploy_is_clean_with_debug_off():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=deploy_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_debug_off_means_secure_cookies_hsts_and_https():
    code = (
        "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT, "
        "s.X_FRAME_OPTIONS, s.SECURE_REFERRER_POLICY)"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT,
        env=deploy_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True",
        "True",
        "True",
        "Lax",
        "31536000",
        "True",
        "True",
        "DENY",
        "same-origin",
    ]


def test_the_security_numbers_come_from_the_environment():
    env = {
        **deploy_env(),
        "OPSDESK_LOGIN_FAILURE_LIMIT": "3",
        "OPSDESK_LOGIN_COOLOFF_MINUTES": "60",
        "OPSDESK_SESSION_IDLE_MINUTES": "10",
        "OPSDESK_SESSION_MAX_HOURS": "8",
    }
    code = (
        "from django.conf import settings as s; print(s.AXES_FAILURE_LIMIT, "
        "int(s.AXES_COOLOFF_TIME.total_seconds()), s.SESSION_COOKIE_AGE, "
        "s.OPSDESK_SESSION_MAX_AGE_SECONDS)"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "3600", "600", "28800"]


def test_every_process_borrows_its_connections_from_one_bounded_pool(settings):
    database = settings.DATABASES["default"]
    assert database["CONN_MAX_AGE"] == 0  # a pool, not a connection kept per thread
    assert database["OPTIONS"]["pool"] == {
        "min_size": 0,
        "max_size": 4,
        "timeout": 10.0,
        "reconnect_timeout": 5.0,
    }
    assert database["CONN_HEALTH_CHECKS"] is True  # Django gives the pool its check


def test_the_pool_size_and_timeout_come_from_the_environment():
    env = {**deploy_env(), "DJANGO_DB_POOL_MAX_SIZE": "2", "DJANGO_DB_POOL_TIMEOUT": "2.5"}
    code = (
        "from django.db import connection as c; "
        "print(c.pool.min_size, c.pool.max_size, c.pool.timeout, c.pool.reconnect_timeout)"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "2", "2.5", "5.0"]


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_died_in_the_pool_is_replaced_not_handed_out():
    """After a PostgreSQL restart (here: its server process ended), the next request gets
    a live connection, not the dead one it left in the pool."""
    connection.ensure_connection()
    dead = connection.connection.info.backend_pid
    connection.close()  # back to the pool, idle
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [dead])

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (alive,) = cursor.fetchone()

    assert alive != dead


@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_at_once_share_the_pool_instead_of_a_connection_each():
    """As runserver's thread per request does: each thread queries and finishes (its
    connection goes back to the pool at the end of the request)."""
    from django.db import close_old_connections, connection

    def request(_):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid() FROM pg_sleep(0.2)")
                return cursor.fetchone()[0]
        finally:
            close_old_connections()  # what request_finished does

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        mine = cursor.fetchone()[0]
    with ThreadPoolExecutor(max_workers=16) as pool:
        backends = set(pool.map(request, range(16)))
    # The test's own connection is one of the four; the threads share the other three.
    assert len(backends) <= 3
    assert mine not in backends


def test_a_prefork_child_forgets_the_pool_it_inherited_without_closing_it():
    """Celery forks its pool processes: a child must open its own pool, and must not
    close the parent's (that would end the parent's sessions on the shared sockets)."""
    from celery.signals import worker_process_init
    from django.db.backends.postgresql.base import DatabaseWrapper

    import opsdesk.celery  # noqa: F401  (connects the handler)

    class InheritedPool:
        closed = False

        def close(self):
            self.closed = True

    inherited = InheritedPool()
    pools = DatabaseWrapper._connection_pools
    saved = dict(pools)
    pools["default"] = inherited
    try:
        worker_process_init.send(sender=None)
        assert "default" not in pools
        assert not inherited.closed
    finally:
        pools.clear()
        pools.update(saved)


def test_the_compose_stack_stays_within_postgresqls_connections():
    """Every process of docker-compose.yml with its pool full stays under PostgreSQL's
    default max_connections (100), leaving room for psql, migrations and a deploy."""
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    environment = services["web"]["environment"]
    pool = int(environment["DJANGO_DB_POOL_MAX_SIZE"])
    web = services["web"]["command"]
    worker = services["worker"]["command"]
    processes = (
        int(web[web.index("--workers") + 1])
        + int(worker[worker.index("--concurrency") + 1])
        + 1  # the worker's parent
        + 1  # beat
    )
    assert (processes, pool) == (9, 4)
    assert processes * pool <= 100 - 20
