# Weekly lottery & games backend. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
PGDATA  := .pgdata
PGPORT  ?= 54329
HTTP_PORT ?= 8000
DBNAME  ?= lottery
LOCAL_DATABASE_URL := postgresql://postgres@127.0.0.1:$(PGPORT)/$(DBNAME)
DATABASE_URL ?= $(LOCAL_DATABASE_URL)
# A fixed secret for the local demo only; set JWT_SECRET in any real deployment.
JWT_SECRET ?= local-demo-secret-change-me-0123456789abcdef
export DATABASE_URL JWT_SECRET

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
PG_PACKAGES := postgresql-15 postgresql-15-cron postgresql-15-plpgsql-check postgresql-contrib wrk
# The browser the /play page is tested in (tests/api/test_play_page.py), and the curl
# of the manual's examples (tests/test_readme.py runs them).
BROWSER_PACKAGES := chromium chromium-driver curl

.PHONY: help system-deps venv migrate db run stop psql test coverage bench bench-collector bench-fold soak token clean

# Coverage gate (thresholds in tests/plpgsql_coverage.py): Python lines of web/ and db/
# (pytest-cov), PL/pgSQL statements and branches (plpgsql_check's profiler), SQL
# functions named by tests; one table at the end of the run.
COVERAGE := --cov --cov-report= --plpgsql-cov

# `make help` shows these variables by their values, not their names.
HELP_VARS := PGDATA PGPORT HTTP_PORT DBNAME VENV

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) \
	  | sed $(foreach v,$(HELP_VARS),-e 's|$$($(v))|$($(v))|g') \
	  | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'
	@echo "local database: $(LOCAL_DATABASE_URL)  API: http://127.0.0.1:$(HTTP_PORT)"
	@echo "the lottery command: $(VENV)/bin/lottery --help (DATABASE_URL=$(LOCAL_DATABASE_URL))"

system-deps:  ## install PostgreSQL 15, pg_cron, headless Chromium and curl from Debian's packages if absent
	@if ! dpkg -s $(PG_PACKAGES) $(BROWSER_PACKAGES) >/dev/null 2>&1; then \
	  echo "==> installing $(PG_PACKAGES) $(BROWSER_PACKAGES) (apt)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(PG_PACKAGES) $(BROWSER_PACKAGES) >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@echo "==> building the virtualenv in $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed  ## create the virtualenv with every Python dependency

migrate: venv  ## apply migrations, functions and pg_cron jobs to DATABASE_URL
	@echo "==> applying the database to $(DATABASE_URL)"
	@$(PY) -m db.apply

db: system-deps venv  ## start the local cluster ($(PGDATA), port $(PGPORT)) and apply the database
	@echo "==> starting PostgreSQL 15 with pg_cron in $(PGDATA) on port $(PGPORT)"
	@$(PY) -m db.cluster start $(PGDATA) $(PGPORT)
	@psql -h 127.0.0.1 -p $(PGPORT) -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$(DBNAME)'" | grep -q 1 \
	  || psql -h 127.0.0.1 -p $(PGPORT) -U postgres -d postgres -qc "CREATE DATABASE $(DBNAME)"
	@DATABASE_URL=$(LOCAL_DATABASE_URL) $(PY) -m db.apply

run: db  ## local cluster + demo week + draw + API server on 127.0.0.1:$(HTTP_PORT)
	@DATABASE_URL=$(LOCAL_DATABASE_URL) $(PY) -m db.cli demo --if-empty --also-open-week --seed 2026
	@DATABASE_URL=$(LOCAL_DATABASE_URL) $(PY) -m db.cli draw --due
	@DATABASE_URL=$(LOCAL_DATABASE_URL) $(PY) -m db.cli welcome --port $(HTTP_PORT)
	@echo "==> serving on http://127.0.0.1:$(HTTP_PORT) (Ctrl-C stops the server; 'make stop' stops PostgreSQL)"
	@DATABASE_URL=$(LOCAL_DATABASE_URL) $(PY) -m web.server --host 127.0.0.1 --port $(HTTP_PORT)

stop:  ## stop the local cluster
	@echo "==> stopping PostgreSQL in $(PGDATA)"
	@test ! -d $(PGDATA) || $(PY) -m db.cluster stop $(PGDATA)

psql:  ## a psql shell on the local database
	@psql -h 127.0.0.1 -p $(PGPORT) -U postgres $(DBNAME)

# USER only when given on make's command line: the shell's own $$USER is no user of the API.
token: venv  ## print a JWT for USER=id (without USER=: the demo user `make run` shows); ADMIN=1 adds the admin claim
	@$(PY) -m db.cli token $(if $(filter command line,$(origin USER)),--user '$(USER)',--demo-user) $(if $(ADMIN),--admin)

test: system-deps venv  ## the whole test suite against a real PostgreSQL the tests start, with the coverage gate
	@echo "==> running the tests (coverage gate: Python lines and PL/pgSQL statements >= 85%)"
	@$(PY) -m pytest $(COVERAGE)

coverage: system-deps venv  ## the suite with coverage: one table, fails under 85%; Python HTML in build/coverage-html
	@echo "==> running the tests with coverage"
	@$(PY) -m pytest --cov --cov-report=html:build/coverage-html --plpgsql-cov

bench: system-deps venv  ## benchmarks (figures, not pass/fail): draw, ingest and the fold (COPY, the collector's pattern), reads
	@$(PY) -m bench.run

bench-collector: system-deps venv  ## the collector's write pattern alone (PARTICIPANTS=100000 SHARES=20000)
	@$(PY) -m bench.collector --participants $(or $(PARTICIPANTS),100000) --shares $(or $(SHARES),20000)

bench-fold: system-deps venv  ## the write path and the background fold alone (PARTICIPANTS=100000 SECONDS=60)
	@$(PY) -m bench.fold --participants $(or $(PARTICIPANTS),100000) --sustain-seconds $(or $(SECONDS),60)

soak: system-deps venv  ## 5 minutes of mixed load on loopback with a draw in the middle (SECONDS=300)
	@$(PY) -m bench.soak --seconds $(or $(SECONDS),300)

clean: stop  ## stop the cluster and remove it, the virtualenv and caches
	rm -rf $(PGDATA) $(VENV) .pytest_cache bench/out *.egg-info build .coverage .coverage.*
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
