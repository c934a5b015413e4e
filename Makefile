# Skiff: `make demo` runs a local cluster and deploys an example; `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint unit integration bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e . -e node-agent
	touch $@

demo: setup
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/demo.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -q tests/unit

integration: setup
	$(BIN)/pytest -q tests/integration

test: lint
	$(BIN)/pytest -q tests

bench: setup
	$(BIN)/python bench/api_latency.py

clean:
	rm -rf $(VENV) .skiff .pytest_cache .mypy_cache .ruff_cache
