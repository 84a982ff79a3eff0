# Distribution: template.yaml expanded, the transform-free template for service-managed StackSets, the Serverless
# Application Repository, and checkov in a venv of its own.

# checkov pins dozens of libraries (boto3, pydantic, ...) that clash with aws-sam-cli and moto in .venv,
# so it gets its own venv. Pinned here; bump deliberately.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.checkov-$(CHECKOV_VERSION).stamp

# The function code for a StackSet: an S3 URI from `sam package` (see docs/distribution.md). The default is a
# placeholder that keeps the render testable offline; it is not deployable. ${AWS::Region} in the bucket name
# picks each Region's copy (Lambda reads code from its own Region only).
CODE_URI ?= s3://change-me-code-bucket-$${AWS::Region}/ecr-pull-through-cache/provider.zip
# StackSet instance stacks have generated names: exports are named <EXPORT_PREFIX>-ServiceToken instead.
EXPORT_PREFIX ?= ecr-pull-through-cache
# Optional: a template already written by `sam package` (its CodeUri is an S3 URI); wins over CODE_URI.
PACKAGED_TEMPLATE ?=
STACKSET_TEMPLATE ?= .aws-sam/stackset/template.yaml
# template.yaml with its Fn::ForEach loops written out, as CloudFormation's AWS::LanguageExtensions writes them:
# what cfn-lint and checkov read (neither expands a loop as CloudFormation does: docs/template.md).
EXPANDED_TEMPLATE ?= .aws-sam/expanded/template.yaml

.PHONY: checkov-venv checkov stackset-template expanded-template

# CI's `make venv` installs checkov too, so the template tests can always run it.
venv: checkov-venv

checkov-venv: $(CHECKOV_STAMP) ## Create .venv-checkov (Python 3.13) with the pinned checkov

$(CHECKOV_STAMP):
	$(call setup_venv,$(CHECKOV_VENV),"checkov==$(CHECKOV_VERSION)",checkov $(CHECKOV_VERSION))
	@rm -f $(CHECKOV_VENV)/.checkov-*.stamp
	@touch "$@"

stackset-template: venv ## Render a transform-free template for StackSets (CODE_URI=s3://... or PACKAGED_TEMPLATE=...)
	$(VENV_PY) -m tools.render_stackset --template "$(or $(PACKAGED_TEMPLATE),template.yaml)" \
	  $(if $(PACKAGED_TEMPLATE),,--code-uri '$(CODE_URI)') --export-prefix "$(EXPORT_PREFIX)" \
	  --output "$(STACKSET_TEMPLATE)"
	$(VENV)/bin/cfn-lint "$(STACKSET_TEMPLATE)"

expanded-template: venv ## Write template.yaml with its Fn::ForEach loops expanded (EXPANDED_TEMPLATE)
	$(VENV_PY) -m tools.sam_transform template.yaml --output "$(EXPANDED_TEMPLATE)"

checkov: checkov-venv expanded-template stackset-template ## Run checkov over template.yaml (expanded), the StackSet render and examples/
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
	  -f "$(EXPANDED_TEMPLATE)" -f "$(STACKSET_TEMPLATE)" $(foreach f,$(shell find examples -name '*.yaml' | sort),-f $(f))

# The Serverless Application Repository: a version adopters deploy without cloning (docs/template.md).
# SAR is not documented to accept AWS::LanguageExtensions (and refused other transforms before the SAM one), so
# what is published is the `sam build` output with its loops written out: the SAM transform only. Written next to
# the build's template, so that its relative paths (the function's code, LicenseUrl, ReadmeUrl) still hold.
SAR_TEMPLATE := .aws-sam/build/sar-template.yaml
SAR_PACKAGED := .aws-sam/sar-packaged.yaml
# Needs AWS: a bucket the SAR service may read (serverlessrepo.amazonaws.com s3:GetObject, aws:SourceAccount),
# in the Region published to.
SAR_BUCKET ?=
SAR_REGION ?= us-east-1

.PHONY: sar-template publish sar-bucket

sar-template: venv ## sam build, then the build's template with its loops written out (SAR_TEMPLATE), sam validate
	$(VENV)/bin/sam build --config-env $(ENV)
	$(VENV_PY) -m tools.sam_transform .aws-sam/build/template.yaml --output "$(SAR_TEMPLATE)"
	$(VENV)/bin/sam validate --template-file "$(SAR_TEMPLATE)" --region "$(SAR_REGION)"

sar-bucket:
	@if [ -z "$(SAR_BUCKET)" ]; then echo "make publish: set SAR_BUCKET=<bucket the Serverless Application Repository may read>" >&2; exit 2; fi

publish: sar-bucket sar-template ## Publish template.yaml's SemanticVersion to the Serverless Application Repository (SAR_BUCKET=..., needs AWS)
	$(VENV)/bin/sam package --template-file "$(SAR_TEMPLATE)" --s3-bucket "$(SAR_BUCKET)" \
	  --s3-prefix ecr-pull-through-cache --region "$(SAR_REGION)" --output-template-file "$(SAR_PACKAGED)"
	$(VENV)/bin/sam publish --template "$(SAR_PACKAGED)" --region "$(SAR_REGION)" --fail-on-same-version
