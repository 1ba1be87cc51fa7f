# The two commands a fresh clone needs; both create .venv and install what they use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The product and its sandbox (a distribution of its own, which the `sandbox` extra names),
# both editable, in one pip run, so that pip takes runbook-sandbox from here and not from an index.
SANDBOX := ./packaging/runbook-sandbox
DEPS := pyproject.toml $(SANDBOX)/pyproject.toml

# Reinstall only when a dependency list changes.
$(VENV)/.stamp-dev: $(DEPS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e $(SANDBOX)
	touch $@

install: $(VENV)/.stamp-dev

demo: install
	$(BIN)/runbook demo --yes

# Four workers on two cores: the tests spend much of their time waiting on simulated deployments and
# probes, so two more workers fill that time (measured: 357 s with -n 4, 428 s with -n 2). worksteal lets an idle
# worker take queued tests from a busy one, so a few long tests at the end do not leave the others waiting.
# PYTHONDONTWRITEBYTECODE is cleared for the run: the suite starts 130 runbook processes, and each
# would compile the project's modules again (measured: 1.05 s of CPU per process against 0.83 s).
test: install
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n 4 --dist worksteal

$(VENV)/.stamp-bench: $(DEPS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]' -e $(SANDBOX)
	touch $@

bench: $(VENV)/.stamp-bench
	$(BIN)/python benchmarks/manual_vs_runbook.py

clean:
	rm -rf $(VENV) build dist .pytest_cache
