# Developer entry points. `make` (or `make help`) lists the targets; each target's `## ` comment is its help line.
# Targets of one area (make local, distribution) live in mk/*.mk, included at the end.

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

# uv makes the venvs and installs the lock in seconds; without it, python -m venv and pip install the same lock.
UV ?= $(shell command -v uv 2>/dev/null)

# $(call setup_venv,<dir>,<pip arguments>,<what, for the message>): create <dir> with Python 3.13 when it has no
# interpreter yet (with pip in it: sam build runs pip from the python3.13 on PATH), install into it, and say what
# was installed, with which tool, and how long it took.
define setup_venv
	@started=$$(date +%s%N); \
	if [ ! -x "$(1)/bin/python" ]; then \
	  if [ -z "$(PYTHON313)" ]; then \
	    echo "Python 3.13 not found: put python3.13 on PATH or install it with pyenv (pyenv install 3.13)" >&2; exit 1; \
	  fi; \
	  $(if $(UV),"$(UV)" venv -q --seed -p "$(PYTHON313)" "$(1)","$(PYTHON313)" -m venv "$(1)"); \
	fi; \
	echo "$(1): installing $(3) with $(if $(UV),$$("$(UV)" --version),pip (uv not found: slower))"; \
	$(if $(UV),VIRTUAL_ENV="$(1)" "$(UV)" pip install -q $(2),"$(1)/bin/python" -m pip install -q $(2)); \
	elapsed=$$(( ($$(date +%s%N) - started) / 100000000 )); \
	echo "$(1): ready in $$(( elapsed / 10 )).$$(( elapsed % 10 )) s"
endef

.PHONY: help venv test unit integration stack-test template-test lint format build deploy bench clean distclean

help: ## List the targets
	@echo "Usage: make <target> [ENV=default|prod]"
	@echo
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-zA-Z0-9_.-]+:[^#]*## / {printf "  %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(VENV_STAMP) ## Create .venv (Python 3.13) with requirements-dev.txt; reinstalls only when that file changes

$(VENV_STAMP): requirements-dev.txt
	$(call setup_venv,$(VENV),-r requirements-dev.txt,requirements-dev.txt ($(shell grep -c '==' requirements-dev.txt) pinned packages))
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

# cfn-lint does not expand template.yaml's Fn::ForEach loops as CloudFormation does: it lints their expansion
# (expanded-template, mk/distribution.mk), what CloudFormation deploys; sam validate expands the loops itself (its
# translator wants a Region, any: nothing is called).
lint: venv expanded-template ## ruff, mypy, cfn-lint and sam validate --lint (on template.yaml expanded), sam validate
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint "$(EXPANDED_TEMPLATE)"
	$(VENV)/bin/sam validate --lint --template-file "$(EXPANDED_TEMPLATE)"
	$(VENV)/bin/sam validate --template-file template.yaml --region us-east-1

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

-include $(wildcard mk/*.mk)
