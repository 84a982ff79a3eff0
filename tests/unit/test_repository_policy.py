"""ECR repository policies, checked directly: what is accepted, the Reason for each policy refused, and the pinned
list of ECR actions against the botocore ECR model."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest

from ecr_cache_provider.failures import InvalidProperties
from ecr_cache_provider.grammar.repository_policy import (
    ECR_OPERATIONS,
    ECR_PERMISSION_ONLY_ACTIONS,
    MAX_POLICY_LENGTH,
    read_repository_policy,
)


def statement(**fields: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["ecr:BatchGetImage"]} | fields


def test_the_pinned_operations_are_exactly_those_of_the_botocore_ecr_model() -> None:
    """A newer botocore (requirements-dev.txt) with new ECR operations fails this test: add them to the list."""
    model = botocore.session.get_session().get_service_model("ecr")
    assert set(model.operation_names) == ECR_OPERATIONS


def test_permission_only_actions_are_not_operations() -> None:
    assert not ECR_PERMISSION_ONLY_ACTIONS & ECR_OPERATIONS


@pytest.mark.parametrize(
    "policy",
    [
        {"Version": "2012-10-17", "Statement": [statement()]},
        {"Statement": statement(Sid="One", Action="ecr:*")},  # one statement as an object, a wildcard
        {"Version": "2008-10-17", "Statement": [statement(Action=["ecr:Batch*", "ecr:GetDownloadUrlForLayer"])]},
        {"Statement": [statement(Principal="*", NotAction="ecr:DeleteRepository", Action=None)]},
        {"Statement": [statement(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}})]},
        {"Statement": [statement(Action="ecr:BatchImportUpstreamImage")]},  # permission only, no API call
    ],
)
def test_valid_policies_are_accepted(policy: dict[str, Any]) -> None:
    for item in policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]:
        if item.get("Action") is None:
            item.pop("Action", None)
    assert read_repository_policy(json.dumps(policy)) == policy
    assert read_repository_policy(policy) == policy


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        ([], "must be a policy document"),
        ({"Statement": []}, "needs at least one statement"),
        ({"Version": "2020-01-01", "Statement": [statement()]}, "Version must be one of"),
        ({"Statement": [statement()], "Extra": 1}, "unknown field Extra"),
        ({"Statement": [statement(Effect="Maybe")]}, "Effect must be Allow or Deny"),
        ({"Statement": [{"Effect": "Allow", "Action": "ecr:BatchGetImage"}]}, "exactly one of Principal"),
        ({"Statement": [statement(NotPrincipal={"AWS": "*"})]}, "exactly one of Principal"),
        ({"Statement": [statement(Principal={"Users": "x"})]}, "unknown principal kind Users"),
        ({"Statement": [statement(Principal={"AWS": []})]}, "Principal.AWS must be a string or a non-empty list"),
        ({"Statement": [statement(Sid="Pull", Action="ecr:PullImage")]}, "statement 'Pull': ECR has no action"),
        ({"Statement": [statement(Action="ecr:Nothing*")]}, "ECR has no action 'ecr:Nothing*'"),
        ({"Statement": [statement(Action="s3:GetObject")]}, "'s3:GetObject' is not an ECR action"),
        ({"Statement": [statement(Action=[])]}, "Action must be a string or a non-empty list"),
        ({"Statement": [statement(Condition="x")]}, "Condition must be an object"),
        ({"Statement": [statement(Principalx=1)]}, "unknown field Principalx"),
        ({"Statement": [statement(Sid=f"S{index}") for index in range(150)]}, f"at most {MAX_POLICY_LENGTH}"),
    ],
)
def test_invalid_policies_are_refused_naming_the_fault(policy: Any, reason: str) -> None:
    with pytest.raises(InvalidProperties) as refused:
        read_repository_policy(policy)
    assert reason in str(refused.value)


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(InvalidProperties, match="RepositoryPolicyText is not valid JSON"):
        read_repository_policy("{")
