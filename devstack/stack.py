"""Bring up opsdesk on one machine: ``python -m devstack run|test``.

``run``  — PostgreSQL (embedded under var/ unless ``DATABASE_URL``), a Redis broker
           (embedded under var/ unless ``CELERY_BROKER_URL``), migrations, the demo data
           once, today's digests when their time has passed, then the web server, a
           Celery worker and beat under one process manager, on ``PORT`` (default 8000;
           links in emails follow it unless ``OPSDESK_BASE_URL`` is set).
           Ctrl-C stops everything, the embedded database included.
``test`` — the checks of ``make test``: ruff, the import layers (lint-imports),
           ``makemigrations --check``, ``check --deploy``, then pytest against real
           PostgreSQL and Redis, browser tests included, one pytest-xdist worker per core
           (``PYTEST_ARGS=-n0`` for one process).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devstack import embedded

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("OPSDESK_VAR_DIR", ROOT / "var")).resolve()
PY = sys.executable
BIN = Path(PY).parent
DEMO_USERS = ["support", "manager", "opslead", "admin"]
# Debian's packages the tests run for real, by the binary that shows each is installed:
# Chromium for the browser tests, Dovecot for the IMAP tests (devstack/mailserver.py).
TEST_PACKAGES = {
    ("OPSDESK_CHROMIUM", "/usr/bin/chromium"): ["chromium"],
    ("OPSDESK_DOVECOT", "/usr/sbin/dovecot"): ["dovecot-core", "dovecot-imapd"],
}


def say(message: str) -> None:
    print(f"opsdesk | {message}", flush=True)


def manage(*args: str, env: dict[str, str] | None = None, check: bool = True, **kwargs):
    return subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=check, **kwargs)


def _database(env: dict[str, str]) -> bool:
    """Point ``env`` at a database; return True when this call started the embedded one
    (and so should stop it), False for ``DATABASE_URL`` or a server already running."""
    if env.get("DATABASE_URL"):
        return False
    was_running = embedded.postgres_running(VAR)
    started = time.monotonic()
    env["DATABASE_URL"] = embedded.postgres_url(VAR)
    say(f"embedded PostgreSQL ready under {VAR / 'pg'} ({time.monotonic() - started:.1f}s)")
    return not was_running


def _wait_for_socket(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"the embedded broker did not start: no socket at {path}")
        time.sleep(0.05)


def web_env(env: dict[str, str]) -> str:
    """Default the web server's ``PORT`` (8000) and the links emails carry
    (``OPSDESK_BASE_URL``) to that port, unless set; returns the port."""
    port = env.setdefault("PORT", "8000")
    env.setdefault("OPSDESK_BASE_URL", f"http://127.0.0.1:{port}")
    return port


def send_todays_digests() -> None:
    """Today's digests, when their scheduled time (``OPSDESK_DIGEST_HOUR``/``_MINUTE``) has
    passed: beat would send them only tomorrow. Through ``send_digests`` (one claimed
    delivery per recipient and date), so a restart sends nothing twice."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    try:
        call_command("send_digests", if_due=True)
    except CommandError as error:  # recorded on the deliveries; the app still starts
        say(f"today's digests: {error}")


def _prepare_database(env: dict[str, str]) -> None:
    """Migrate, seed the demo data on the first run, and send today's digests if due, in
    this process (one Django start)."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsdesk.settings")
    import django
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    call_command("migrate", interactive=False, verbosity=1)
    # The demo data once: a database that holds customers is left as it is.
    call_command("seed_demo", if_empty=True)
    send_todays_digests()
    connections.close_all()


def run() -> int:
    from honcho.manager import Manager

    env = dict(os.environ)
    env.setdefault("DJANGO_DEBUG", "true")
    port = web_env(env)
    VAR.mkdir(parents=True, exist_ok=True)
    started_postgres = _database(env)
    manager = Manager()
    if not env.get("CELERY_BROKER_URL"):
        env["CELERY_BROKER_URL"] = embedded.broker_url(VAR)
        manager.add_process("broker", subprocess.list2cmdline(embedded.redis_command(VAR)), env=env)

    try:
        _prepare_database(env)
        manager.add_process("web", f"{PY} manage.py runserver 127.0.0.1:{port}", env=env, cwd=ROOT)
        celery = BIN / "celery"
        manager.add_process(
            "worker", f"{celery} -A opsdesk worker -l info --concurrency 2", env=env, cwd=ROOT
        )
        manager.add_process(
            "beat",
            f"{celery} -A opsdesk beat -l info -s {VAR / 'celerybeat-schedule'}",
            env=env,
            cwd=ROOT,
        )
        say(f"opsdesk is starting at http://127.0.0.1:{port}/admin/")
        say(f"demo logins ({', '.join(DEMO_USERS)}), password: opsdesk-demo")
        say("Ctrl-C stops everything")
        manager.loop()
        return manager.returncode or 0
    finally:
        if started_postgres:
            embedded.postgres_stop(VAR)
            say("embedded PostgreSQL stopped")


def _missing_packages(env: dict[str, str]) -> list[str]:
    return [
        package
        for (variable, default), packages in TEST_PACKAGES.items()
        if not Path(env.get(variable, default)).exists()
        for package in packages
    ]


def _test_packages_ready(env: dict[str, str]) -> bool:
    """True when every package of TEST_PACKAGES is installed; under CI=true, installs
    the missing ones first."""
    missing = _missing_packages(env)
    if not missing:
        return True
    if env.get("CI") == "true":
        say(f"CI: installing Debian's {' '.join(missing)} for the tests")
        apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "apt-get"]
        subprocess.run([*apt, "update", "-qq"], check=True)
        subprocess.run(
            [*apt, "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env={**env, "DEBIAN_FRONTEND": "noninteractive"},
        )
        return not _missing_packages(env)
    return False


def test(pytest_args: list[str]) -> int:
    env = dict(os.environ)
    # pytest-django runs with DEBUG off; the settings need a key for that.
    env.setdefault(
        "DJANGO_SECRET_KEY", "opsdesk-test-only-secret-key-not-for-production-use-0123456789"
    )
    env.setdefault("DJANGO_DEBUG", "false")
    env.setdefault("OPSDESK_WEBHOOK_SECRETS", "whsec_b3BzZGVzay10ZXN0LXdlYmhvb2stc2VjcmV0")
    env.setdefault(
        "OPSDESK_CRM_WEBHOOK_SECRETS", "whsec_b3BzZGVzay10ZXN0LWNybS13ZWJob29rLXNlY3JldA=="
    )

    steps = [
        ("ruff check", [str(BIN / "ruff"), "check", "."]),
        ("ruff format --check", [str(BIN / "ruff"), "format", "--check", "."]),
        # The layers of docs/architecture.md ([tool.importlinter] in pyproject.toml).
        ("lint-imports", [str(BIN / "lint-imports")]),
    ]
    for name, command in steps:
        say(name)
        if subprocess.run(command, cwd=ROOT, env=env).returncode:
            return 1

    started_postgres = _database(env)
    try:
        return _checks_and_pytest(env, pytest_args)
    finally:
        if started_postgres:
            embedded.postgres_stop(VAR)


def _parallel(pytest_args: list[str]) -> list[str]:
    """One pytest-xdist worker per core, each with its own test database
    (``test_<name>_gw0``, ...), its own live server port and its own broker keys
    (tests/conftest.py). ``--dist load`` hands tests out in collection order, which
    pytest-django sorts so that every worker runs its transactional tests (whose flush
    empties the tables, the roles migration's groups included) after its others;
    ``loadfile`` would run a file's transactional tests in the middle. Arguments given
    after these win: ``-n0`` runs in this process, ``-n 4`` sets the count; ``-p no:xdist``
    turns the plugin off entirely."""
    if any(arg.replace(" ", "") in {"-pno:xdist", "no:xdist"} for arg in pytest_args):
        return pytest_args
    return ["--numprocesses", "auto", "--dist", "load", *pytest_args]


def _checks_and_pytest(env: dict[str, str], pytest_args: list[str]) -> int:
    say("makemigrations --check")
    if manage("makemigrations", "--check", "--dry-run", env=env, check=False).returncode:
        return 1
    say("check --deploy (DJANGO_DEBUG=false)")
    deploy_env = {**env, "DJANGO_DEBUG": "false"}
    if manage(
        "check", "--deploy", "--fail-level", "WARNING", env=deploy_env, check=False
    ).returncode:
        return 1

    if not _test_packages_ready(env):
        missing = " ".join(_missing_packages(env))
        say("the browser and IMAP tests need Debian's Chromium and Dovecot; install them with:")
        print(f"    sudo apt-get install -y --no-install-recommends {missing}", flush=True)
        return 1

    broker = None
    if not env.get("REDIS_URL"):
        # A private Redis for this run, so tests never touch anyone else's data.
        broker_dir = Path(tempfile.mkdtemp(prefix="opsdesk-redis-"))
        command = embedded.redis_command(broker_dir)
        broker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_socket(embedded.redis_socket(broker_dir))
        env["REDIS_URL"] = f"unix://{embedded.redis_socket(broker_dir)}"
        env["CELERY_BROKER_URL"] = embedded.broker_url(broker_dir)
    env.setdefault("CELERY_BROKER_URL", env["REDIS_URL"])
    try:
        args = _parallel(pytest_args)
        say(f"pytest {subprocess.list2cmdline(args)}")
        return subprocess.run([str(BIN / "pytest"), *args], cwd=ROOT, env=env).returncode
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(timeout=10)
            shutil.rmtree(broker_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test"}:
        print(__doc__)
        return 2
    if argv[0] == "run":
        return run()
    return test(argv[1:])
