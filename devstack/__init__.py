"""The development stack: opsdesk on one machine with only Python (``make run``,
``make test``), with its own PostgreSQL and Redis under ``var/`` when no
``DATABASE_URL`` / ``CELERY_BROKER_URL`` is given. Imports no opsdesk app; production
runs the real services instead (docker-compose.yml)."""
