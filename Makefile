# omgrab developer commands. `make demo` and `make test` bootstrap everything from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.omgrab-installed

.PHONY: demo test lint bench clean sysdeps

$(BIN)/python:
	bash scripts/bootstrap-venv.sh "$(PYTHON)" "$(VENV)"

$(STAMP): pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/omgrab demo

sysdeps:
	bash scripts/install-system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

# OMGRAB_RUN_SLOW=1 includes the long SIGKILL campaign (46 kills, ~2 min).
test: $(STAMP) sysdeps lint
	OMGRAB_RUN_SLOW=1 $(BIN)/python -m pytest

bench: $(STAMP) sysdeps
	$(BIN)/python benchmarks/recording.py
	$(BIN)/python benchmarks/output.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
