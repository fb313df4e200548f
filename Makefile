# The interface of the project: make setup | demo | test | bench | lint. Each runs setup itself.
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
PYTHON ?= python3

.PHONY: setup demo test bench lint serve
setup: $(VENV)/.installed contracts/node_modules/.installed tests/js/node_modules/.installed frontend/dist/.built /usr/bin/chromium

# The portal's browser tests drive Debian's chromium (Playwright never downloads a browser): installed once.
/usr/bin/chromium:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

# requirements-dev.txt includes requirements.txt and adds the test, lint and type-check tools.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

contracts/node_modules/.installed: contracts/package-lock.json
	cd contracts && npm ci --no-audit --no-fund --loglevel=error
	touch $@

tests/js/node_modules/.installed: tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The web portal: npm ci from its lockfile, then a type-checked Vite build into frontend/dist (served by
# Django at /), redone only when a source, the lockfile or the build config changed.
PORTAL_SOURCES := $(shell find frontend/src -type f) frontend/index.html frontend/package.json \
	frontend/vite.config.ts frontend/tsconfig.json
frontend/node_modules/.installed: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

frontend/dist/.built: frontend/node_modules/.installed $(PORTAL_SOURCES)
	cd frontend && npm run --silent build
	touch $@

# The main job on embedded defaults: chain, contracts, demo data, a narrated scenario, then the API.
demo: setup
	$(PY) manage.py demo

# The production shape on this machine: gunicorn, Celery worker with beat, relayer, indexer (JSON logs),
# on DATABASE_URL, CELERY_BROKER_URL and ETH_RPC_URL (embedded defaults when unset). Ctrl-C stops all.
serve: setup
	$(PY) manage.py serve

test: setup
	$(PYTEST) -q

bench: setup
	$(PY) manage.py bench_consent --quick
	$(PY) manage.py bench_records --quick
	$(PY) manage.py bench_federated --quick
	$(PY) manage.py bench_portal
	$(PY) manage.py gas_report

# Lint, format and types, all clean; .ci/run calls this before the tests.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy healthhash contracts access ehr federated bench demo tests manage.py
