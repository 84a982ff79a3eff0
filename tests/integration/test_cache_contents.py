"""Cache contents over HTTP, in this process and as the package ships: an image expiry sweep leaves the images
Lambda functions, an ECS service and a running ECS task use, and those with a protected tag (with their index
family), and counts them; a rule deleted with DeleteCachedRepositoriesOnDelete takes its cache's repositories
with it (across invocations when they are many), leaving another stack's and CloudFormation's, and keeps them all
on a rollback or without the property."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ecr_cache_provider.aws.ledger import Ledger, Owner, Thing
from ecr_cache_provider.deadline import Deadline
from emulation.cloudformation import ACCOUNT_ID, REGION, STACK_ID, ResponseEndpoint, make_event
from emulation.lambda_emulator import LambdaEmulator
from emulation.moto_ecr import seed_image
from emulation.stacks import set_stack_status
from tests.handler.test_image_expiry_in_use import REGISTRY, ago, ecs_workloads, image_function
from tests.handler.test_pull_through_cache_rule_cleanup import CACHE, CLEANING, OTHER_STACK
from tests.integration.conftest import Invoke, RunEvent
from tests.integration.test_cache_image_expiry import (
    PROPERTIES,
    WORKING_RUNTIMES,
    images,
    logged_sweep,
    published,
    repositories,
    request,
    schedule_input,
    scheduler,
)

pytestmark = pytest.mark.integration
__all__ = ["scheduler"]  # the fixture, used by name


@pytest.fixture(autouse=True)
def docker_hub_cache(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="public.ecr.aws")


@WORKING_RUNTIMES
def test_a_sweep_leaves_images_in_use_and_protected_tags(
    invoke: Invoke, run_event: RunEvent, response_endpoint: ResponseEndpoint, ecr: Any, scheduler: Any,
    aws_endpoint: str,
) -> None:  # fmt: skip
    def old(repository: str, name: str, tags: tuple[str, ...] = (), **extra: Any) -> str:
        return seed_image(ACCOUNT_ID, REGION, f"docker-hub/library/{repository}", pushed_at=ago(300),
                          last_pulled_at=ago(200), tags=tags, name=name, **extra)  # fmt: skip

    kept = {old("python", "function", ("3.12",)), old("nginx", "service", ("1.27",)),
            old("busybox", "task", ("1.36",)), old("alpine", "stable", ("stable",))}  # fmt: skip
    amd64, arm64 = old("redis", "amd64"), old("redis", "arm64")
    kept |= {amd64, arm64, old("redis", "index", ("7",), references=(amd64, arm64))}
    unused = old("nginx", "unused", ("1.25",))
    image_function("api", f"{REGISTRY}/docker-hub/library/python:3.12", aws_endpoint)
    image_function("worker", f"{REGISTRY}/docker-hub/library/redis@{arm64}", aws_endpoint)
    ecs_workloads(f"{REGISTRY}/docker-hub/library/nginx:1.27", f"{REGISTRY}/docker-hub/library/busybox:1.36",
                  aws_endpoint)  # fmt: skip
    properties = PROPERTIES | {"ProtectedTags": ["stable"]}
    created = invoke(request(response_endpoint, "Create", properties=properties))
    assert created["Status"] == "SUCCESS", created["Reason"]

    swept = run_event(schedule_input(scheduler, created["PhysicalResourceId"]))

    assert swept.outcome == "returned", swept.output
    assert images(ecr) == kept, swept.output  # the unused image, the negative control, expired
    assert unused not in images(ecr)
    closing = logged_sweep(swept.output)
    assert (closing["ImagesExpired"], closing["ImagesProtectedInUse"]) == (1, 7)
    assert published(swept.output, "SweepImagesProtectedInUse") == 7


@pytest.fixture
def cached(ecr: Any) -> set[str]:
    """Under ghcr: repositories the cache made, one another stack's resource claims, one a consumer stack's
    AWS::ECR::Repository."""
    for name in ("ghcr/library/nginx", "ghcr/library/redis", "ghcr/team-a/app", "team/app"):
        seed_image(ACCOUNT_ID, REGION, name, pushed_at=ago(1), tags=("1",))
    ecr.create_repository(
        repositoryName="ghcr/team-b/app", tags=[{"Key": "aws:cloudformation:stack-id", "Value": OTHER_STACK}]
    )
    Ledger(Deadline(time.monotonic() + 60)).claim(
        Thing("repository creation template", "ghcr/team-a"), Owner(OTHER_STACK, "TeamSettings", "r-1")
    )
    return repositories(ecr)


@pytest.mark.parametrize(
    ("properties", "status", "deleted"),
    [
        (CLEANING, "DELETE_IN_PROGRESS", {"ghcr/library/nginx", "ghcr/library/redis"}),
        (CACHE, "DELETE_IN_PROGRESS", set()),
        (CLEANING, "ROLLBACK_IN_PROGRESS", set()),
    ],
    ids=["deleted-with-the-stack", "without-the-property", "rolled-back"],
)
def test_a_rule_deleted_takes_exactly_its_cache_with_it(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, cached: set[str],
    properties: dict[str, Any], status: str, deleted: set[str],
) -> None:  # fmt: skip
    created = invoke(make_event(response_endpoint, "Create", properties))
    assert created["Status"] == "SUCCESS", created["Reason"]
    set_stack_status(STACK_ID, status)

    answer = invoke(make_event(response_endpoint, "Delete", properties, physical_id="ghcr"))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert repositories(ecr) == cached - deleted
    if deleted:
        assert answer["Reason"].startswith("Cache ghcr: deleted 2 cached repositories with their images; left 2")


def test_a_long_clean_up_continues_across_invocations(
    lambda_service: LambdaEmulator, response_endpoint: ResponseEndpoint, ecr: Any, small_batches: None
) -> None:
    for number in range(20):
        seed_image(ACCOUNT_ID, REGION, f"ghcr/library/image-{number:02d}", pushed_at=ago(1), tags=("1",))
    create = make_event(response_endpoint, "Create", CLEANING)
    lambda_service.invoke(create, asynchronous=False)
    assert response_endpoint.wait_for(create["RequestId"])["Status"] == "SUCCESS"
    set_stack_status(STACK_ID, "DELETE_IN_PROGRESS")

    delete = make_event(response_endpoint, "Delete", CLEANING, physical_id="ghcr")
    lambda_service.invoke(delete, asynchronous=False)
    lambda_service.wait_idle()
    answer = response_endpoint.wait_for(delete["RequestId"])

    assert lambda_service.errors == []
    assert len(lambda_service.invocations) == 1 + 3  # the Create, then 20 repositories, 8 per invocation
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Reason"] == "Cache ghcr: deleted 20 cached repositories with their images; left none"
    assert not any(name.startswith("ghcr/") for name in repositories(ecr))
