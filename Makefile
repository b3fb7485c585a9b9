# The README's commands. `make run` starts the whole platform; `make test` lints and tests it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=

.PHONY: run test lint format install install-dev bench seed clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements.lock | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements.txt -c requirements.lock
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt requirements.txt requirements.lock | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements-dev.txt -c requirements.lock
	touch $(VENV)/.installed $@

# The engine of the oldest supported ClickHouse server (24.8), in its own virtual environment:
# the store's tests run the emulated server and the migrations on it too (testing/engines.py).
OLDEST_ENGINE ?= var/clickhouse-24.8

$(OLDEST_ENGINE)/.installed: testing/requirements-oldest-engine.txt
	$(PYTHON) -m venv $(OLDEST_ENGINE)
	$(OLDEST_ENGINE)/bin/pip install --quiet -r testing/requirements-oldest-engine.txt
	touch $@

# GrowthBook's gbstats, the oracle of the experiment statistics' tests, in its own virtual
# environment: its pins (numpy<2, pandas<2) conflict with the project's.
GBSTATS_ENV ?= var/gbstats

$(GBSTATS_ENV)/.installed: testing/requirements-gbstats.txt
	$(PYTHON) -m venv $(GBSTATS_ENV)
	$(GBSTATS_ENV)/bin/pip install --quiet -r testing/requirements-gbstats.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.dev-installed

## run: install, migrate, seed demo data and start web + worker + beat on http://127.0.0.1:$(PORT)
run: install
	$(PY) manage.py run

## test: ruff lint and format check, then the whole test suite
test: install-dev lint $(OLDEST_ENGINE)/.installed $(GBSTATS_ENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

seed: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py migrate_store
	$(PY) manage.py seed_demo

bench: install
	$(PY) manage.py bench $(AREA)

clean:
	rm -rf var/ .pytest_cache
