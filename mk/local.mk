# make local / make local-delete: the stack played against a local AWS (moto), no account needed. See docs/local.md.
# ARGS passes options through, e.g. make local ARGS="--parameter-overrides QuayPrefix=quay-mirror --seed-repositories 200"

ARGS ?=

.PHONY: local local-delete

local: venv ## Play the stack locally (moto, no AWS account): create, or update what changed; ARGS="..." passes options
	$(VENV_PY) -m tools.stack_player --config-env $(ENV) $(ARGS)

local-delete: venv ## Delete the locally played stack (every custom resource in reverse order); ARGS="..." passes options
	$(VENV_PY) -m tools.stack_player --config-env $(ENV) --delete $(ARGS)
