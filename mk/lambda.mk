# The Lambda python3.13 runtime, emulated: clean interpreters whose only packages are the runtime's SDK, at the
# oldest version the provider supports, at the newest, and one too old (tools/lambda_runtime/*.txt).
# The built-package tests, the cold-start benchmark and the local player run the sam-built function in them.

LAMBDA_RUNTIMES := oldest newest unsupported
LAMBDA_RUNTIME_STAMPS := $(foreach r,$(LAMBDA_RUNTIMES),.venv-lambda-$(r)/.installed)

.PHONY: lambda-runtimes

lambda-runtimes: $(LAMBDA_RUNTIME_STAMPS) ## Create the clean Lambda-runtime interpreters (python3.13 with only boto3)

.venv-lambda-%/.installed: tools/lambda_runtime/%.txt
	@if [ -z "$(PYTHON313)" ]; then echo "Python 3.13 not found: install it with pyenv (pyenv install 3.13)" >&2; exit 1; fi
	@echo "Creating .venv-lambda-$* (python3.13 with the runtime's SDK: $$(grep '^botocore==' $<))"
	@rm -rf ".venv-lambda-$*"
	@if command -v uv >/dev/null 2>&1; then \
	  uv venv -q -p "$(PYTHON313)" ".venv-lambda-$*" && VIRTUAL_ENV=".venv-lambda-$*" uv pip install -q -r "$<"; \
	else \
	  "$(PYTHON313)" -m venv ".venv-lambda-$*" && ".venv-lambda-$*/bin/python" -m pip install -q -r "$<"; \
	fi
	@touch "$@"

test unit integration bench: lambda-runtimes
