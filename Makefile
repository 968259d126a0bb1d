# opsdesk: `make run` brings up the whole app locally, `make test` runs every check.
# Both keep their Python environment in .venv/ and their data in var/.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: run test bench lint format install clean-var

$(STAMP): requirements/dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "opsdesk needs Python 3.11; set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.lock
	@touch $(STAMP)

install: $(STAMP)

## Start PostgreSQL (embedded unless DATABASE_URL), a broker (embedded unless
## CELERY_BROKER_URL), migrate, seed the demo once, then web + worker + beat.
run: $(STAMP)
	$(PY) -m opsdesk.stack run

## Lint, migrations check, deploy check, and the whole pytest suite (browser included).
test: $(STAMP)
	$(PY) -m opsdesk.stack test $(PYTEST_ARGS)

## `python -m bench [webhooks] [health] [reconcile]`, all unless BENCH names one (`make bench
## BENCH=health`). webhooks: intake under gunicorn, measured with wrk next to a bare
## one-row-insert view (needs `wrk`; BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_WORKERS).
## health: customer health and the digests next to one SQL statement, on demo data seeded
## once (BENCH_CUSTOMERS, BENCH_DAYS, BENCH_RUNS, BENCH_RESEED=1). reconcile: one month for
## 10,000 customers next to one hand-written SQL statement, on its own seeded database.
bench: $(STAMP)
	$(PY) -m bench $(BENCH)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Remove local data (embedded database, broker, mail). Stop `make run` first.
clean-var:
	rm -rf var/
