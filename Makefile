# Two commands for a newcomer; each creates .venv and installs what it needs.
#   make run    start the daemon (devnet defaults)
#   make test   run the whole test suite (what CI runs)
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

.PHONY: run test lint
run: $(STAMP)
	$(VENV)/bin/mostro-py run --config config/settings.toml

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
