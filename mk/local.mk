# make local / make local-delete / make local-reset / make invoke: the stack played against a local AWS (moto), no account needed.
# See docs/local.md. ARGS passes options through, e.g.
#   make local ARGS="--parameter-overrides QuayPrefix=quay-mirror --seed-repositories 200"

ARGS ?=
# What the local AWS and the played stacks remember between runs.
STATE_DIR ?= .local-stack

.PHONY: local local-delete local-reset invoke

# What ships: the `sam build` output, run in a clean python3.13 with only the Lambda runtime's boto3.
BUILT_FUNCTION := .aws-sam/build/ProviderFunction
# Only what make local needs: the project's venv (not checkov's, which `make venv` adds for the template tests) and
# the one Lambda runtime the player runs the built function in (tools/lambda_runtime's "newest"; the test tiers need
# all three, lambda.mk).
LOCAL_NEEDS := $(VENV_STAMP) .venv-lambda-newest/.installed
# --sam-build: the template, samconfig.toml and every parameter are checked first (a bad one is the first line on
# stderr, exit 2, before anything is built), then `sam build` runs, its output shown only when it fails.
PLAYER := $(VENV_PY) -m tools.stack_player --config-env $(ENV) --state-dir $(STATE_DIR) --sam-build --built-function $(BUILT_FUNCTION)

local: $(LOCAL_NEEDS) ## Play the stack locally (moto, no AWS account): create, or update what changed; ARGS="..." passes options
	@$(PLAYER) $(ARGS)

local-delete: $(LOCAL_NEEDS) ## Delete the locally played stack (what make invoke made in it, its custom resources in reverse order, its stub secrets)
	@$(PLAYER) --delete $(ARGS)

invoke: $(LOCAL_NEEDS) ## Play one request file through the built function against make local's AWS: EVENT=events/<file>.json
	@if [ -z "$(EVENT)" ]; then echo "Usage: make invoke EVENT=events/<file>.json (files: $$(ls events | tr '\n' ' '))" >&2; exit 2; fi
	@started=$$(date +%s); log=$$(mktemp); \
	if ! $(VENV)/bin/sam build --config-env $(ENV) > "$$log" 2>&1; then cat "$$log" >&2; rm -f "$$log"; exit 1; fi; \
	rm -f "$$log"; echo "sam build: .aws-sam/build ready in $$(( $$(date +%s) - started )) s" >&2
	@$(VENV_PY) -m tools.stack_player.invoke "$(EVENT)" --state-dir $(STATE_DIR) --built-function $(BUILT_FUNCTION)

local-reset: ## Forget every locally played stack and the local registry: the next make local starts from an empty account
	rm -rf -- "$(STATE_DIR)"
	@echo "Removed $(STATE_DIR)"
