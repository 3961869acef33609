# Two commands set up everything on a fresh machine: `make demo` and `make test`.
#
# `make test` runs lint once (on Python 3.11), then the whole suite on every Python of MATRIX,
# each in its own virtualenv with the dependency versions pip picks for that Python (3.11 and
# 3.12 get Quart 0.22, 3.13 gets Quart 0.23). Interpreters are found by tools/find-python
# (PYTHON_3_12=... overrides, then pyenv, then python3.12 on PATH). A missing one is skipped
# with a message, and fails the run when CI=true.
MATRIX ?= 3.11 3.12 3.13
# .venv is the 3.11 virtualenv: lint, types, demo and bench use it too
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# The floor applies to the coverage of all runs combined: code for one Quart version is
# exercised only by the Python that installs it, so no single run sees every supported path.
COVERAGE_FLOOR := 85
# Debian packages the tests use for real (wrk drives the soak test); installed only where missing.
SYSTEM_TOOLS := redis-server curl wrk

venv_of = $(if $(filter 3.11,$(1)),$(VENV),.venv-$(1))
version_of = $(if $(filter $(VENV),$(1)),3.11,$(patsubst .venv-%,%,$(1)))

.PHONY: install system-deps test lint format demo bench bench-quick clean $(addprefix test-,$(MATRIX))

# One recipe for every virtualenv; the directory name says which Python it needs.
define make_venv
	@py=$$(tools/find-python $(call version_of,$(@D))) || { \
		echo "make: Python $(call version_of,$(@D)) not found (pyenv install $(call version_of,$(@D)), or set PYTHON_$(subst .,_,$(call version_of,$(@D)))=/path/to/python)" >&2; exit 1; }; \
	echo "creating $(@D) with $$py"; \
	$$py -m venv $(@D) && \
	$(@D)/bin/python -m pip install --quiet --upgrade pip && \
	$(@D)/bin/python -m pip install --quiet -e '.[test]' && \
	touch $@
endef

$(VENV)/.installed: pyproject.toml
	$(make_venv)

.venv-%/.installed: pyproject.toml
	$(make_venv)

install: $(VENV)/.installed

system-deps:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing from Debian:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

lint: install
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

# Every Python runs even when an earlier one failed; the run fails at the end if any did.
test: install system-deps lint
	@rm -f .coverage .coverage.*; status=0; \
	for version in $(MATRIX); do $(MAKE) --no-print-directory test-$$version || status=1; done; \
	echo "=== coverage of every run combined (floor $(COVERAGE_FLOOR) %)"; \
	$(BIN)/coverage combine --quiet && \
	$(BIN)/coverage report --skip-covered --show-missing --fail-under=$(COVERAGE_FLOOR) || status=1; \
	exit $$status

# One Python of the matrix: its virtualenv (created or refreshed when pyproject.toml changed),
# the versions it runs, then the whole suite with its own coverage data file.
$(addprefix test-,$(MATRIX)): test-%: system-deps
	@if ! tools/find-python $* >/dev/null; then \
		where="pyenv install $*, or set PYTHON_$(subst .,_,$*)=/path/to/python"; \
		if [ "$${CI:-}" = true ]; then \
			echo "=== Python $*: NOT FOUND, and CI=true needs every Python of the matrix ($(MATRIX)): $$where" >&2; \
			exit 1; \
		fi; \
		echo "=== Python $*: SKIPPED, not found ($$where); under CI=true this fails"; \
	else \
		$(MAKE) --no-print-directory $(call venv_of,$*)/.installed && \
		$(call venv_of,$*)/bin/python -c 'import sys, quart, uvicorn; from importlib.metadata import version as v; print("=== Python %s (%s): Quart %s, uvicorn %s" % (sys.version.split()[0], sys.executable, v("quart"), v("uvicorn")), flush=True)' && \
		COVERAGE_FILE=.coverage.$* $(call venv_of,$*)/bin/python -m pytest -p no:cacheprovider --cov --cov-report= $(PYTEST_ARGS) && \
		echo "=== Python $*: passed"; \
	fi

format: install
	$(BIN)/ruff format src tests bench examples
	$(BIN)/ruff check --fix src tests bench examples

demo: install
	$(BIN)/python examples/demo.py

clean:
	rm -rf $(VENV) $(foreach v,$(filter-out 3.11,$(MATRIX)),.venv-$(v)) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
