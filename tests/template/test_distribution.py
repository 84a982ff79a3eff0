"""Distribution: examples/ templates, the StackSet render, checkov over every template, native registry resources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import lint_file
from cfnlint.decode import cfn_yaml

from tools import render_stackset
from tools.sam_transform import dump, expand, plain

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))
CONSUMER = ROOT / "examples" / "consumer.yaml"
PORTFOLIO = ROOT / "examples" / "service-catalog" / "portfolio.yaml"
LAUNCH_ROLE = ROOT / "examples" / "service-catalog" / "launch-role.yaml"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CODE_URI = "s3://code-bucket-${AWS::Region}/ecr-pull-through-cache/provider.zip"
CACHE_RULES = ["EcrPublic", "Quay", "K8s", "DockerHub", "GitHub", "GitLab"]
# StackSet instance stacks are named StackSet-<StackSet name>-<uuid>; a StackSet name may have 128 characters.
LONGEST_STACKSET_INSTANCE_NAME = "StackSet-" + "n" * 128 + "-" + "0" * 36

RULE_PROPERTIES = {
    "ServiceToken",
    "ServiceTimeout",
    "EcrRepositoryPrefix",
    "UpstreamRegistryUrl",
    "UpstreamRegistry",
    "CredentialArn",
    "CustomRoleArn",
    "UpstreamRepositoryPrefix",
    "Validate",
}
LIFECYCLE_PROPERTIES = {
    "ServiceToken",
    "ServiceTimeout",
    "RepositoryPrefix",
    "LifecyclePolicyText",
    "ApplyToExistingRepositories",
    "ApplyToNewRepositories",
    "OverwriteExistingPolicies",
}
IMAGE_EXPIRY_PROPERTIES = {
    "ServiceToken",
    "ServiceTimeout",
    "RepositoryPrefix",
    "ExpireAfterDaysWithoutPull",
    "KeepLatestImages",
    "DeleteEmptyRepositories",
    "DryRun",
    "ScheduleExpression",
}
KNOWN_PROPERTIES = {
    "Custom::PullThroughCacheRule": RULE_PROPERTIES,
    "Custom::CacheLifecyclePolicy": LIFECYCLE_PROPERTIES,
    "Custom::CacheImageExpiry": IMAGE_EXPIRY_PROPERTIES,
}


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(path))
    return loaded


def expanded() -> dict[str, Any]:
    """template.yaml as CloudFormation reads it: its Fn::ForEach loops written out."""
    return expand(plain(load(TEMPLATE)))


def lint_errors(path: Path) -> list[str]:
    return [str(m) for m in lint_file(path) if m.rule.id.startswith("E")]


@pytest.fixture(scope="module")
def rendered_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("stackset") / "template.yaml"
    render_stackset.main(["--template", str(TEMPLATE), "--code-uri", CODE_URI, "--output", str(output)])
    return output


@pytest.fixture(scope="module")
def expanded_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The expansion `make checkov` scans: checkov reads no Fn::ForEach (it skips a loop's resources)."""
    output = tmp_path_factory.mktemp("expanded") / "template.yaml"
    output.write_text(dump(expanded()))
    return output


@pytest.fixture(scope="module")
def rendered(rendered_path: Path) -> dict[str, Any]:
    return load(rendered_path)


# --- cfn-lint -------------------------------------------------------------------------------------------


def test_there_are_examples() -> None:
    assert CONSUMER in EXAMPLES
    assert PORTFOLIO in EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_passes_cfn_lint(path: Path) -> None:
    errors = lint_errors(path)
    assert not errors, "cfn-lint:\n" + "\n".join(errors)


def test_rendered_stackset_template_passes_cfn_lint(rendered_path: Path) -> None:
    errors = lint_errors(rendered_path)
    assert not errors, "cfn-lint:\n" + "\n".join(errors)


# --- checkov --------------------------------------------------------------------------------------------


def test_checkov_finds_nothing_unsuppressed(expanded_path: Path, rendered_path: Path) -> None:
    assert CHECKOV.is_file(), f"{CHECKOV} missing: run `make checkov-venv` (make venv does it too)"
    files = [expanded_path, rendered_path, *EXAMPLES]
    result = subprocess.run(
        [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "--output", "json", "--quiet"]
        + [arg for f in files for arg in ("-f", str(f))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    start = result.stdout.find("{") if result.stdout.lstrip().startswith("{") else result.stdout.find("[")
    assert start >= 0, result.stdout + result.stderr
    reports = json.loads(result.stdout[start:])
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']} {c['file_path']}: {c['check_name']}"
        for report in reports
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    parsing_errors = [e for report in reports for e in report.get("results", {}).get("parsing_errors", [])]
    assert not parsing_errors, parsing_errors
    assert not failed, "checkov:\n" + "\n".join(failed)
    # Every file was scanned: a file checkov cannot read would otherwise pass silently.
    scanned = sum(report.get("summary", {}).get("resource_count", 0) for report in reports)
    assert scanned >= len(files), reports


def test_every_checkov_suppression_has_a_reason() -> None:
    for path, template in [(TEMPLATE, expanded()), *((example, load(example)) for example in EXAMPLES)]:
        for logical_id, resource in template["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert skip["id"].startswith("CKV_"), (path.name, logical_id)
                assert len(skip.get("comment", "")) > 20, (path.name, logical_id, skip["id"])


# --- The StackSet render ---------------------------------------------------------------------------------


def test_render_has_no_transform_and_a_lambda_function(rendered: dict[str, Any]) -> None:
    assert "Transform" not in rendered
    assert not [r for r in rendered["Resources"].values() if r["Type"].startswith("AWS::Serverless::")]
    function = rendered["Resources"]["ProviderFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    # Lambda reads code from its own Region: each Region's bucket.
    assert function["Properties"]["Code"] == {
        "S3Bucket": {"Fn::Sub": "code-bucket-${AWS::Region}"},
        "S3Key": "ecr-pull-through-cache/provider.zip",
    }
    assert function["Metadata"]["checkov"]["skip"], "suppressions must survive the render"


# CreateStackSet/UpdateStackSet (botocore's model): TemplateBody "a maximum length of 51,200 bytes", TemplateURL "a
# template (maximum size: 1 MB) that's located in an Amazon S3 bucket". 1 MB read as 10^6 bytes, the stricter way.
TEMPLATE_BODY_LIMIT = 51_200
TEMPLATE_URL_LIMIT = 1_000_000
DISTRIBUTION_DOC = ROOT / "docs" / "distribution.md"


def test_the_documented_stackset_steps_pass_the_render_through_s3(rendered_path: Path) -> None:
    """The render outgrows a request's template body: the documented create and update pass it by S3 URL, and it
    fits the size CloudFormation reads from S3."""
    size = rendered_path.stat().st_size
    assert size < TEMPLATE_URL_LIMIT, size
    assert size > TEMPLATE_BODY_LIMIT  # were it to fit again, --template-body would do too
    doc = DISTRIBUTION_DOC.read_text()
    assert "--template-body file:" not in doc
    create = doc[doc.index("aws cloudformation create-stack-set") :].split("```", 1)[0]
    assert "--template-url https://" in create
    assert "update-stack-set --stack-set-name ecr-pull-through-cache --template-url" in doc
    assert "aws s3 cp .aws-sam/stackset/template.yaml s3://" in doc


def test_render_keeps_every_resource_and_output(rendered: dict[str, Any]) -> None:
    source = expanded()
    assert set(source["Resources"]) <= set(rendered["Resources"])
    assert set(source["Outputs"]) == set(rendered["Outputs"])
    # StackSet instance stack names are generated: exports get a name consumer stacks can know in advance,
    # the same one a `sam deploy` with samconfig.toml's stack name gives.
    exports = {k: o["Export"]["Name"] for k, o in rendered["Outputs"].items() if "Export" in o}
    assert exports == {
        "ServiceToken": "ecr-pull-through-cache-ServiceToken",
        "CacheConsumerPolicyArn": "ecr-pull-through-cache-CacheConsumerPolicyArn",
    }
    assert load(CONSUMER)["Parameters"]["ProviderStackName"]["Default"] == "ecr-pull-through-cache"


def test_render_names_nothing_after_the_stack_that_could_outgrow_a_limit(rendered: dict[str, Any]) -> None:
    """StackSet instance names are long: CloudFormation names the function itself, and the log group's name (512
    characters at most) has room for the longest."""
    resources = rendered["Resources"]
    assert "FunctionName" not in resources["ProviderFunction"]["Properties"]
    log_group = resources["ProviderLogGroup"]["Properties"]["LogGroupName"]["Fn::Sub"]
    assert len(log_group.replace("${AWS::StackName}", LONGEST_STACKSET_INSTANCE_NAME)) <= 512
    invokes = [
        s
        for p in (resources["ProviderInvokesItselfPolicy"], resources["ImageExpirySchedulerInvokePolicy"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert all(statement["Resource"] == {"Fn::GetAtt": ["ProviderFunction", "Arn"]} for statement in invokes)


def test_render_does_not_depend_on_the_translators_region() -> None:
    source = TEMPLATE.read_text()
    assert render_stackset.render(source, CODE_URI, "us-east-1") == render_stackset.render(
        source, CODE_URI, "eu-central-1"
    )


def test_render_accepts_a_packaged_template() -> None:
    source = TEMPLATE.read_text()
    assert "CodeUri: src/\n" in source
    packaged = source.replace("CodeUri: src/\n", f"CodeUri: {CODE_URI}\n")
    assert render_stackset.render(packaged, None) == render_stackset.render(source, CODE_URI)


def test_render_refuses_local_code() -> None:
    with pytest.raises(SystemExit, match="local"):
        render_stackset.render(TEMPLATE.read_text(), None)


def test_render_warns_loudly_about_the_placeholder_bucket(capsys: pytest.CaptureFixture[str]) -> None:
    placeholder = "s3://change-me-code-bucket-${AWS::Region}/ecr-pull-through-cache/provider.zip"
    assert f"CODE_URI ?= {placeholder.replace('${', '$${')}" in (ROOT / "mk" / "distribution.mk").read_text()

    render_stackset.render(TEMPLATE.read_text(), placeholder)

    assert "WARNING" in capsys.readouterr().err
    render_stackset.render(TEMPLATE.read_text(), CODE_URI)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("code_uri", ["s3:///provider.zip", "s3://${AWS::Region}/provider.zip", "s3://bucket", "s3://"])
def test_render_refuses_a_code_uri_without_a_bucket_or_key(code_uri: str) -> None:
    with pytest.raises(SystemExit, match="no bucket name or no key"):
        render_stackset.render(TEMPLATE.read_text(), code_uri)


def test_a_missing_packaged_template_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "packaged.yaml"
    result = subprocess.run(
        [
            "make",
            "-s",
            "stackset-template",
            f"PACKAGED_TEMPLATE={missing}",
            f"STACKSET_TEMPLATE={tmp_path / 'out.yaml'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode != 0
    assert (
        result.stderr.splitlines()[0]
        == f"render_stackset: no template at {missing} (PACKAGED_TEMPLATE is the output of sam package)"
    )
    assert "Traceback" not in result.stderr


def test_render_cli_writes_the_file(tmp_path: Path) -> None:
    output = tmp_path / "out" / "template.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "tools.render_stackset", "--code-uri", CODE_URI, "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Transform" not in yaml.safe_load(output.read_text())


# --- examples/consumer.yaml ------------------------------------------------------------------------------


def test_consumer_is_plain_cloudformation_through_the_exported_service_token() -> None:
    consumer = load(CONSUMER)
    assert "Transform" not in consumer
    customs = {k: r for k, r in consumer["Resources"].items() if r["Type"].startswith("Custom::")}
    assert {r["Type"] for r in customs.values()} == set(KNOWN_PROPERTIES)
    for logical_id, resource in customs.items():
        props = resource["Properties"]
        assert props["ServiceToken"] == {"Fn::ImportValue": {"Fn::Sub": "${ProviderStackName}-ServiceToken"}}
        assert props["ServiceTimeout"] == {"Ref": "ResourceTimeoutSeconds"}, logical_id
        known = KNOWN_PROPERTIES[resource["Type"]]
        assert set(props) <= known, (logical_id, set(props) - known)


def test_consumer_lifecycle_policy_is_valid_json_with_numbers() -> None:
    consumer = load(CONSUMER)
    text = consumer["Resources"]["CacheLifecyclePolicy"]["Properties"]["LifecyclePolicyText"]["Fn::Sub"]
    policy = json.loads(text.replace("${UntaggedExpiryDays}", "7").replace("${MaxImageCount}", "50"))
    assert [rule["rulePriority"] for rule in policy["rules"]] == [1, 2]
    assert policy["rules"][0]["selection"]["countNumber"] == 7
    repository_policy = consumer["Resources"]["Repository"]["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]
    assert repository_policy["Fn::Sub"] == text


# --- examples/service-catalog/portfolio.yaml ------------------------------------------------------------


def launch_role_policies() -> list[dict[str, Any]]:
    """launch-role.yaml's role policies, resolved in account 123456789012 with the provider's export."""
    from tools.stack_player.template import Renderer, Template, resolve_parameters

    template = Template.load(LAUNCH_ROLE)
    pseudo = {
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
        "AWS::Partition": "aws",
        "AWS::StackName": "launch-role",
        "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/launch-role/0f0e",
    }
    imports = {"ecr-pull-through-cache-ServiceToken": PROVIDER_FUNCTION}
    renderer = Renderer(template, resolve_parameters(template, {}), pseudo, lambda *_: None, imports)
    role = renderer.evaluate(template.resources["LaunchRole"]["Properties"])
    return [policy["PolicyDocument"] for policy in role["Policies"]]


PROVIDER_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:ecr-pull-through-cache-ProviderFunction-AbC"
LAUNCHED_STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/SC-123456789012-pp-abcdefghij/0f0e"
PRE_CREATED = "arn:aws:ecr:us-east-1:123456789012:repository/team-a/ghcr/org/app"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def handler_permissions(resource_type: str) -> set[str]:
    """What CloudFormation's handlers of a resource type ask of the stack's role (its published resource schema,
    as cfn-lint bundles it): create, read, update and delete."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema["handlers"]
    return {action for name in ("create", "read", "update", "delete") for action in handlers[name]["permissions"]}


def test_the_launch_role_may_do_all_the_products_stacks_need() -> None:
    """Every resource of the product (examples/consumer.yaml), played by Service Catalog with the launch role: its
    stack's operations, the template's copy, invoking the provider for the custom resources, and every permission
    AWS::ECR::Repository's handlers ask for, on the pre-created repository (and its KMS key through ECR)."""
    from emulation.iam.policy import Decision, Request, evaluate

    product = load(CONSUMER)["Resources"]
    assert {resource["Type"] for resource in product.values()} == {
        "Custom::PullThroughCacheRule", "Custom::CacheLifecyclePolicy", "Custom::CacheImageExpiry",
        "AWS::ECR::Repository",
    }  # fmt: skip
    needed: list[tuple[str, str, dict[str, str]]] = [("cloudformation:" + action, LAUNCHED_STACK, {}) for action in
              ("CreateStack", "UpdateStack", "DeleteStack", "DescribeStacks", "DescribeStackEvents")]  # fmt: skip
    needed += [("cloudformation:GetTemplateSummary", "*", {})]
    tagged = {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}  # Service Catalog's copy of the template
    needed += [("s3:GetObject", "arn:aws:s3:::sc-templates/consumer.yaml", tagged)]
    needed += [("lambda:InvokeFunction", PROVIDER_FUNCTION, {})]  # CloudFormation invoking the custom resources
    for action in sorted(handler_permissions("AWS::ECR::Repository")):
        if action.startswith("kms:"):
            needed.append((action, KMS_KEY, {"kms:ViaService": "ecr.us-east-1.amazonaws.com"}))
        else:
            needed.append((action, PRE_CREATED, {}))
    policies = launch_role_policies()
    principal = "arn:aws:sts::123456789012:assumed-role/ecr-pull-through-cache-launch/servicecatalog"
    denied = [
        f"{action} on {resource}"
        for action, resource, context in needed
        if evaluate(policies, Request(principal, action, resource, context)) is not Decision.ALLOWED
    ]
    assert denied == []
    # What it may not: invoke any other function, or touch a stack Service Catalog did not provision.
    other = Request(principal, "lambda:InvokeFunction", PROVIDER_FUNCTION.replace("Provider", "Other"))
    assert evaluate(policies, other) is Decision.IMPLICITLY_DENIED
    stack = Request(principal, "cloudformation:DeleteStack", LAUNCHED_STACK.replace("SC-", "prod-"))
    assert evaluate(policies, stack) is Decision.IMPLICITLY_DENIED


def test_portfolio_launch_role_has_no_wildcard_action() -> None:
    role = load(LAUNCH_ROLE)["Resources"]["LaunchRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statements
    for statement in statements:
        assert "NotAction" not in statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            assert "*" not in action, action


def test_portfolio_wires_product_principal_and_launch_constraint() -> None:
    resources = load(PORTFOLIO)["Resources"]
    by_type = {r["Type"]: r["Properties"] for r in resources.values()}
    (artifact,) = by_type["AWS::ServiceCatalog::CloudFormationProduct"]["ProvisioningArtifactParameters"]
    assert artifact["Info"] == {"LoadTemplateFromURL": {"Ref": "ProductTemplateUrl"}}
    assert by_type["AWS::ServiceCatalog::PortfolioPrincipalAssociation"]["PrincipalARN"] == {"Ref": "PrincipalArn"}
    # Shared portfolios launch with the role of that name in each account: a name, never this account's ARN.
    constraint = by_type["AWS::ServiceCatalog::LaunchRoleConstraint"]
    assert constraint["LocalRoleName"] == {"Ref": "LaunchRoleName"}
    assert "RoleArn" not in constraint
    role = load(LAUNCH_ROLE)["Resources"]["LaunchRole"]["Properties"]
    assert role["RoleName"] == {"Ref": "LaunchRoleName"}
    assert (
        load(LAUNCH_ROLE)["Parameters"]["LaunchRoleName"]["Default"]
        == (load(PORTFOLIO)["Parameters"]["LaunchRoleName"]["Default"])
    )


# --- Registry-wide and native resources in template.yaml ---------------------------------------------------------


def prefix_entries(entries: list[Any]) -> dict[str, Any]:
    """{condition: value} of a list of !If [<Cache>CacheEnabled, value, !Ref AWS::NoValue]."""
    result = {}
    for entry in entries:
        condition, value, otherwise = entry["Fn::If"]
        assert otherwise == {"Ref": "AWS::NoValue"}
        result[condition] = value
    return result


def test_native_resources_cover_every_cache_prefix() -> None:
    resources = expanded()["Resources"]
    scanning = resources["RegistryScanningFilters"]["Properties"]
    registry_policy = resources["OrganizationRegistryPolicyStatements"]["Properties"]["Statements"][0]
    consumer = resources["CacheConsumerPolicy"]["Properties"]["PolicyDocument"]["Statement"][1]
    for entries in (scanning["Filters"], registry_policy["Resource"], consumer["Resource"]):
        by_condition = prefix_entries(entries)
        assert sorted(by_condition) == sorted(f"{name}CacheEnabled" for name in CACHE_RULES)
        for condition, value in by_condition.items():
            rule = condition.removesuffix("CacheEnabled") + "CacheRule"
            assert f"${{{rule}.EcrRepositoryPrefix}}/*" in json.dumps(value), value


def test_native_resources_grant_only_cache_actions() -> None:
    resources = expanded()["Resources"]
    registry_policy = resources["OrganizationRegistryPolicyStatements"]["Properties"]["Statements"][0]
    assert registry_policy["Action"] == ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"]
    assert registry_policy["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}
    login, pull = resources["CacheConsumerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert login["Action"] == "ecr:GetAuthorizationToken"
    assert set(pull["Action"]) == {
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
        "ecr:CreateRepository",
        "ecr:BatchImportUpstreamImage",
    }
    assert resources["RegistryScanningFilters"]["Type"] == "Custom::RegistryScanningFilters"
    assert resources["OrganizationRegistryPolicyStatements"]["Type"] == "Custom::RegistryPolicyStatements"


def test_consumer_policy_is_exported() -> None:
    output = expanded()["Outputs"]["CacheConsumerPolicyArn"]
    assert output["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-CacheConsumerPolicyArn"}
