# Developer entry points. `make` (or `make help`) lists the targets; each target's `## ` comment is its help line.
# Other issues add targets (local, local-delete, stackset-template, ...) here or in mk/*.mk, which is included below.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

VENV := .venv
VENV_PY := $(VENV)/bin/python
# Written after requirements-dev.txt is installed: the venv is reinstalled only when that file changes.
VENV_STAMP := $(VENV)/.requirements-dev.stamp

# sam build resolves the function's runtime (python3.13) on PATH: the venv's interpreter provides it.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Deployment environment: a table of samconfig.toml ([default...], [prod...]).
ENV ?= default
PYTEST_ARGS ?=

# A Python 3.13 that really runs: python3.13 on PATH (a pyenv shim there may point at no installed 3.13),
# else pyenv's versions. Evaluated only when the venv has to be created.
PYTHON313 ?= $(shell \
	for p in "$$(command -v python3.13 2>/dev/null)" \
	         $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13 \
	         "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.13*/bin/python3.13; do \
	  if [ -n "$$p" ] && [ -x "$$p" ] && "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then \
	    echo "$$p"; break; \
	  fi; \
	done)

.PHONY: help venv test unit integration stack-test template-test lint format build deploy bench clean distclean

help: ## List the targets
	@echo "Usage: make <target> [ENV=default|prod]"
	@echo
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-zA-Z0-9_.-]+:[^#]*## / {printf "  %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(VENV_STAMP) ## Create .venv (Python 3.13) with requirements-dev.txt; reinstalls only when that file changes

$(VENV_STAMP): requirements-dev.txt
	@if [ ! -x "$(VENV_PY)" ]; then \
	  if [ -z "$(PYTHON313)" ]; then \
	    echo "Python 3.13 not found: put python3.13 on PATH or install it with pyenv (pyenv install 3.13)" >&2; exit 1; \
	  fi; \
	  echo "Creating $(VENV) with $(PYTHON313)"; \
	  "$(PYTHON313)" -m venv "$(VENV)"; \
	fi
	$(VENV_PY) -m pip install --quiet -r requirements-dev.txt
	@touch "$@"

test: venv ## Run every test (unit, handler, integration, stack, template) in parallel
	$(VENV_PY) -m pytest -n auto tests $(PYTEST_ARGS)

unit: venv ## Run the in-process tests: pure functions, the handler against in-process moto, the ECR emulation
	$(VENV_PY) -m pytest -n auto tests -m "not integration and not stack and not template" $(PYTEST_ARGS)

integration: venv ## Run the integration tests (handler over HTTP against a moto server)
	$(VENV_PY) -m pytest -n auto tests -m integration $(PYTEST_ARGS)

stack-test: venv ## Run the stack tests (whole stacks played by the local runner against a moto server)
	$(VENV_PY) -m pytest -n auto tests -m stack $(PYTEST_ARGS)

template-test: venv ## Run the template tests (cfn-lint, sam validate, sam build)
	$(VENV_PY) -m pytest -n auto tests -m template $(PYTEST_ARGS)

lint: venv ## ruff check, ruff format --check, mypy, cfn-lint and sam validate --lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint --template-file template.yaml

format: venv ## Format the code and apply ruff's safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

build: venv ## sam build (the function package in .aws-sam/build)
	$(VENV)/bin/sam build --config-env $(ENV)

deploy: venv ## sam build, then sam deploy --guided (ENV=default|prod picks the samconfig.toml environment)
	$(VENV)/bin/sam build --config-env $(ENV)
	$(VENV)/bin/sam deploy --guided --config-env $(ENV)

bench: venv ## Run every bench/*.py
	@benches="$(wildcard bench/*.py)"; \
	if [ -z "$$benches" ]; then echo "No bench/*.py to run"; exit 0; fi; \
	for b in $$benches; do echo "== $$b"; $(VENV_PY) "$$b"; done

clean: ## Remove build output and tool caches (keeps .venv)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache build dist
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)

# Targets added by later issues (local, local-delete, stackset-template, ...) may live in mk/*.mk.
-include $(wildcard mk/*.mk)
