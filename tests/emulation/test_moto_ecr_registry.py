"""The registry policy and registry scanning configuration in the moto extension, validated as ECR does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.emulation.test_moto_ecr import ACCOUNT, UNVALIDATED, client, moto_mock

__all__ = ["moto_mock"]  # the fixture


def registry_statement(sid: str, principal: str, actions: list[str], resource: str, **extra: Any) -> dict[str, Any]:
    """A registry policy statement (tests in other tiers build theirs with this too)."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": actions,
        "Resource": resource,
    } | extra


ORGANIZATION_CONDITION = {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
PULL_THROUGH = registry_statement(
    "OrganizationFillsTheCache",
    "*",
    ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"],
    f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/ecr-public/*",
    Condition=ORGANIZATION_CONDITION,
)
#: Another registry replicating into this one: the statement every merging test expects to survive.
REPLICATION = registry_statement(
    "ReplicationFromSource",
    "arn:aws:iam::210987654321:root",
    ["ecr:CreateRepository", "ecr:ReplicateImage"],
    f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/*",
)
#: Another team's scanning rule: the rule every merging test expects to survive.
TEAM_RULE = {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "team/*", "filterType": "WILDCARD"}]}


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_registry_policy_round_trip_and_delete(moto_mock: None) -> None:
    ecr = client("ecr")
    with pytest.raises(ClientError) as missing:
        ecr.get_registry_policy()
    assert error_code(missing) == "RegistryPolicyNotFoundException"

    put = ecr.put_registry_policy(policyText=policy(REPLICATION, PULL_THROUGH))

    assert put["registryId"] == ACCOUNT
    assert json.loads(ecr.get_registry_policy()["policyText"])["Statement"] == [REPLICATION, PULL_THROUGH]
    assert json.loads(ecr.delete_registry_policy()["policyText"])["Statement"] == [REPLICATION, PULL_THROUGH]
    with pytest.raises(ClientError) as gone:
        ecr.delete_registry_policy()
    assert error_code(gone) == "RegistryPolicyNotFoundException"


@pytest.mark.parametrize(
    "text",
    [
        policy({**REPLICATION, "Action": "ecr:BatchGetImage"}),  # not a registry-level permission
        policy({key: value for key, value in PULL_THROUGH.items() if key != "Principal"}),  # not a resource policy
        "not json",
        json.dumps({"Version": "2012-10-17"}),
    ],
)
def test_registry_policy_refuses_what_ecr_refuses(moto_mock: None, text: str) -> None:
    ecr = client("ecr")
    with pytest.raises(ClientError) as refused:
        ecr.put_registry_policy(policyText=text)
    assert error_code(refused) == "InvalidParameterException"
    with pytest.raises(ClientError):
        ecr.get_registry_policy()  # nothing was stored


def test_registry_policy_over_the_model_length_is_a_validation_error(moto_mock: None) -> None:
    text = policy(*[{**REPLICATION, "Sid": f"S{index}"} for index in range(60)])
    assert len(text) > 10240
    with pytest.raises(ClientError) as refused:
        client("ecr").put_registry_policy(policyText=text)
    assert error_code(refused) == "ValidationException"


def rule(frequency: str, *filters: str) -> dict[str, Any]:
    return {"scanFrequency": frequency, "repositoryFilters": [{"filter": f, "filterType": "WILDCARD"} for f in filters]}


def test_scanning_configuration_starts_basic_and_round_trips(moto_mock: None) -> None:
    ecr = client("ecr")
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"] == {"scanType": "BASIC", "rules": []}

    rules = [rule("SCAN_ON_PUSH", "team/*"), rule("CONTINUOUS_SCAN", "ecr-public/*")]
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=rules)

    answer = ecr.get_registry_scanning_configuration()
    assert answer["registryId"] == ACCOUNT
    assert answer["scanningConfiguration"] == {"scanType": "ENHANCED", "rules": rules}


@pytest.mark.parametrize(
    ("scan_type", "rules"),
    [
        ("BASIC", [rule("CONTINUOUS_SCAN", "team/*")]),  # basic scanning scans on push only
        ("ENHANCED", [rule("MANUAL", "team/*")]),
        ("ENHANCED", [rule("SCAN_ON_PUSH", "a/*"), rule("SCAN_ON_PUSH", "b/*")]),
    ],
)
def test_scanning_configuration_refuses_frequencies_the_scan_type_lacks(
    moto_mock: None, scan_type: str, rules: list[dict[str, Any]]
) -> None:
    ecr = client("ecr")
    with pytest.raises(ClientError) as refused:
        ecr.put_registry_scanning_configuration(scanType=scan_type, rules=rules)
    assert error_code(refused) == "InvalidParameterException"
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"]["scanType"] == "BASIC"


@pytest.mark.parametrize(
    "rules",
    [
        [rule("SCAN_ON_PUSH", "a/*"), rule("CONTINUOUS_SCAN", "b/*"), rule("SCAN_ON_PUSH", "c/*")],  # at most 2
        [rule("SCAN_ON_PUSH", "Upper/*")],  # the filter pattern is lowercase
        [rule("SCAN_ON_PUSH", *[f"f{index}/*" for index in range(101)])],  # at most 100 filters
    ],
)
def test_scanning_configuration_is_validated_against_the_model(moto_mock: None, rules: list[dict[str, Any]]) -> None:
    with pytest.raises(ClientError) as refused:
        client("ecr", config=UNVALIDATED).put_registry_scanning_configuration(scanType="ENHANCED", rules=rules)
    assert error_code(refused) == "ValidationException"
