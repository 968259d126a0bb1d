import ast
import os
import runpy
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from opsdesk import settings as settings_module
from opsdesk.settings import (
    envbool,
    envchoice,
    envdecimal,
    envemail,
    envfloat,
    envimport,
    envint,
    envlist,
    envstr,
    envtimezone,
    envurl,
)

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


def test_envint_holds_a_value_to_its_bounds(monkeypatch):
    monkeypatch.setenv("OPSDESK_N", "0")
    with pytest.raises(ImproperlyConfigured) as below:
        envint("OPSDESK_N", 5, minimum=1)
    monkeypatch.setenv("OPSDESK_N", "24")
    with pytest.raises(ImproperlyConfigured) as above:
        envint("OPSDESK_N", 5, minimum=0, maximum=23)
    assert str(below.value) == "OPSDESK_N must be at least 1, got '0'"
    assert str(above.value) == "OPSDESK_N must be at most 23, got '24'"
    monkeypatch.setenv("OPSDESK_N", " 23 ")
    assert envint("OPSDESK_N", 5, minimum=0, maximum=23) == 23


@pytest.mark.parametrize("raw", ["", "   "])
def test_an_empty_variable_means_the_default(monkeypatch, raw):
    monkeypatch.setenv("OPSDESK_X", raw)
    assert envstr("OPSDESK_X", "fallback") == "fallback"
    assert envint("OPSDESK_X", 7) == 7
    assert envfloat("OPSDESK_X", 0.5) == 0.5
    assert envdecimal("OPSDESK_X", "1.00") == Decimal("1.00")
    assert envbool("OPSDESK_X", True) is True


def test_envstr_strips_the_value(monkeypatch):
    monkeypatch.setenv("OPSDESK_X", "  mail.example.com\n")
    assert envstr("OPSDESK_X", "localhost") == "mail.example.com"


@pytest.mark.parametrize("raw", ["3,5", "nan", "inf", "-Infinity", "1e999"])
def test_envfloat_rejects_what_is_not_a_finite_number(monkeypatch, raw):
    monkeypatch.setenv("OPSDESK_F", raw)
    with pytest.raises(ImproperlyConfigured) as error:
        envfloat("OPSDESK_F", 1.0)
    assert str(error.value) == f"OPSDESK_F must be a number, got {raw!r}"


def test_envfloat_holds_a_value_to_its_bounds(monkeypatch):
    monkeypatch.setenv("OPSDESK_F", "1.5")
    with pytest.raises(ImproperlyConfigured) as error:
        envfloat("OPSDESK_F", 0.3, minimum=0, maximum=1)
    assert str(error.value) == "OPSDESK_F must be at most 1, got '1.5'"
    monkeypatch.setenv("OPSDESK_F", "0.25")
    assert envfloat("OPSDESK_F", 0.3, minimum=0, maximum=1) == 0.25


def test_envdecimal_reads_the_exact_decimal(monkeypatch):
    monkeypatch.setenv("OPSDESK_D", "0.005")
    value = envdecimal("OPSDESK_D", "1")
    assert isinstance(value, Decimal)
    assert value == Decimal("0.005")
    assert envdecimal("OPSDESK_UNSET_D", "1.00") == Decimal("1.00")


@pytest.mark.parametrize("raw", ["1,00", "1.00 EUR", "NaN", "sNaN", "Infinity", "-inf"])
def test_envdecimal_rejects_what_is_not_a_finite_decimal(monkeypatch, raw):
    monkeypatch.setenv("OPSDESK_D", raw)
    with pytest.raises(ImproperlyConfigured) as error:
        envdecimal("OPSDESK_D", "1.00")
    assert str(error.value) == f"OPSDESK_D must be a decimal number, got {raw!r}"


def test_envdecimal_holds_a_value_to_its_bounds(monkeypatch):
    monkeypatch.setenv("OPSDESK_D", "-0.01")
    with pytest.raises(ImproperlyConfigured) as error:
        envdecimal("OPSDESK_D", "1.00", minimum=Decimal(0))
    assert str(error.value) == "OPSDESK_D must be at least 0, got '-0.01'"


def test_envchoice_names_the_choices(monkeypatch):
    monkeypatch.setenv("OPSDESK_C", "info")
    with pytest.raises(ImproperlyConfigured) as error:
        envchoice("OPSDESK_C", "INFO", ("DEBUG", "INFO"))
    assert str(error.value) == "OPSDESK_C must be one of DEBUG, INFO, got 'info'"
    monkeypatch.setenv("OPSDESK_C", "DEBUG")
    assert envchoice("OPSDESK_C", "INFO", ("DEBUG", "INFO")) == "DEBUG"


@pytest.mark.parametrize(
    "raw", ["localhost:8000", "ops.example.com", "ftp://ops.example.com", "https://"]
)
def test_envurl_wants_the_scheme_and_a_host(monkeypatch, raw):
    monkeypatch.setenv("OPSDESK_U", raw)
    with pytest.raises(ImproperlyConfigured) as error:
        envurl("OPSDESK_U", "http://127.0.0.1:8000", schemes=("http", "https"), host=True)
    assert str(error.value) == (
        f"OPSDESK_U must be a URL starting http:// or https:// and a host name, got {raw!r}"
    )


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("mysql://opsdesk:s3cret@db/opsdesk", "one starting mysql://"),
        ("opsdesk:s3cret@db/opsdesk", "one without a scheme"),
        ("postgres:/opsdesk:s3cret@db/opsdesk", "one without a scheme"),
    ],
)
def test_envurl_keeps_a_secret_urls_password_out_of_the_message(monkeypatch, raw, shown):
    monkeypatch.setenv("OPSDESK_U", raw)
    with pytest.raises(ImproperlyConfigured) as error:
        envurl("OPSDESK_U", "", schemes=("postgres", "postgresql"), secret=True)
    assert str(error.value) == (
        f"OPSDESK_U must be a URL starting postgres:// or postgresql://, got {shown}"
    )
    assert "s3cret" not in str(error.value)


def test_envurl_with_an_empty_default_is_optional(monkeypatch):
    monkeypatch.setenv("OPSDESK_U", "")
    assert envurl("OPSDESK_U", "", schemes=("redis",), secret=True) == ""
    # A socket URL has no host name; only the scheme is asked for.
    monkeypatch.setenv("OPSDESK_U", "redis+socket:///srv/redis.sock")
    assert envurl("OPSDESK_U", "", schemes=("redis+socket",)) == "redis+socket:///srv/redis.sock"


@pytest.mark.parametrize("raw", ["opsdesk@example.com", "opsdesk <opsdesk@example.com>"])
def test_envemail_takes_an_address_with_or_without_a_name(monkeypatch, raw):
    monkeypatch.setenv("OPSDESK_E", raw)
    assert envemail("OPSDESK_E", "x@localhost") == raw


@pytest.mark.parametrize("raw", ["opsdesk", "opsdesk@", "ops desk <opsdesk at example.com>"])
def test_envemail_rejects_what_is_not_an_address(monkeypatch, raw):
    monkeypatch.setenv("OPSDESK_E", raw)
    with pytest.raises(ImproperlyConfigured) as error:
        envemail("OPSDESK_E", "x@localhost")
    assert str(error.value) == f"OPSDESK_E must be an email address, got {raw!r}"


def test_envtimezone_knows_the_zones(monkeypatch):
    monkeypatch.setenv("OPSDESK_TZ", "Europe/Paris")
    assert envtimezone("OPSDESK_TZ", "UTC") == "Europe/Paris"
    monkeypatch.setenv("OPSDESK_TZ", "Europe/Pariss")
    with pytest.raises(ImproperlyConfigured) as error:
        envtimezone("OPSDESK_TZ", "UTC")
    assert str(error.value) == (
        "OPSDESK_TZ must be a time zone name such as Europe/Paris, got 'Europe/Pariss' "
        "(not in this system's time zone data)"
    )


def test_envimport_wants_a_class_that_imports(monkeypatch):
    monkeypatch.setenv("OPSDESK_I", "django.core.mail.backends.locmem.EmailBackend")
    assert envimport("OPSDESK_I", "x") == "django.core.mail.backends.locmem.EmailBackend"
    for raw in (
        "django.core.mail.backends.smpt.EmailBackend",
        "django.core.mail.backends.smtp.Backend",
        "smtp",
    ):
        monkeypatch.setenv("OPSDESK_I", raw)
        with pytest.raises(ImproperlyConfigured) as error:
            envimport("OPSDESK_I", "x")
        assert str(error.value) == (
            f"OPSDESK_I must be the dotted path of an importable class, got {raw!r}"
        )


def read_settings(monkeypatch, **variables: str) -> dict:
    """The settings module run afresh in this process with `variables` set, over a base
    that needs no server (so nothing embedded starts)."""
    base = {
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
    }
    for name, value in {**base, **variables}.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(settings_module.__file__)


def test_the_reconciliation_tolerances_are_decimals(monkeypatch, settings):
    defaults = (settings.OPSDESK_RECONCILE_TOLERANCE_MIN, settings.OPSDESK_RECONCILE_TOLERANCE_RATE)
    assert defaults == (Decimal("1.00"), Decimal("0.005"))
    values = read_settings(
        monkeypatch,
        OPSDESK_RECONCILE_TOLERANCE_MIN="2.50",
        OPSDESK_RECONCILE_TOLERANCE_RATE="0.01",
    )
    assert values["OPSDESK_RECONCILE_TOLERANCE_MIN"] == Decimal("2.50")
    assert values["OPSDESK_RECONCILE_TOLERANCE_RATE"] == Decimal("0.01")
    assert type(values["OPSDESK_RECONCILE_TOLERANCE_RATE"]) is Decimal


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "OPSDESK_RECONCILE_TOLERANCE_MIN",
            "1,00",
            "OPSDESK_RECONCILE_TOLERANCE_MIN must be a decimal number, got '1,00'",
        ),
        (
            "OPSDESK_RECONCILE_TOLERANCE_MIN",
            "-1",
            "OPSDESK_RECONCILE_TOLERANCE_MIN must be at least 0, got '-1'",
        ),
        (
            "OPSDESK_RECONCILE_TOLERANCE_RATE",
            "0.5%",
            "OPSDESK_RECONCILE_TOLERANCE_RATE must be a decimal number, got '0.5%'",
        ),
        (
            "OPSDESK_RECONCILE_TOLERANCE_RATE",
            "5",
            "OPSDESK_RECONCILE_TOLERANCE_RATE must be at most 1, got '5'",
        ),
        (
            "DATABASE_URL",
            "mysql://opsdesk:s3cret@db/opsdesk",
            "DATABASE_URL must be a URL starting postgres:// or postgresql://, "
            "got one starting mysql://",
        ),
        (
            "DATABASE_URL",
            "postgresql://opsdesk:s3cr#t@db:5432/opsdesk",
            "DATABASE_URL is not a valid URL (is a special character in the password not "
            "%-encoded?)",
        ),
        (
            "CELERY_BROKER_URL",
            "localhost:6379",
            "CELERY_BROKER_URL must be a URL starting redis:// or rediss:// or "
            "redis+socket://, got one without a scheme",
        ),
        (
            "OPSDESK_BASE_URL",
            "ops.example.com",
            "OPSDESK_BASE_URL must be a URL starting http:// or https:// and a host name, "
            "got 'ops.example.com'",
        ),
        (
            "OPSDESK_TIME_ZONE",
            "CET+1",
            "OPSDESK_TIME_ZONE must be a time zone name such as Europe/Paris, got 'CET+1' "
            "(not in this system's time zone data)",
        ),
        (
            "DJANGO_LOG_LEVEL",
            "verbose",
            "DJANGO_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'verbose'",
        ),
        (
            "EMAIL_BACKEND",
            "django.core.mail.backends.smpt.EmailBackend",
            "EMAIL_BACKEND must be the dotted path of an importable class, "
            "got 'django.core.mail.backends.smpt.EmailBackend'",
        ),
        (
            "DEFAULT_FROM_EMAIL",
            "opsdesk",
            "DEFAULT_FROM_EMAIL must be an email address, got 'opsdesk'",
        ),
        (
            "OPSDESK_SUPPORT_FROM",
            "Acme Support",
            "OPSDESK_SUPPORT_FROM must be an email address, got 'Acme Support'",
        ),
        (
            "OPSDESK_DIGEST_FALLBACK_EMAIL",
            "account-management",
            "OPSDESK_DIGEST_FALLBACK_EMAIL must be an email address, got 'account-management'",
        ),
        ("EMAIL_PORT", "70000", "EMAIL_PORT must be at most 65535, got '70000'"),
        ("EMAIL_TIMEOUT", "0", "EMAIL_TIMEOUT must be at least 1, got '0'"),
        ("OPSDESK_DIGEST_HOUR", "24", "OPSDESK_DIGEST_HOUR must be at most 23, got '24'"),
        ("OPSDESK_DIGEST_MINUTE", "60", "OPSDESK_DIGEST_MINUTE must be at most 59, got '60'"),
        ("OPSDESK_RECONCILE_HOUR", "-1", "OPSDESK_RECONCILE_HOUR must be at least 0, got '-1'"),
        (
            "OPSDESK_RECONCILE_MINUTE",
            "90",
            "OPSDESK_RECONCILE_MINUTE must be at most 59, got '90'",
        ),
        ("DJANGO_DB_POOL_MAX_SIZE", "0", "DJANGO_DB_POOL_MAX_SIZE must be at least 1, got '0'"),
        ("DJANGO_DB_POOL_TIMEOUT", "inf", "DJANGO_DB_POOL_TIMEOUT must be a number, got 'inf'"),
        (
            "OPSDESK_HISTORY_RETENTION_DAYS",
            "0",
            "OPSDESK_HISTORY_RETENTION_DAYS must be at least 1, got '0'",
        ),
        (
            "OPSDESK_HEALTH_ERROR_RATE_FLOOR",
            "2",
            "OPSDESK_HEALTH_ERROR_RATE_FLOOR must be at most 1, got '2'",
        ),
        (
            "OPSDESK_HEALTH_USAGE_DROP",
            "30%",
            "OPSDESK_HEALTH_USAGE_DROP must be a number, got '30%'",
        ),
        (
            "OPSDESK_WEBHOOK_MAX_ATTEMPTS",
            "0",
            "OPSDESK_WEBHOOK_MAX_ATTEMPTS must be at least 1, got '0'",
        ),
        (
            "OPSDESK_SESSION_IDLE_MINUTES",
            "0",
            "OPSDESK_SESSION_IDLE_MINUTES must be at least 1, got '0'",
        ),
        (
            "OPSDESK_LOGIN_FAILURE_LIMIT",
            "0",
            "OPSDESK_LOGIN_FAILURE_LIMIT must be at least 1, got '0'",
        ),
    ],
)
def test_a_malformed_setting_stops_the_start_naming_its_variable(
    monkeypatch, variable, value, message
):
    with pytest.raises(ImproperlyConfigured) as error:
        read_settings(monkeypatch, **{variable: value})
    assert str(error.value) == message


def test_an_empty_variable_leaves_the_setting_at_its_default(monkeypatch):
    values = read_settings(
        monkeypatch,
        EMAIL_HOST="",
        OPSDESK_BASE_URL="",
        OPSDESK_TIME_ZONE="",
        DJANGO_LOG_LEVEL="",
        OPSDESK_RECONCILE_TOLERANCE_MIN="",
    )
    assert values["EMAIL_HOST"] == "localhost"
    assert values["OPSDESK_BASE_URL"] == "http://127.0.0.1:8000"
    assert values["TIME_ZONE"] == "UTC"
    assert values["LOGGING"]["root"]["level"] == "INFO"
    assert values["OPSDESK_RECONCILE_TOLERANCE_MIN"] == Decimal("1.00")


def test_every_variable_is_read_through_a_strict_helper():
    """os.environ appears only inside the env* helpers, so a new setting cannot skip them."""
    tree = ast.parse(Path(settings_module.__file__).read_text())
    readers = set()
    for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
        for node in ast.walk(function):
            if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
                readers.add(function.name)
    outside = [
        node.lineno
        for statement in tree.body
        if not isinstance(statement, ast.FunctionDef)
        for node in ast.walk(statement)
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}
    ]
    assert readers == {"envstr", "envlist"}
    assert outside == []


def test_a_malformed_tolerance_stops_manage_py_with_the_message():
    env = {**deploy_env(), "OPSDESK_RECONCILE_TOLERANCE_RATE": "0,5"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: "
        "OPSDESK_RECONCILE_TOLERANCE_RATE must be a decimal number, got '0,5'"
    )


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
        # A deployment has the CRM's webhook secrets too (support.checks warns without).
        "OPSDESK_CRM_WEBHOOK_SECRETS": "whsec_b3BzZGVzay10ZXN0LWNybS13ZWJob29rLXNlY3JldA==",
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


@pytest.mark.django_db
def test_the_app_s_connections_run_without_postgres_jit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ("", "-c jit=off"),
        ("?options=-c%20statement_timeout%3D5000", "-c statement_timeout=5000 -c jit=off"),
        ("?options=-c%20jit%3Don", "-c jit=on"),
    ],
)
def test_jit_is_turned_off_unless_the_database_url_says_otherwise(query, options):
    url = deploy_env()["DATABASE_URL"]
    if query and "?" in url:  # the embedded server's URL has a query of its own (host=)
        query = "&" + query[1:]
    env = {**deploy_env(), "DATABASE_URL": url + query}
    code = (
        "from django.conf import settings as s; print(s.DATABASES['default']['OPTIONS']['options'])"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == options


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
