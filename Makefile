# Tower: two commands set everything up on a machine that only has python3 (3.11+).
#   make demo   build a SQLite database from the example policy and portfolio, print it
#   make test   lint, type-check and run the whole test suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DB := demo.db
DEMO_TODAY := 2026-11-23
DEMO_ENV := DATABASE_URL=sqlite:///$(DEMO_DB) TOWER_POLICY=examples/retail/tower.yaml

.PHONY: install demo test lint properties-deep chaos clean

install: $(STAMP)

# A venv left half made (no pip: its creation was cut short) is made again.
$(STAMP): pyproject.toml
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	rm -f $(DEMO_DB)
	$(DEMO_ENV) $(BIN)/tower policy check examples/retail/tower.yaml
	$(DEMO_ENV) $(BIN)/tower init
	$(DEMO_ENV) $(BIN)/tower import examples/retail/portfolio.csv --by U0TOWERMGR
	$(DEMO_ENV) $(BIN)/tower list
	$(DEMO_ENV) $(BIN)/tower pipeline --today $(DEMO_TODAY)
	$(DEMO_ENV) $(BIN)/tower conflicts --all --today $(DEMO_TODAY)
	$(DEMO_ENV) $(BIN)/tower plan --today $(DEMO_TODAY)
	$(DEMO_ENV) $(BIN)/tower arbitration --today $(DEMO_TODAY)
	$(DEMO_ENV) $(BIN)/tower demo --story

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tower bot migrations tests .ci/postgres.py
	$(BIN)/lint-imports --no-cache --no-logo

test: lint
	$(BIN)/pytest

# The engine against the brute-force reference, 5,000 examples a property (make test: 200).
properties-deep: $(STAMP)
	HYPOTHESIS_PROFILE=deep $(BIN)/pytest -p no:cacheprovider tests/engine/test_reference_properties.py

# Faults, kills, races, bad input and security probes on fresh SQLite and PostgreSQL
# databases; one JSON summary. CHAOS_BUDGET seconds in all (the README's figures: 900).
CHAOS_BUDGET ?= 900
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos --budget $(CHAOS_BUDGET)

clean:
	rm -rf $(VENV) $(DEMO_DB) .pytest_cache .mypy_cache .ruff_cache *.egg-info
