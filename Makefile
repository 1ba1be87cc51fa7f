# The two commands a fresh clone needs; both create .venv and install what they use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.stamp-dev

demo: install
	$(BIN)/runbook demo --yes

test: install
	$(BIN)/python -m pytest -q -n 2

$(VENV)/.stamp-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.stamp-bench
	$(BIN)/python benchmarks/manual_vs_runbook.py

clean:
	rm -rf $(VENV) build dist .pytest_cache
