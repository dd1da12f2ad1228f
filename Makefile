# omgrab developer commands. `make demo` and `make test` bootstrap everything from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.omgrab-installed

.PHONY: demo test lint bench clean sysdeps compat faults

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

# OMGRAB_RUN_SLOW=1 includes the long SIGKILL campaign (46 kills, ~2 min). The published
# package's own tests run first (tests.compat_published); the quick-start test is in the suite.
test: $(STAMP) sysdeps lint
	$(BIN)/python -m tests.compat_published
	OMGRAB_RUN_SLOW=1 $(BIN)/python -m pytest

# omgrab 0.1.2's bundled tests (downloaded at run time) and its README quick start, against this
# package; deselect lists: tests/compat_private.txt, tests/compat_pending.txt (docs/compat.md).
compat: $(STAMP) sysdeps
	$(BIN)/python -m tests.compat_published
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_compat_quickstart.py

# Long form of the fault campaign in tests/faults (>= 50 power-loss iterations, 3000 fuzzed
# console requests, an 8 h simulated soak, network namespaces and the 30-minute real-time soak of
# `omgrab run`: about 1 h 15 min on a busy 2-vCPU machine). A test may take up to 40 min here
# (the real-time soak sets its own bound); OMGRAB_SOAK_REALTIME_S shortens that soak.
faults: $(STAMP) sysdeps
	OMGRAB_FAULTS=1 $(BIN)/python -m pytest tests/faults -m faults -p no:cacheprovider -s \
		--timeout 2400 --durations 0

bench: $(STAMP) sysdeps
	$(BIN)/python benchmarks/recording.py
	$(BIN)/python benchmarks/output.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
