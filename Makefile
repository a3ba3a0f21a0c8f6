# The README's commands. Each one creates what it needs by itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest sync-contract framework-tests package-check bench bench-peers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The package and its command line: what `pip install 'sessionstore[cli]'` gives a user.
$(VENV)/.cli-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[cli]'
	touch $@

# Every extra (the framework integrations included) and every dev tool.
$(VENV)/.all-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[all,integrations,dev]'
	touch $@

# Every extra, the dev tools, and the benchmark's plotting and profiling.
$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[all,integrations,dev,bench]'
	touch $@

# Records a short conversation in the default store and prints the prompt history.
demo: $(VENV)/.cli-installed
	$(BIN)/sessionstore demo

lint: $(VENV)/.all-installed
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench

typecheck: $(VENV)/.all-installed
	$(BIN)/mypy --strict src

pytest: $(VENV)/.all-installed
	$(BIN)/python -m pytest

# The contract suite again, every call made through the blocking facade
# (sessionstore.sync) from worker threads; see tests/sync/through_facade.py.
sync-contract: $(VENV)/.all-installed
	$(BIN)/python -m pytest tests/contract --through-sync

# The frameworks' own test suites, run against our adapters on every backend
# (downloads the pinned source distributions into .cache/frameworks/ once).
framework-tests: $(VENV)/.all-installed
	$(BIN)/python -m tests.frameworks.openai_agents

# The built sdist and wheel, installed as users install them, on every Python the
# classifiers name (virtualenvs under .cache/package/); see tests/package/check.py.
package-check: | $(BIN)/python
	$(BIN)/python -m tests.package.check

test: lint typecheck pytest sync-contract framework-tests package-check

# Not part of `make test`: measures, asserts nothing; see docs/benchmarks.md.
bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.report
	$(BIN)/python -m bench.plot

# Installs each peer in its own virtualenv under bench/.venvs/ on first use.
bench-peers: $(VENV)/.bench-installed
	$(BIN)/python -m bench.peers.run $(BENCH_ARGS)
	$(BIN)/python -m bench.report
	$(BIN)/python -m bench.plot

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .cache/package
