# make local / make local-delete / make local-reset / make invoke: the stack played against a local AWS (moto), no account needed.
# See docs/local.md. ARGS passes options through, e.g.
#   make local ARGS="--parameter-overrides QuayPrefix=quay-mirror --seed-repositories 200"

ARGS ?=
# What the local AWS and the played stacks remember between runs.
STATE_DIR ?= .local-stack

.PHONY: local local-delete local-reset invoke

# What ships: the `sam build` output, run in a clean python3.13 with only the Lambda runtime's boto3.
BUILT_FUNCTION := .aws-sam/build/ProviderFunction

local: venv build lambda-runtimes ## Play the stack locally (moto, no AWS account): create, or update what changed; ARGS="..." passes options
	$(VENV_PY) -m tools.stack_player --config-env $(ENV) --state-dir $(STATE_DIR) --built-function $(BUILT_FUNCTION) $(ARGS)

local-delete: venv build lambda-runtimes ## Delete the locally played stack (every custom resource in reverse order, then its stub secrets)
	$(VENV_PY) -m tools.stack_player --config-env $(ENV) --state-dir $(STATE_DIR) --built-function $(BUILT_FUNCTION) --delete $(ARGS)

invoke: venv build lambda-runtimes ## Play one request file through the built function against make local's AWS: EVENT=events/<file>.json
	@if [ -z "$(EVENT)" ]; then echo "Usage: make invoke EVENT=events/<file>.json (files: $$(ls events | tr '\n' ' '))" >&2; exit 2; fi
	$(VENV_PY) -m tools.stack_player.invoke "$(EVENT)" --state-dir $(STATE_DIR) --built-function $(BUILT_FUNCTION)

local-reset: ## Forget every locally played stack and the local registry: the next make local starts from an empty account
	rm -rf -- "$(STATE_DIR)"
	@echo "Removed $(STATE_DIR)"
