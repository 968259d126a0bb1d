# opsdesk: `make run` brings up the whole app locally, `make test` runs every check.
# Both keep their Python environment in .venv/ and their data in var/.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: run test bench drills lint format install lock clean-var

$(STAMP): requirements/dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "opsdesk needs Python 3.11; set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.lock
	@touch $(STAMP)

install: $(STAMP)

## Regenerate both lockfiles after editing pyproject.toml's dependencies or groups: every
## file's sha256 recorded (installs use --require-hashes), every other pin kept (uv prefers
## the versions already in the output file): `make lock LOCK_ARGS="--upgrade-package celery"`
## moves one package, LOCK_ARGS=--upgrade all of them.
LOCK := $(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
	--quiet --custom-compile-command "make lock"
lock: $(STAMP)
	$(LOCK) $(LOCK_ARGS) -o requirements/base.lock
	$(LOCK) $(LOCK_ARGS) --group dev -o requirements/dev.lock

## Start PostgreSQL (embedded unless DATABASE_URL), a broker (embedded unless
## CELERY_BROKER_URL), migrate, seed the demo once, then web + worker + beat.
run: $(STAMP)
	$(PY) -m devstack run

## Lint, migrations check, deploy check, and the whole pytest suite (browser included).
test: $(STAMP)
	$(PY) -m devstack test $(PYTEST_ARGS)

## `python -m bench [webhooks] [health] [reconcile] [pages] [history] [crm_import] [testtime]`, all unless
## BENCH names some (`make bench BENCH="pages history"`); ONE markdown table of every
## measurement next to its reference, printed and written to var/bench/report-*.md (+ .json);
## non-zero exit when a target is missed. webhooks: intake under gunicorn vs a bare insert
## view (needs `wrk`; BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_WORKERS). health, reconcile,
## pages, history run on one demo database seeded once (seed_demo 10,000 customers x 365
## days + 1,000,000 tickets; BENCH_RESEED=1) and a 200-customer one: health and reconcile
## vs one SQL statement, pages: admin pages large vs small (BENCH_PAGE_RUNS), history: a
## service write with vs without history. crm_import: import_crm of 10,000 accounts and
## 20,000 contracts into a fresh database, then again (< 60 s each; BENCH_CRM_ACCOUNTS).
## testtime: `make test`'s wall time in a copy.
bench: $(STAMP)
	$(PY) -m bench $(BENCH)

## `python -m drills [same-id] [hostile] [worker] [beats] [mail-down] [redis]
## [postgres-restart]`, all unless DRILLS names some (`make drills DRILLS=hostile`): fault
## drills against a stack of their own (its own PostgreSQL under var/drills/pg with a fresh
## opsdesk_drills database, redis-server, an SMTP server, gunicorn, worker, beat); non-zero
## if a check fails.
drills: $(STAMP)
	$(PY) -m drills $(DRILLS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Remove local data (embedded database, broker, mail). Stop `make run` first.
clean-var:
	rm -rf var/
