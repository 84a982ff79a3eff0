"""Custom::PullThroughCacheRule's DeleteCachedRepositoriesOnDelete through the real handler: the cache's
repositories go with the rule when the stack removes it, except another cache rule's, another stack's and a
CloudFormation stack's; never on a rollback, nor without the property, nor when the rule is replaced in place."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from ecr_cache_provider.aws.ledger import Ledger, Owner, Thing
from ecr_cache_provider.deadline import Deadline
from emulation.cloudformation import ACCOUNT_ID, REGION, STACK_ID, ResponseEndpoint, make_event
from emulation.moto_ecr import seed_image
from emulation.stacks import set_stack_status
from tests.handler.conftest import Invoke

OTHER_STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/team-a/0f0e0d0c-0b0a-4909-8807-060504030201"
CACHE = {"EcrRepositoryPrefix": "ghcr", "UpstreamRegistryUrl": "public.ecr.aws", "Validate": False}
CLEANING = CACHE | {"DeleteCachedRepositoriesOnDelete": True}


def repositories(ecr: Any) -> set[str]:
    return {repository["repositoryName"] for repository in ecr.describe_repositories()["repositories"]}


@pytest.fixture
def cached(ecr: Any) -> set[str]:
    """Under ghcr: two repositories the cache made (with images), one under a namespace another stack's resource
    claims, one a consumer stack's AWS::ECR::Repository (CloudFormation's tags on it), one under a nested rule's
    prefix; and one outside the namespace."""
    now = datetime.now(UTC)
    for name in ("ghcr/library/nginx", "ghcr/library/redis", "ghcr/team-a/app", "ghcr/nested/tool", "team/app"):
        seed_image(ACCOUNT_ID, REGION, name, pushed_at=now, tags=("1",))
    ecr.create_repository(
        repositoryName="ghcr/team-b/app",
        tags=[
            {"Key": "aws:cloudformation:stack-id", "Value": OTHER_STACK},
            {"Key": "aws:cloudformation:logical-id", "Value": "AppRepository"},
        ],
    )
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ghcr/nested", upstreamRegistryUrl="quay.io")
    ledger = Ledger(Deadline(time.monotonic() + 60))
    ledger.claim(Thing("repository creation template", "ghcr/team-a"), Owner(OTHER_STACK, "TeamSettings", "r-1"))
    return repositories(ecr)


def create(invoke: Invoke, endpoint: ResponseEndpoint, properties: dict[str, Any]) -> None:
    answer = invoke(make_event(endpoint, "Create", properties))
    assert answer["Status"] == "SUCCESS", answer["Reason"]


def delete(invoke: Invoke, endpoint: ResponseEndpoint, properties: dict[str, Any], status: str) -> dict[str, Any]:
    set_stack_status(STACK_ID, status)
    answer = invoke(make_event(endpoint, "Delete", properties, physical_id="ghcr"))
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    return answer


@pytest.mark.parametrize("status", ["DELETE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"])
def test_the_cache_takes_its_repositories_with_it_and_leaves_others(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, cached: set[str], status: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    create(invoke, response_endpoint, CLEANING)

    answer = delete(invoke, response_endpoint, CLEANING, status)

    assert repositories(ecr) == cached - {"ghcr/library/nginx", "ghcr/library/redis"}
    assert answer["Reason"] == (
        "Cache ghcr: deleted 2 cached repositories with their images; left 3 (1 another cache rule's, "
        "1 claimed by another stack, 1 managed by a CloudFormation stack)"
    )
    (logged,) = [r for r in caplog.records if r.getMessage() == "Cached repositories deleted with the cache"]
    assert logged.__dict__["deleted"] == 2
    assert "ghcr" not in {
        rule["ecrRepositoryPrefix"] for rule in ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    }


def test_without_the_property_every_repository_stays(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, cached: set[str]
) -> None:
    create(invoke, response_endpoint, CACHE)
    delete(invoke, response_endpoint, CACHE | {"DeleteCachedRepositoriesOnDelete": "false"}, "DELETE_IN_PROGRESS")
    assert repositories(ecr) == cached


@pytest.mark.parametrize("status", ["ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"])
def test_a_rollback_keeps_every_repository(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, cached: set[str], status: str
) -> None:
    create(invoke, response_endpoint, CLEANING)
    answer = delete(invoke, response_endpoint, CLEANING, status)
    assert repositories(ecr) == cached
    assert answer["Reason"] == f"Cached repositories under ghcr kept: the stack is {status}"


def test_the_rollback_of_a_create_cloudformation_cancelled_keeps_every_repository(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, cached: set[str]
) -> None:
    """CloudFormation stopped waiting for the Create and rolls it back with a physical id of its own."""
    create(invoke, response_endpoint, CLEANING)
    set_stack_status(STACK_ID, "DELETE_IN_PROGRESS")  # even so: the id says it undoes a Create
    answer = invoke(make_event(response_endpoint, "Delete", CLEANING, physical_id="CacheRule-1A2B3C4D5E6F"))
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert repositories(ecr) == cached


def test_a_new_upstream_under_the_same_prefix_keeps_every_repository(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, cached: set[str]
) -> None:
    create(invoke, response_endpoint, CLEANING)
    moved = CLEANING | {"UpstreamRegistryUrl": "quay.io"}
    answer = invoke(make_event(response_endpoint, "Update", moved, physical_id="ghcr", old_properties=CLEANING))
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "ghcr"  # no new id: CloudFormation sends no Delete
    assert repositories(ecr) == cached


def test_root_and_unmanaged_prefixes_are_refused(invoke: Invoke, response_endpoint: ResponseEndpoint) -> None:
    root = {"EcrRepositoryPrefix": "ROOT", "UpstreamRegistry": "ecr", "Validate": False,
            "UpstreamRegistryUrl": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com",
            "DeleteCachedRepositoriesOnDelete": "true"}  # fmt: skip
    answer = invoke(make_event(response_endpoint, "Create", root))
    assert answer["Status"] == "FAILED"
    assert "cannot be used with EcrRepositoryPrefix ROOT" in answer["Reason"]
    outside = CLEANING | {"EcrRepositoryPrefix": "elsewhere"}
    answer = invoke(make_event(response_endpoint, "Create", outside))
    assert answer["Status"] == "FAILED"
    assert "outside those this provider manages" in answer["Reason"]


@pytest.mark.denials_expected
def test_a_repository_ecr_refuses_to_delete_is_counted_and_the_delete_succeeds(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, cached: set[str], provider_identity: Any
) -> None:
    from tests.integration.test_shipped_role import grant_without

    create(invoke, response_endpoint, CLEANING)
    grant_without(provider_identity.provider, "RepositoriesOfManagedNamespaces", "ecr:DeleteRepository")

    answer = delete(invoke, response_endpoint, CLEANING, "DELETE_IN_PROGRESS")

    assert repositories(ecr) == cached
    assert answer["Reason"].endswith("; left 5 (1 another cache rule's, 1 claimed by another stack, "
                                     "1 managed by a CloudFormation stack, 2 could not be deleted)")  # fmt: skip
