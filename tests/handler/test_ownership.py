"""Ownership through the real handler: a prefix belongs to the resource that claimed it in the ledger before
making the rule. Another stack's rule is never taken over or deleted; an unowned rule is adopted only on request."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulation import iam
from emulation.cloudformation import STACK_ID, ResponseEndpoint, make_event
from emulation.moto_ecr import faults
from emulation.stacks import set_stack_status
from tests.handler.conftest import Invoke

QUAY = {"EcrRepositoryPrefix": "quay", "UpstreamRegistryUrl": "quay.io", "UpstreamRegistry": "quay"}
PROD_STACK = STACK_ID.replace("stack/cache-stack/", "stack/prod-stack/")
TABLE = "ecr-pull-through-cache-ownership"


def rules(ecr: Any) -> dict[str, dict[str, Any]]:
    found = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    return {rule["ecrRepositoryPrefix"]: rule for rule in found}


def claim_of(dynamodb: Any, prefix: str, kind: str = "pull-through cache rule") -> dict[str, str] | None:
    item = dynamodb.get_item(TableName=TABLE, Key={"Id": {"S": f"{kind}/{prefix}"}}).get("Item")
    return {name: value["S"] for name, value in item.items()} if item else None


def request(endpoint: ResponseEndpoint, request_type: str, stack_id: str = STACK_ID, **options: Any) -> dict[str, Any]:
    event = make_event(endpoint, request_type, options.pop("properties", QUAY), **options)
    event["StackId"] = stack_id
    return event


def make_unowned_quay_rule(ecr: Any) -> None:
    """A rule made outside the provider: by hand, by AWS::ECR::PullThroughCacheRule, or before the ledger existed."""
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io", upstreamRegistry="quay"
    )


@pytest.fixture
def dynamodb(aws: None) -> Any:

    return iam.admin_client("dynamodb")


def test_another_stacks_rule_is_neither_taken_nor_deleted_by_the_rollback(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, dynamodb: Any
) -> None:
    owner = invoke(request(response_endpoint, "Create"))
    before = rules(ecr)["quay"]

    failed = invoke(request(response_endpoint, "Create", PROD_STACK))
    rollback = invoke(request(response_endpoint, "Delete", PROD_STACK, physical_id=failed["PhysicalResourceId"]))

    assert owner["Status"] == "SUCCESS"
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith("The pull-through cache rule 'quay' belongs to CacheRule in stack cache-stack")
    assert failed["PhysicalResourceId"].startswith("failed-create:")
    assert rollback["Status"] == "SUCCESS"
    assert rules(ecr) == {"quay": before}
    claim = claim_of(dynamodb, "quay") or {}
    assert (claim["StackId"], claim["RequestId"]) == (STACK_ID, owner["RequestId"])


def test_a_delete_by_another_stack_removes_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, dynamodb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    invoke(request(response_endpoint, "Create"))

    answer = invoke(request(response_endpoint, "Delete", PROD_STACK, physical_id="quay"))

    assert answer["Status"] == "SUCCESS"
    assert set(rules(ecr)) == {"quay"}
    assert claim_of(dynamodb, "quay") is not None
    assert "Left in place: not this resource's" in caplog.text


def test_a_failed_create_frees_the_prefix_for_the_next_claimant(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, dynamodb: Any
) -> None:
    faults.reject_upstream_credentials("quay", "Authentication failed")
    failed = invoke(request(response_endpoint, "Create"))
    faults.reset()

    other = invoke(request(response_endpoint, "Create", PROD_STACK))

    assert failed["Status"] == "FAILED"
    assert other["Status"] == "SUCCESS", other["Reason"]
    assert (claim_of(dynamodb, "quay") or {})["StackId"] == PROD_STACK


def test_adopt_existing_takes_over_an_identical_rule_nobody_owns(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, dynamodb: Any
) -> None:
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io", upstreamRegistry="quay"
    )
    before = rules(ecr)["quay"]
    adopting = {**QUAY, "AdoptExisting": "true"}

    adopted = invoke(request(response_endpoint, "Create", properties=adopting))
    claim = claim_of(dynamodb, "quay") or {}
    set_stack_status(STACK_ID, "DELETE_IN_PROGRESS")  # the stack is deleted: the adoption had completed
    deleted = invoke(request(response_endpoint, "Delete", properties=adopting, physical_id="quay"))

    assert adopted["Status"] == "SUCCESS", adopted["Reason"]
    assert adopted["PhysicalResourceId"] == "quay"
    assert faults.count("CreatePullThroughCacheRule") == 2  # ours above; the provider's, which found the rule
    assert json.loads(claim["Adopted"])["upstreamRegistryUrl"] == "quay.io"  # the claim records the adoption
    assert deleted["Status"] == "SUCCESS"
    assert rules(ecr) == {}
    assert claim_of(dynamodb, "quay") is None
    assert before["upstreamRegistryUrl"] == "quay.io"


@pytest.mark.parametrize(
    "status",
    [
        "UPDATE_ROLLBACK_IN_PROGRESS",  # step 2 of the move from AWS::ECR::PullThroughCacheRule fails elsewhere
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "ROLLBACK_IN_PROGRESS",  # a stack created with AdoptExisting fails elsewhere
        None,  # the stack's status cannot be read: what existed before stays
    ],
)
def test_the_rollback_of_an_adopting_create_hands_the_rule_back(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, dynamodb: Any, status: str | None
) -> None:
    """Issue 18, case 2: any other failure in the stack operation that adopted a rule (the documented move from the
    native resource) rolled back with a Delete of the retained native rule, and pulls through its prefix stopped."""
    make_unowned_quay_rule(ecr)
    before = rules(ecr)["quay"]
    adopting = {**QUAY, "AdoptExisting": "true"}
    adopted = invoke(request(response_endpoint, "Create", properties=adopting))
    if status is not None:
        set_stack_status(STACK_ID, status)

    rollback = invoke(request(response_endpoint, "Delete", properties=adopting, physical_id="quay"))

    assert adopted["Status"] == rollback["Status"] == "SUCCESS"
    assert rules(ecr) == {"quay": before}
    assert claim_of(dynamodb, "quay") is None  # nobody owns it again, as before the operation
    again = invoke(request(response_endpoint, "Create", properties=QUAY, issued=datetime.now(UTC) + timedelta(1)))
    assert "set AdoptExisting to take it over" in again["Reason"]


def test_a_rule_the_resource_made_is_deleted_by_the_rollback(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, dynamodb: Any
) -> None:
    made = invoke(request(response_endpoint, "Create"))
    set_stack_status(STACK_ID, "ROLLBACK_IN_PROGRESS")

    rollback = invoke(request(response_endpoint, "Delete", physical_id="quay"))

    assert made["Status"] == rollback["Status"] == "SUCCESS"
    assert rules(ecr) == {}
    assert claim_of(dynamodb, "quay") is None


def test_adopt_existing_refuses_a_rule_with_other_settings(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, dynamodb: Any
) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="public.ecr.aws")

    answer = invoke(request(response_endpoint, "Create", properties={**QUAY, "AdoptExisting": "true"}))

    assert answer["Status"] == "FAILED"
    assert "differs from this resource's properties" in answer["Reason"]
    assert rules(ecr)["quay"]["upstreamRegistryUrl"] == "public.ecr.aws"
    assert claim_of(dynamodb, "quay") is None


def test_adopt_existing_never_takes_a_rule_another_stack_owns(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    invoke(request(response_endpoint, "Create"))

    answer = invoke(request(response_endpoint, "Create", PROD_STACK, properties={**QUAY, "AdoptExisting": "true"}))

    assert answer["Status"] == "FAILED"
    assert "belongs to CacheRule in stack cache-stack" in answer["Reason"]


def test_an_update_of_a_rule_nobody_owns_needs_adopt_existing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, dynamodb: Any
) -> None:
    # A resource created before the ledger existed: CloudFormation holds its physical id, the ledger no claim.
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io", upstreamRegistry="quay"
    )
    no_validation = {**QUAY, "Validate": "false"}

    refused = invoke(
        request(response_endpoint, "Update", properties=no_validation, physical_id="quay", old_properties=QUAY)
    )
    adopting = {**no_validation, "AdoptExisting": "true"}
    claimed = invoke(request(response_endpoint, "Update", properties=adopting, physical_id="quay", old_properties=QUAY))

    assert refused["Status"] == "FAILED"
    assert "No resource owns the pull-through cache rule 'quay'" in refused["Reason"]
    assert "set AdoptExisting to claim it" in refused["Reason"]
    assert claimed["Status"] == "SUCCESS", claimed["Reason"]
    assert (claim_of(dynamodb, "quay") or {})["StackId"] == STACK_ID


def test_an_update_never_changes_another_stacks_rule(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    invoke(request(response_endpoint, "Create", PROD_STACK))
    before = rules(ecr)["quay"]
    changed = {**QUAY, "AdoptExisting": "true", "Validate": "false"}

    answer = invoke(request(response_endpoint, "Update", properties=changed, physical_id="quay", old_properties=QUAY))

    assert answer["Status"] == "FAILED"
    assert "belongs to CacheRule in stack prod-stack" in answer["Reason"]
    assert rules(ecr) == {"quay": before}


# Custom::CacheLifecyclePolicy: the repository creation template


LIFECYCLE = "Custom::CacheLifecyclePolicy"
TEMPLATE = "repository creation template"
POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
            "action": {"type": "expire"},
        }
    ]
}
LIFECYCLE_PROPERTIES = {"RepositoryPrefix": "quay", "LifecyclePolicyText": json.dumps(POLICY)}


def lifecycle(
    endpoint: ResponseEndpoint, request_type: str, stack_id: str = STACK_ID, **options: Any
) -> dict[str, Any]:
    return request(
        endpoint,
        request_type,
        stack_id,
        properties=LIFECYCLE_PROPERTIES,
        resource_type=LIFECYCLE,
        logical_id="CachePolicy",
        **options,
    )


def templates(ecr: Any) -> dict[str, dict[str, Any]]:
    found = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    return {template["prefix"]: template for template in found}


def test_another_stacks_template_is_neither_taken_nor_deleted(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, dynamodb: Any
) -> None:
    owner = invoke(lifecycle(response_endpoint, "Create"))
    before = templates(ecr)["quay"]

    failed = invoke(lifecycle(response_endpoint, "Create", PROD_STACK))
    rollback = invoke(lifecycle(response_endpoint, "Delete", PROD_STACK, physical_id=failed["PhysicalResourceId"]))
    foreign_delete = invoke(lifecycle(response_endpoint, "Delete", PROD_STACK, physical_id="quay"))

    assert owner["Status"] == "SUCCESS", owner["Reason"]
    assert failed["Status"] == "FAILED"
    assert "The repository creation template 'quay' belongs to CachePolicy in stack cache-stack" in failed["Reason"]
    assert rollback["Status"] == foreign_delete["Status"] == "SUCCESS"
    assert templates(ecr) == {"quay": before}
    assert (claim_of(dynamodb, "quay", TEMPLATE) or {})["StackId"] == STACK_ID


def test_a_template_made_before_the_ledger_is_recognised_by_its_token_and_claimed(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, dynamodb: Any
) -> None:
    invoke(lifecycle(response_endpoint, "Create"))
    dynamodb.delete_item(TableName=TABLE, Key={"Id": {"S": f"{TEMPLATE}/quay"}})  # as before the ledger existed

    updated = invoke(lifecycle(response_endpoint, "Update", physical_id="quay", old_properties=LIFECYCLE_PROPERTIES))
    deleted = invoke(lifecycle(response_endpoint, "Delete", physical_id="quay"))

    assert updated["Status"] == deleted["Status"] == "SUCCESS", updated["Reason"]
    assert templates(ecr) == {}
    assert claim_of(dynamodb, "quay", TEMPLATE) is None


def test_a_failed_template_create_frees_the_prefix(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, dynamodb: Any
) -> None:
    faults.fail("CreateRepositoryCreationTemplate", "InvalidParameterException", "rejected")

    failed = invoke(lifecycle(response_endpoint, "Create"))

    assert failed["Status"] == "FAILED"
    assert failed["PhysicalResourceId"].startswith("failed-create:")
    assert claim_of(dynamodb, "quay", TEMPLATE) is None
