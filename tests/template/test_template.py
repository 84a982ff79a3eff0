"""template.yaml: cfn-lint, sam validate --lint, sam build, and the structure the provider relies on.

template.yaml writes each cache once with Fn::ForEach; the checks read it as CloudFormation does, expanded
(tools/sam_transform), unless they say otherwise (`raw_template`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import cfn_yaml

from tools.sam_transform import dump, expand, plain

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
VENV_BIN = Path(sys.executable).parent
SAM_TIMEOUT_SECONDS = 180

CACHES = ("EcrPublic", "Quay", "K8s", "DockerHub", "GitHub", "GitLab")
# logical id -> (condition, UpstreamRegistry, UpstreamRegistryUrl, prefix parameter, credential parameter)
CACHE_RULES: dict[str, tuple[str, str, str, str, str | None]] = {
    "EcrPublicCacheRule": ("EcrPublicCacheEnabled", "ecr-public", "public.ecr.aws", "EcrPublicPrefix", None),
    "QuayCacheRule": ("QuayCacheEnabled", "quay", "quay.io", "QuayPrefix", "QuayCredentialArn"),
    "K8sCacheRule": ("K8sCacheEnabled", "k8s", "registry.k8s.io", "K8sPrefix", None),
    "DockerHubCacheRule": (
        "DockerHubCacheEnabled",
        "docker-hub",
        "registry-1.docker.io",
        "DockerHubPrefix",
        "DockerHubCredentialArn",
    ),
    "GitHubCacheRule": (
        "GitHubCacheEnabled",
        "github-container-registry",
        "ghcr.io",
        "GitHubPrefix",
        "GitHubCredentialArn",
    ),
    "GitLabCacheRule": (
        "GitLabCacheEnabled",
        "gitlab-container-registry",
        "registry.gitlab.com",
        "GitLabPrefix",
        "GitLabCredentialArn",
    ),
}


@pytest.fixture(scope="module")
def raw_template() -> dict[str, Any]:
    loaded: dict[str, Any] = plain(cfn_yaml.load(str(TEMPLATE)))
    return loaded


@pytest.fixture(scope="module")
def template(raw_template: dict[str, Any]) -> dict[str, Any]:
    return expand(raw_template)


@pytest.fixture(scope="module")
def expanded_path(template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The expansion as a file: what `make lint` gives cfn-lint and sam validate --lint."""
    path = tmp_path_factory.mktemp("expanded") / "template.yaml"
    path.write_text(dump(template))
    return path


def sam_env() -> dict[str, str]:
    """sam without telemetry, AWS or a prompt; python3.13 (the function's runtime) first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        SAM_CLI_TELEMETRY="0",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def run_sam(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "sam"), *args],
        cwd=ROOT,
        env=sam_env(),
        capture_output=True,
        text=True,
        timeout=SAM_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def iam_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        elif resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"}:
            documents = [props["PolicyDocument"]]
        else:
            continue
        for document in documents:
            statements.extend(document["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements_with(template: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in iam_statements(template) if action in as_list(s["Action"])]


# --- Tools --------------------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing(expanded_path: Path) -> None:
    matches = lint_file(expanded_path)
    assert not matches, "cfn-lint:\n" + "\n".join(str(m) for m in matches)


def test_sam_validate_lint_passes(expanded_path: Path) -> None:
    result = run_sam("validate", "--lint", "--template-file", str(expanded_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_expands_the_loops_itself() -> None:
    """`sam validate` as a user runs it: samconfig.toml's language_extensions has SAM CLI expand the loops."""
    result = run_sam("validate", "--template-file", str(TEMPLATE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


# --- Structure ------------------------------------------------------------------------------------------


def test_template_is_sam_after_the_language_extensions(raw_template: dict[str, Any], template: dict[str, Any]) -> None:
    # The order CloudFormation requires (transform-aws-languageextensions.html): LanguageExtensions first.
    assert raw_template["Transform"] == ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_every_custom_resource_has_service_token_and_timeout(template: dict[str, Any]) -> None:
    customs = {k: r for k, r in template["Resources"].items() if r["Type"].startswith("Custom::")}
    assert customs
    for logical_id, resource in customs.items():
        props = resource["Properties"]
        assert props.get("ServiceTimeout") == {"Ref": "ResourceTimeoutSeconds"}, logical_id
        assert props.get("ServiceToken") == {"Fn::GetAtt": ["ProviderFunction", "Arn"]}, logical_id
        assert "ProviderLogGroup" in as_list(resource.get("DependsOn", [])), logical_id


# Parameters that take a whole number in a range (lowest, highest): String parameters with a digit pattern, since a
# Number parameter cannot have one and would take 1.5 (which ECR then refuses as a countNumber).
WHOLE_NUMBERS = {
    "UntaggedImageExpiryDays": (1, 3650),
    "MaxImagesPerRepository": (1, 10000),
    "ResourceTimeoutSeconds": (60, 3600),
}


def test_the_cache_lifecycle_policies_are_one_valid_policy(template: dict[str, Any]) -> None:
    """The six LifecyclePolicyText blocks are the same text, and with the parameters' values a policy ECR accepts."""
    from ecr_cache_provider.grammar.lifecycle_policy import read_policy

    texts = {
        logical_id: resource["Properties"]["LifecyclePolicyText"]["Fn::If"][1]["Fn::Sub"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "Custom::CachedRepositorySettings"
    }
    assert len(texts) == len(CACHE_RULES)
    assert len(set(texts.values())) == 1, sorted(texts)

    parameters = template["Parameters"]
    for which in ("Default", "lowest", "highest"):
        values = {
            name: int(parameters[name]["Default"]) if which == "Default" else WHOLE_NUMBERS[name][which == "highest"]
            for name in ("UntaggedImageExpiryDays", "MaxImagesPerRepository")
        }
        text = next(iter(texts.values()))
        for name, value in values.items():
            text = text.replace(f"${{{name}}}", str(value))
        assert "${" not in text
        assert read_policy(text)["rules"][1]["selection"]["countNumber"] == values["MaxImagesPerRepository"]


@pytest.mark.parametrize("logical_id", sorted(CACHE_RULES))
def test_each_cache_has_its_repository_settings(template: dict[str, Any], logical_id: str) -> None:
    """Per cache: its settings follow the rule's prefix, carry the lifecycle policy when enabled and the
    organisation's pull policy with OrganizationId, take the template over from the resource of the type before,
    and wait for the policy that lets the provider manage repositories under the cache's prefix."""
    from ecr_cache_provider.types.cached_repository_settings import read_settings

    cache = logical_id.removesuffix("CacheRule")
    settings = template["Resources"][f"{cache}CachedRepositorySettings"]
    props = settings["Properties"]
    assert settings["Type"] == "Custom::CachedRepositorySettings"
    assert {"CachedRepositoriesPolicy", "ProviderInvokesItselfPolicy"} <= set(settings["DependsOn"])
    assert props["RepositoryPrefix"] == {"Fn::GetAtt": [logical_id, "EcrRepositoryPrefix"]}
    assert props["TakeOverFrom"] == f"{cache}CacheLifecyclePolicy"
    assert props["LifecyclePolicyText"]["Fn::If"][0] == "LifecyclePoliciesEnabled"
    condition, pull_policy, otherwise = props["RepositoryPolicyText"]["Fn::If"]
    assert (condition, otherwise) == ("OrganizationSharingEnabled", {"Ref": "AWS::NoValue"})
    (statement,) = pull_policy["Statement"]
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}
    assert set(statement["Action"]) == {
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
    }
    literal = json.loads(json.dumps(pull_policy).replace('{"Ref": "OrganizationId"}', '"o-abcdefghij"'))
    assert read_settings({"RepositoryPolicyText": literal}).repository_policy == literal  # the provider accepts it
    expiry = template["Resources"][f"{cache}CacheImageExpiry"]
    assert {"CachedRepositoriesPolicy", "ProviderInvokesItselfPolicy", "ImageExpirySchedulerInvokePolicy"} <= set(
        expiry["DependsOn"]
    )


@pytest.mark.parametrize("logical_id", sorted(CACHE_RULES))
def test_cache_rule(template: dict[str, Any], logical_id: str) -> None:
    condition, registry, url, prefix_parameter, credential_parameter = CACHE_RULES[logical_id]
    resource = template["Resources"][logical_id]
    props = resource["Properties"]

    assert resource["Type"] == "Custom::PullThroughCacheRule"
    assert resource["Condition"] == condition
    assert condition in template["Conditions"]
    assert props["UpstreamRegistry"] == registry
    assert props["UpstreamRegistryUrl"] == url
    assert props["EcrRepositoryPrefix"] == {"Ref": prefix_parameter}
    assert props["Validate"] == {"Ref": "ValidateCredentials"}
    if credential_parameter is None:  # AWS::NoValue: the rule has no CredentialArn at all
        assert props.get("CredentialArn", {"Ref": "AWS::NoValue"}) == {"Ref": "AWS::NoValue"}
    else:
        assert credential_parameter in template["Parameters"]
        assert credential_parameter in str(props["CredentialArn"])


def test_credentialed_caches_are_on_only_with_a_credential(template: dict[str, Any]) -> None:
    conditions = template["Conditions"]
    for name, parameter in [
        ("DockerHubCacheEnabled", "DockerHubCredentialArn"),
        ("GitHubCacheEnabled", "GitHubCredentialArn"),
        ("GitLabCacheEnabled", "GitLabCredentialArn"),
    ]:
        assert conditions[name] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}, name
    # Quay's is optional: passed as it is, '' when empty, which the provider takes as none (tests/handler).
    assert template["Resources"]["QuayCacheRule"]["Properties"]["CredentialArn"] == {"Ref": "QuayCredentialArn"}


def test_no_iam_action_is_a_wildcard(template: dict[str, Any]) -> None:
    statements = iam_statements(template)
    assert statements
    for statement in statements:
        assert "NotAction" not in statement
        for action in as_list(statement["Action"]):
            assert not action.endswith("*"), action


def test_get_secret_value_is_scoped_to_pull_through_cache_secrets(template: dict[str, Any]) -> None:
    statements = statements_with(template, "secretsmanager:GetSecretValue")
    assert statements
    for statement in statements:
        for resource in as_list(statement["Resource"]):
            assert isinstance(resource, dict), resource
            assert resource["Fn::Sub"].endswith(":secret:ecr-pullthroughcache/*"), resource


def test_pass_role_only_to_ecr_and_the_schedulers_role_only_to_the_scheduler(template: dict[str, Any]) -> None:
    passed = {
        tuple(as_list(statement["Condition"]["StringEquals"]["iam:PassedToService"])): statement["Resource"]
        for statement in statements_with(template, "iam:PassRole")
    }
    assert set(passed) == {("pullthroughcache.ecr.amazonaws.com", "ecr.amazonaws.com"), ("scheduler.amazonaws.com",)}
    assert passed[("scheduler.amazonaws.com",)] == {"Fn::GetAtt": ["ImageExpirySchedulerRole", "Arn"]}


def test_schedules_only_in_the_providers_group(template: dict[str, Any]) -> None:
    (statement,) = statements_with(template, "scheduler:CreateSchedule")
    assert statement["Resource"]["Fn::Sub"].endswith(":schedule/${ImageExpiryScheduleGroup}/*")
    environment = template["Resources"]["ProviderFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["SCHEDULE_GROUP"] == {"Ref": "ImageExpiryScheduleGroup"}
    assert environment["SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": ["ImageExpirySchedulerRole", "Arn"]}
    # A name made from the stack name could pass the scheduler's 64 characters; CloudFormation's generated one cannot.
    assert "Name" not in template["Resources"]["ImageExpiryScheduleGroup"].get("Properties", {})


def test_only_the_provider_and_its_schedules_invoke_the_function(template: dict[str, Any]) -> None:
    invokers = statements_with(template, "lambda:InvokeFunction")
    # the provider's own continuation, the image expiry schedules' role, the health check schedule's role
    assert len(invokers) == 3
    for statement in invokers:
        assert statement["Resource"] == {"Fn::GetAtt": ["ProviderFunction", "Arn"]}
    resources = template["Resources"]
    assert resources["ProviderInvokesItselfPolicy"]["Properties"]["RoleName"] == {"Ref": "ProviderRole"}
    assert resources["ImageExpirySchedulerInvokePolicy"]["Properties"]["RoleName"] == {
        "Ref": "ImageExpirySchedulerRole"
    }
    (policy,) = resources["HealthCheckSchedulerRole"]["Properties"]["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "InvokeProviderHealthCheck",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": {"Fn::GetAtt": ["ProviderFunction", "Arn"]},
        }
    ]
    assert resources["ProviderHealthCheckSchedule"]["Properties"]["Target"]["RoleArn"] == {
        "Fn::GetAtt": ["HealthCheckSchedulerRole", "Arn"]
    }


def test_every_stack_name_deploys(template: dict[str, Any]) -> None:
    """No name made from the stack name can pass its limit: a stack name may have 128 characters, a function name
    64 (CloudFormation names the function itself, within it), a log group 512."""
    function = template["Resources"]["ProviderFunction"]["Properties"]
    assert "FunctionName" not in function
    log_group = template["Resources"]["ProviderLogGroup"]["Properties"]["LogGroupName"]["Fn::Sub"]
    assert len(log_group.replace("${AWS::StackName}", "s" * 128)) <= 512


def test_log_group_is_the_functions(template: dict[str, Any]) -> None:
    function = template["Resources"]["ProviderFunction"]["Properties"]
    log_group = template["Resources"]["ProviderLogGroup"]["Properties"]
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "ProviderLogGroup"}
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}-provider"}
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionInDays"}


def test_lambda_does_not_retry(template: dict[str, Any]) -> None:
    function = template["Resources"]["ProviderFunction"]["Properties"]
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


def test_service_token_output_is_exported(template: dict[str, Any]) -> None:
    output = template["Outputs"]["ServiceToken"]
    assert output["Value"] == {"Fn::GetAtt": ["ProviderFunction", "Arn"]}
    assert output["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-ServiceToken"}


def test_rule_outputs_share_the_rules_condition(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for logical_id, (condition, *_) in CACHE_RULES.items():
        name = logical_id.removesuffix("Rule")
        for output_name in (f"{name}Prefix", f"{name}PullUriPrefix"):
            assert outputs[output_name]["Condition"] == condition, output_name
            assert logical_id in str(outputs[output_name]["Value"]), output_name


# --- Parameters -----------------------------------------------------------------------------------------


def allowed(pattern: str) -> re.Pattern[str]:
    # CloudFormation reads AllowedPattern as a Java regex; these (ECR's own) read the same in Python's re.
    return re.compile(pattern)


@pytest.mark.parametrize("value", ["ecr-public", "docker-hub", "a1", "team/quay", "k8s/", "a.b_c__d--e"])
def test_prefix_pattern_accepts(template: dict[str, Any], value: str) -> None:
    pattern = allowed(template["Parameters"]["QuayPrefix"]["AllowedPattern"])
    assert pattern.fullmatch(value)


# ROOT is ECR's name for every repository, allowed only for a cache of another ECR registry, which this template does
# not make: it would make a scanning filter ROOT/* (refused by ECR) and IAM ARNs repository/ROOT/*.
@pytest.mark.parametrize("value", ["Docker", "-a", "a-", "a//b", "a b", "/a", "ROOT"])
def test_prefix_pattern_rejects(template: dict[str, Any], value: str) -> None:
    pattern = allowed(template["Parameters"]["QuayPrefix"]["AllowedPattern"])
    assert not pattern.fullmatch(value)


def test_prefix_parameters_follow_ecr(template: dict[str, Any]) -> None:
    prefixes = {name: spec for name, spec in template["Parameters"].items() if name.endswith("Prefix")}
    assert len(prefixes) == len(CACHE_RULES)
    for name, spec in prefixes.items():
        assert (spec["MinLength"], spec["MaxLength"]) == (2, 30), name
        assert spec["AllowedPattern"] == template["Parameters"]["QuayPrefix"]["AllowedPattern"], name
        assert allowed(spec["AllowedPattern"]).fullmatch(spec["Default"]), name
        assert spec["ConstraintDescription"] == template["Parameters"]["QuayPrefix"]["ConstraintDescription"], name


def test_credential_parameters_share_their_constraints(template: dict[str, Any]) -> None:
    """Fn::ForEach cannot make parameters: each cache declares its own, and they must not drift apart."""
    credentials = {name: spec for name, spec in template["Parameters"].items() if name.endswith("CredentialArn")}
    assert sorted(credentials) == sorted(f"{cache}CredentialArn" for cache in ("Quay", "DockerHub", "GitHub", "GitLab"))
    constraints = {(spec["AllowedPattern"], spec["ConstraintDescription"], spec["MaxLength"], spec["Default"])
                   for spec in credentials.values()}  # fmt: skip
    assert len(constraints) == 1, constraints


def test_the_organisation_statement_sid_fits_for_the_longest_stack_name() -> None:
    """A Sid here is 1 to 100 letters and digits (Custom::RegistryPolicyStatements); a stack name may have 128
    characters, so the Sid is made of the stack's unique id instead."""
    from tools.stack_player.template import Renderer, Template

    loaded = Template.load(TEMPLATE)
    name = "a-" * 63 + "ab"
    stack_id = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/5b1a6c80-0e4c-11ef-9d37-0a1b2c3d4e5f"
    pseudo = {"AWS::StackName": name, "AWS::StackId": stack_id, "AWS::Region": "us-east-1"}
    renderer = Renderer(loaded, {}, pseudo, lambda logical_id, attribute: None)
    statement = loaded.resources["OrganizationRegistryPolicyStatements"]["Properties"]["Statements"][0]

    sid = renderer.evaluate(statement["Sid"])

    assert len(name) == 128
    assert sid == "OrganizationFillsCache5b1a6c800e4c11ef9d370a1b2c3d4e5f"
    assert re.fullmatch(r"[A-Za-z0-9]{1,100}", sid)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf", True),
        ("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:ecr-pullthroughcache/x/y-AbCdEf", True),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:docker-hub-AbCdEf", False),
        ("docker-hub", False),
    ],
)
def test_credential_pattern(template: dict[str, Any], value: str, accepted: bool) -> None:
    parameters = template["Parameters"]
    for name in ("QuayCredentialArn", "DockerHubCredentialArn", "GitHubCredentialArn", "GitLabCredentialArn"):
        assert parameters[name]["Default"] == ""
        assert bool(allowed(parameters[name]["AllowedPattern"]).fullmatch(value)) is accepted, name


def test_parameters_are_grouped_in_the_interface(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_samconfig_parameter_overrides_fit_the_template(template: dict[str, Any], environment: str) -> None:
    config = tomllib.loads(SAMCONFIG.read_text())
    assert config["version"] == 0.1
    deploy = config[environment]["deploy"]["parameters"]
    assert "CAPABILITY_IAM" in deploy["capabilities"].split()
    parameters = template["Parameters"]
    for override in deploy["parameter_overrides"]:
        name, _, value = override.partition("=")
        assert name in parameters, override
        spec = parameters[name]
        if "AllowedValues" in spec:
            assert value in {str(v) for v in spec["AllowedValues"]}, override
        if "AllowedPattern" in spec:
            assert allowed(spec["AllowedPattern"]).fullmatch(value), override
        if "MinValue" in spec:
            assert spec["MinValue"] <= int(value) <= spec["MaxValue"], override


def test_every_constrained_parameter_says_what_it_accepts(template: dict[str, Any]) -> None:
    """CloudFormation shows ConstraintDescription instead of the raw pattern when a value is refused."""
    constraints = {"AllowedValues", "AllowedPattern", "MinLength", "MaxLength", "MinValue", "MaxValue"}
    for name, spec in template["Parameters"].items():
        if constraints & set(spec):
            assert spec.get("ConstraintDescription", "").startswith("must "), name


@pytest.mark.parametrize(("name", "lowest", "highest"), [(name, *ends) for name, ends in WHOLE_NUMBERS.items()])
def test_whole_number_parameters_accept_exactly_their_range(
    template: dict[str, Any], name: str, lowest: int, highest: int
) -> None:
    """A Number parameter would take 1.5 (ECR then refuses countNumber): these are digit patterns over a range."""
    spec = template["Parameters"][name]
    pattern = allowed(spec["AllowedPattern"])
    accepted = [number for number in range(highest * 2) if pattern.fullmatch(str(number))]
    assert accepted == list(range(lowest, highest + 1))
    assert pattern.fullmatch(str(spec["Default"]))
    for bad in (f"{lowest}.0", "1.5", f"0{lowest}", f" {lowest}", "-1", ""):
        assert not pattern.fullmatch(bad), bad
    assert f"from {lowest} to {highest}" in spec["ConstraintDescription"]


# --- The loops against the template before them ----------------------------------------------------------------

TEMPLATE_BEFORE = ROOT / "tests" / "stack" / "fixtures" / "template-2f3a17d.yaml"


def without_no_value(node: Any) -> Any:
    """A property set to AWS::NoValue is no property: as CloudFormation sends it."""
    if isinstance(node, dict):
        return {key: without_no_value(value) for key, value in node.items() if value != {"Ref": "AWS::NoValue"}}
    if isinstance(node, list):
        return [without_no_value(item) for item in node]
    return node


# What issue 20 added since (the health check's schedule, alarms, topic and dashboard; docs/health-check.md): new
# resources, conditions and parameters, none of which changes what was there.
ISSUE_20_PARAMETERS = ("HealthCheckSchedule", "RepairDrift", "HealthCheckSampleSize", "AlarmEmail", "AlarmTopicArn",
                       "EnableDashboard")  # fmt: skip
ISSUE_20_CONDITIONS = ("HealthCheckScheduled", "CreatesAlarmTopic", "HasAlarmTopicArn", "DashboardEnabled",
                       *(f"{cache}HealthCheckAlarmsEnabled" for cache in CACHES))  # fmt: skip
ISSUE_20_ENVIRONMENT = ("HEALTH_CHECK_REPAIR_DRIFT", "HEALTH_CHECK_SAMPLE_SIZE")
ISSUE_20_TYPES = ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard", "AWS::SNS::Topic", "AWS::SNS::Subscription",
                  "AWS::Scheduler::Schedule")  # fmt: skip


def without_issue_20(template: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = json.loads(json.dumps(template))
    kept["Resources"] = {
        logical_id: resource
        for logical_id, resource in kept["Resources"].items()
        if resource["Type"] not in ISSUE_20_TYPES and logical_id != "HealthCheckSchedulerRole"
    }
    variables = kept["Resources"]["ProviderFunction"]["Properties"]["Environment"]["Variables"]
    for name in ISSUE_20_ENVIRONMENT:
        variables.pop(name)
    for section, names in (("Conditions", ISSUE_20_CONDITIONS), ("Parameters", ISSUE_20_PARAMETERS)):
        for name in names:
            kept[section].pop(name)
    return kept


def policy_documents(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The IAM policy documents a resource holds (a managed policy's, or a role's inline ones)."""
    properties = resource.get("Properties", {})
    documents = [
        properties.get("PolicyDocument"),
        *(policy["PolicyDocument"] for policy in properties.get("Policies", [])),
    ]
    return [document for document in documents if isinstance(document, dict) and "Statement" in document]


def test_the_loops_expand_to_the_template_before_them(template: dict[str, Any]) -> None:
    """Every resource keeps its logical id, type, condition and properties (docs/template.md), but for Quay's
    optional credential, passed as it is rather than through Fn::If on a per-cache condition."""
    before: dict[str, Any] = plain(cfn_yaml.load(str(TEMPLATE_BEFORE)))
    template = without_issue_20(template)
    assert list(template["Resources"]) == [
        *[logical_id for logical_id in before["Resources"] if not logical_id.startswith(CACHES)][:9],
        *[
            f"{cache}{part}"
            for cache in CACHES
            for part in ("CacheRule", "CachedRepositorySettings", "CacheImageExpiry")
        ],
        *[logical_id for logical_id in before["Resources"] if not logical_id.startswith(CACHES)][9:],
    ]
    quay_before = before["Resources"]["QuayCacheRule"]["Properties"]
    assert quay_before["CredentialArn"] == {
        "Fn::If": ["HasQuayCredential", {"Ref": "QuayCredentialArn"}, {"Ref": "AWS::NoValue"}]
    }
    quay_before["CredentialArn"] = {"Ref": "QuayCredentialArn"}
    # Reworded on purpose: the provider manages more than lifecycle policies (a Description updates in place).
    function = before["Resources"]["ProviderFunction"]["Properties"]
    function["Description"] = template["Resources"]["ProviderFunction"]["Properties"]["Description"]
    # Statements added to policies since (issue 21: ImagesInUse*, WarmUpRegistryLogin, CacheWarmUpPulls): every
    # earlier statement is kept as it was.
    for logical_id, resource in before["Resources"].items():
        for document_before, document_now in zip(
            policy_documents(resource), policy_documents(template["Resources"][logical_id]), strict=True
        ):
            assert all(statement in document_now["Statement"] for statement in document_before["Statement"])
            document_before["Statement"] = document_now["Statement"]
    assert without_no_value(template["Resources"]) == without_no_value(before["Resources"])
    assert template["Conditions"] == {name: value for name, value in before["Conditions"].items()
                                      if name != "HasQuayCredential"}  # fmt: skip
    assert template["Parameters"] == before["Parameters"]
    for name, output in before["Outputs"].items():  # descriptions aside, the same outputs
        assert {key: value for key, value in template["Outputs"][name].items() if key != "Description"} == {
            key: value for key, value in output.items() if key != "Description"
        }, name
    assert template["Outputs"].keys() == before["Outputs"].keys()
