# make local / make local-delete / make local-reset: the stack played against a local AWS (moto), no account needed.
# See docs/local.md. ARGS passes options through, e.g.
#   make local ARGS="--parameter-overrides QuayPrefix=quay-mirror --seed-repositories 200"

ARGS ?=
# What the local AWS and the played stacks remember between runs.
STATE_DIR ?= .local-stack

.PHONY: local local-delete local-reset

local: venv ## Play the stack locally (moto, no AWS account): create, or update what changed; ARGS="..." passes options
	$(VENV_PY) -m tools.stack_player --config-env $(ENV) --state-dir $(STATE_DIR) $(ARGS)

local-delete: venv ## Delete the locally played stack (every custom resource in reverse order, then its stub secrets)
	$(VENV_PY) -m tools.stack_player --config-env $(ENV) --state-dir $(STATE_DIR) --delete $(ARGS)

local-reset: ## Forget every locally played stack and the local registry: the next make local starts from an empty account
	rm -rf -- "$(STATE_DIR)"
	@echo "Removed $(STATE_DIR)"
