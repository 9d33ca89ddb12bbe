# One entry point for developers and CI. `make run` and `make test` are the README's commands.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench bench-inbox audit lock clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

## Build the demo agency's site and serve it with the report service on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/outreach serve

## Every test suite, the real-server ones included
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/build_speed.py

## The team's inbox at 100,000 reports against 1,000, and sign-in, on SQLite and on PostgreSQL
## (about eight minutes; --databases sqlite for one)
bench-inbox: $(STAMP)
	$(BIN)/python bench/inbox.py

## Check constraints.txt against the vulnerability database; fails if it cannot be reached,
## unless OFFLINE=1, which then says the check was skipped and exits 0
audit: AUDIT_FLAGS := $(if $(filter 1 yes true,$(OFFLINE)),--offline)
audit: $(STAMP)
	$(BIN)/python -m outreach.audit_deps --requirements constraints.txt $(AUDIT_FLAGS)

## Re-pin every dependency after changing pyproject.toml
lock:
	@set -e; tmp=$$(mktemp -d); \
	$(PYTHON) -m venv $$tmp; \
	$$tmp/bin/python -m pip install --quiet -e ".[dev]"; \
	$$tmp/bin/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt.new; \
	mv constraints.txt.new constraints.txt; rm -rf $$tmp

clean:
	rm -rf $(VENV) var site
