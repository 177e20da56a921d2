# The two set-up commands of dossier-audit. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# The lowest supported ClickHouse (dossier_runtime/engineversion.py), embedded by this chdb-core: the test
# suite serves it over HTTP too (tests/test_engine_matrix.py), beside the newest one of .venv.
CH_MINIMUM := 26.3.0
CH_VENV := .venv-ch$(CH_MINIMUM)
CH_STAMP := $(CH_VENV)/.installed

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[embedded]'
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

$(CH_STAMP):
	$(PYTHON) -m venv $(CH_VENV)
	$(CH_VENV)/bin/python -m pip install --quiet 'chdb-core==$(CH_MINIMUM)'
	touch $@

demo: $(STAMP)
	$(BIN)/dossier demo

# Three test workers on two cores: with two, the cores were busy 1.2 of 2 on average, the rest waiting (brokers'
# rebalances, CLI processes starting, loaders going idle), which a third worker fills. worksteal keeps one worker
# from finishing minutes after the others (with load scheduling one finished 222 s before the other). pytest on this
# 2-core machine: 837 s with two workers and worksteal, 621 s with three (the second run with a simulator test
# 20 s shorter).
test: $(TEST_STAMP) $(CH_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy schemas dossier_runtime dossier_audit producers consumers inspection bench
	DOSSIER_TEST_CHSERVER_PYTHONS=$(CURDIR)/$(CH_VENV)/bin/python $(BIN)/python -m pytest -n 3 --dist worksteal -q --durations=25

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy schemas dossier_runtime dossier_audit producers consumers inspection bench

clean:
	rm -rf $(VENV) $(CH_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
