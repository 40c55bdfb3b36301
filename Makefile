# Pulseboard: `make run` serves the app in embedded mode, `make test` runs the whole suite.
# On a fresh clone these need only python3 (>= 3.11) and make: uv is fetched into .tools/.

PORT ?= 8000
HOST ?= 127.0.0.1
UV_VERSION := 0.13.9
TOOLS := $(CURDIR)/.tools
UV := $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/bin/uv)
VENV := $(CURDIR)/backend/.venv
BIN := $(VENV)/bin

# uv uses the python3 already here and never downloads an interpreter of its own.
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test lint format bench bench-ingest bench-query bench-live install migrate clean

run: install ## Serve on http://$(HOST):$(PORT) with SQLite under ./data (PORT= to change)
	$(BIN)/pulseboard serve --host $(HOST) --port $(PORT)

test: install ## The whole suite (PostgreSQL cases need PULSEBOARD_TEST_DATABASE_URL)
	cd backend && $(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff (lint and format check) and mypy
	cd backend && $(BIN)/ruff check . ../bench && $(BIN)/ruff format --check . ../bench && $(BIN)/mypy

format: install
	cd backend && $(BIN)/ruff check --fix . ../bench && $(BIN)/ruff format . ../bench

bench: install ## Benchmarks (need PostgreSQL, Redis and wrk); tables printed, JSON in bench/results/
	$(BIN)/python bench/sketches.py
	$(BIN)/python bench/enrich.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/partial_rollups.py
	$(BIN)/python bench/query.py
	$(BIN)/python bench/live.py

bench-ingest: install ## One benchmark: ingest (API, pipeline, embedded)
	$(BIN)/python bench/ingest.py

bench-query: install ## One benchmark: analytics queries on 10M events (the dataset is kept)
	$(BIN)/python bench/query.py

bench-live: install ## One benchmark: live WebSocket latency and idle connections
	$(BIN)/python bench/live.py

migrate: install
	$(BIN)/pulseboard migrate

install: $(VENV)/.installed

$(VENV)/.installed: backend/pyproject.toml backend/uv.lock | $(UV)
	# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set, every process would
	# otherwise compile its imports again (2.4 s against 4.7 s to import the app, measured).
	cd backend && $(UV) sync --frozen --compile-bytecode
	touch $@

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

clean:
	rm -rf $(TOOLS) $(VENV)
