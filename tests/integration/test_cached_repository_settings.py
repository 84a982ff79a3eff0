"""Custom::CachedRepositorySettings over HTTP, in-process and as the built package on the oldest and newest
supported botocore: every setting put in place, updated and removed; the exclusion filters of tag mutability,
which need botocore 1.39.11, refused on the oldest with a Reason and nothing changed; a backfill across
invocations answered once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_cache_provider.aws import sdk
from emulation import iam
from emulation.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint, make_event
from emulation.lambda_emulator import LambdaEmulator
from emulation.moto_ecr import simulate_cached_pull
from tests import conftest
from tests.handler.test_cached_repository_settings import ORGANIZATION_PULLS, ROLE
from tests.integration.test_cache_lifecycle_policy_backfill import answered_once
from tests.unit.test_lifecycle_policy import policy

pytestmark = pytest.mark.integration

TYPE = "Custom::CachedRepositorySettings"
NGINX = "ecr-public/library/nginx"


@pytest.fixture
def cache(ecr: Any, aws_endpoint: str) -> Any:
    iam.admin_client("iam", endpoint_url=aws_endpoint).create_role(
        RoleName="ecr-template", AssumeRolePolicyDocument="{}"
    )
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
    # The extension's cached pull runs in this process, on the server's backend (same process as the server).
    simulate_cached_pull(ACCOUNT_ID, REGION, NGINX)
    return ecr


def carried(ecr: Any, name: str) -> dict[str, Any]:
    repository = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    try:
        repository_policy = json.loads(ecr.get_repository_policy(repositoryName=name)["policyText"])
    except ecr.exceptions.RepositoryPolicyNotFoundException:
        repository_policy = None
    tags = ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]
    return {
        "policy": repository_policy,
        "tags": {tag["Key"]: tag["Value"] for tag in tags},
        "mutability": repository["imageTagMutability"],
    }


def settings_event(endpoint: ResponseEndpoint, request_type: str, properties: dict[str, Any], **kw: Any) -> Any:
    return make_event(endpoint, request_type, properties, resource_type=TYPE, logical_id="Settings", **kw)


def test_create_update_delete_on_every_runtime(invoke: Any, response_endpoint: ResponseEndpoint, cache: Any) -> None:
    created_with = {
        "RepositoryPrefix": "ecr-public",
        "RepositoryPolicyText": json.dumps(ORGANIZATION_PULLS),
        "ResourceTags": [{"Key": "cache", "Value": "ecr-public"}],
        "CustomRoleArn": ROLE,
        "ImageTagMutability": "IMMUTABLE",
    }
    created = invoke(settings_event(response_endpoint, "Create", created_with))
    assert created["Status"] == "SUCCESS", created["Reason"]
    assert carried(cache, NGINX) == {
        "policy": ORGANIZATION_PULLS,
        "tags": {"cache": "ecr-public"},
        "mutability": "IMMUTABLE",
    }

    updated_with = created_with | {"ImageTagMutability": "MUTABLE", "LifecyclePolicyText": json.dumps(policy())}
    del updated_with["RepositoryPolicyText"]
    updated = invoke(
        settings_event(response_endpoint, "Update", updated_with, physical_id="ecr-public", old_properties=created_with)
    )
    assert updated["Status"] == "SUCCESS", updated["Reason"]
    assert carried(cache, NGINX) == {"policy": None, "tags": {"cache": "ecr-public"}, "mutability": "MUTABLE"}
    assert json.loads(cache.get_lifecycle_policy(repositoryName=NGINX)["lifecyclePolicyText"]) == policy()

    deleted = invoke(settings_event(response_endpoint, "Delete", updated_with, physical_id="ecr-public"))
    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    assert carried(cache, NGINX) == {"policy": None, "tags": {}, "mutability": "MUTABLE"}
    assert cache.describe_repository_creation_templates()["repositoryCreationTemplates"] == []


def test_exclusion_filters_need_botocore_1_39_11(
    request: pytest.FixtureRequest, invoke: Any, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    properties = {
        "RepositoryPrefix": "ecr-public",
        "ImageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
        "ImageTagMutabilityExclusionFilters": ["latest"],
    }

    answer = invoke(settings_event(response_endpoint, "Create", properties))

    if request.node.callspec.params["invoke"] == "built-oldest":  # botocore 1.37.11
        assert answer["Status"] == "FAILED"
        assert f"need botocore {sdk.TAG_MUTABILITY_EXCLUSIONS_MINIMUM_BOTOCORE} or newer" in answer["Reason"]
        assert carried(cache, NGINX)["mutability"] == "MUTABLE"
        assert cache.describe_repository_creation_templates()["repositoryCreationTemplates"] == []
    else:
        assert answer["Status"] == "SUCCESS", answer["Reason"]
        assert carried(cache, NGINX)["mutability"] == "IMMUTABLE_WITH_EXCLUSION"


def test_a_settings_backfill_across_invocations_answers_once(
    lambda_service: LambdaEmulator,
    response_endpoint: ResponseEndpoint,
    ecr: Any,
    small_batches: None,
    fast_retries: None,
) -> None:
    names = conftest.cached_repositories(ecr, 20)
    properties = {"RepositoryPrefix": "ecr-public", "RepositoryPolicyText": ORGANIZATION_PULLS}
    create = settings_event(response_endpoint, "Create", properties)

    answer = answered_once(lambda_service, response_endpoint, create)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "20"
    assert len(lambda_service.invocations) == 3  # 20 repositories, 8 per invocation
    assert lambda_service.errors == []
    assert all(carried(ecr, name)["policy"] == ORGANIZATION_PULLS for name in names)
