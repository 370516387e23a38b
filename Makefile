# Two commands for a newcomer; each creates .venv and installs what it needs.
#   make run    start a devnet: local relay + LND simulator + the daemon (Ctrl-C stops it)
#   make test   run the whole test suite (what CI runs)
# and, with `make run` going in another terminal (or on its own):
#   make demo   a scripted trade where two takers race for one order
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

.PHONY: run demo test lint
run: $(STAMP)
	$(VENV)/bin/mostro-py devnet

demo: $(STAMP)
	$(VENV)/bin/mostro-py devnet demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
