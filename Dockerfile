# opsdesk application image: web (gunicorn), worker and beat (celery), migrate.
# Build: docker build -t opsdesk:local .   (docker-compose.yml does this for you)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The app runs as an unprivileged user; the code stays owned by root (read-only to it).
RUN groupadd --system --gid 10001 opsdesk \
 && useradd --system --uid 10001 --gid opsdesk --create-home --home-dir /home/opsdesk \
        --shell /usr/sbin/nologin opsdesk

WORKDIR /app

# Dependencies first, so code changes do not reinstall them. The production lockfile
# leaves out the embedded PostgreSQL/Redis that `make run` uses; every service is real here.
# Every file is checked against the sha256 the lockfile records.
COPY requirements/base.lock requirements/base.lock
RUN pip install --no-cache-dir --require-hashes -r requirements/base.lock

COPY . .

# Static files into STATIC_ROOT (var/static), served by whitenoise. settings.py needs a
# database URL and a broker URL (else it starts the embedded servers, which this image
# does not have) and a secret key with debug off; nothing connects at import, and these
# build-time values never reach the running containers.
RUN DATABASE_URL=postgresql://build:build@localhost:5432/build \
    CELERY_BROKER_URL=redis://localhost:6379/0 \
    DJANGO_SECRET_KEY=build-time-only-collectstatic-key-never-used-at-runtime-0123456789 \
    DJANGO_DEBUG=false \
    python manage.py collectstatic --noinput \
 && mkdir -p var/beat \
 && chown opsdesk:opsdesk var/beat

USER opsdesk

EXPOSE 8000

CMD ["gunicorn", "opsdesk.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
