"""Custom::CacheWarmUp over HTTP: the handler, in this process and as the package ships (a clean python3.13 with
only the runtime's SDK and its urllib3), logs in with GetAuthorizationToken on moto's server, pulls through the
local ECR endpoint it names, and waits for ECR to report each image; a failure is named per image; a warm-up that
does not fit in one invocation continues through the local Lambda Invoke endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulation.cloudformation import ResponseEndpoint, make_event
from emulation.lambda_emulator import LambdaEmulator
from emulation.registry import EcrRegistryEndpoint, UpstreamRegistry
from tests.conftest import stack_under_test
from tests.integration.conftest import Invoke
from tests.integration.test_cache_lifecycle_policy_backfill import answered_once
from tests.warm_up import docker_hub_cache, nginx_and_redis

pytestmark = pytest.mark.integration

TYPE = "Custom::CacheWarmUp"
LAYERS = (1024, 200_000, 50_000)


def request(endpoint: ResponseEndpoint, request_type: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return make_event(endpoint, request_type, properties, resource_type=TYPE, logical_id="WarmUp", **extra)


@pytest.fixture
def upstream() -> Iterator[UpstreamRegistry]:
    with nginx_and_redis(LAYERS) as registry:
        yield registry


@pytest.fixture
def registry(aws_endpoint: str, upstream: UpstreamRegistry, ecr: Any) -> Iterator[EcrRegistryEndpoint]:
    """The local ECR endpoint beside moto's server, and a Docker Hub cache (with a secret) of the upstream."""
    with docker_hub_cache(ecr, upstream) as endpoint:
        yield endpoint


def cached(ecr: Any, repository: str) -> set[str]:
    return {detail["imageDigest"] for detail in ecr.describe_images(repositoryName=repository)["imageDetails"]}


def test_warms_a_tag_an_index_one_platform_and_a_digest_through_its_tag(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, upstream: UpstreamRegistry,
    ecr: Any,
) -> None:  # fmt: skip
    nginx = upstream.tags["library/nginx"]["1.27"]
    index = upstream.manifests["library/redis"][upstream.tags["library/redis"]["7"]]
    arm = upstream.add_index("library/alpine", "3", ("linux/amd64", "linux/arm64"), (4096,))
    images = ["library/nginx:1.27", "library/redis:7", f"library/nginx:1.27@{nginx}"]
    every = invoke(request(response_endpoint, "Create", {"RepositoryPrefix": "docker-hub", "Images": images}))
    one = invoke(request(response_endpoint, "Create", {"RepositoryPrefix": "docker-hub", "Images": ["library/alpine:3"],
                                                       "Platforms": ["linux/arm64"]}))  # fmt: skip

    assert every["Status"] == "SUCCESS", every.get("Reason")
    assert one["Status"] == "SUCCESS", one.get("Reason")
    assert every["Data"]["WarmedImages"] == "3"
    assert json.loads(every["Data"]["Digests"]) == {images[0]: nginx, images[1]: index.digest, images[2]: nginx}
    assert cached(ecr, "docker-hub/library/redis") == {index.digest, *(child.digest for child in index.children)}
    assert cached(ecr, "docker-hub/library/alpine") == {arm.digest, arm.children[1].digest}
    layers = [blob.digest for blob in arm.children[1].blobs]
    check = ecr.batch_check_layer_availability(repositoryName="docker-hub/library/alpine", layerDigests=layers)
    assert {layer["layerDigest"] for layer in check["layers"] if layer["layerAvailability"] == "AVAILABLE"} == set(
        layers
    )


def test_a_missing_image_a_digest_alone_and_a_refused_login_fail_naming_the_image(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, upstream: UpstreamRegistry,
) -> None:  # fmt: skip
    missing = invoke(request(response_endpoint, "Create", {"RepositoryPrefix": "docker-hub",
                                                           "Images": ["library/nginx:0.1"]}))  # fmt: skip
    digest = f"library/redis@{upstream.tags['library/redis']['7']}"
    alone = invoke(request(response_endpoint, "Create", {"RepositoryPrefix": "docker-hub", "Images": [digest]}))
    upstream.fail_login = True
    refused = invoke(request(response_endpoint, "Create", {"RepositoryPrefix": "docker-hub",
                                                           "Images": ["library/nginx:1.27"]}))  # fmt: skip

    assert (missing["Status"], alone["Status"], refused["Status"]) == ("FAILED", "FAILED", "FAILED")
    assert (
        missing["Reason"]
        == "1 of 1 images could not be warmed: library/nginx:0.1: not found upstream (MANIFEST_UNKNOWN)"
    )
    assert alone["Reason"].startswith(
        f"1 of 1 images could not be warmed: {digest}: ECR's cache fetches no digest alone"
    )
    assert refused["Reason"].startswith(
        "1 of 1 images could not be warmed: library/nginx:1.27: denied: The authentication"
    )


def test_a_warm_up_continues_in_follow_up_invocations_until_ecr_has_imported(
    lambda_service: LambdaEmulator, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, ecr: Any,
) -> None:  # fmt: skip
    registry.hold_imports()
    lambda_service.timeout_seconds = 31.0  # a second past the margin kept for answering
    writes_logs = stack_under_test().lambda_writes_logs

    def on_invocation() -> None:
        writes_logs()
        if len(lambda_service.invocations) >= 3:  # ECR finishes importing during the third invocation
            registry.release_imports()

    lambda_service.on_invocation = on_invocation
    event = request(response_endpoint, "Create", {"RepositoryPrefix": "docker-hub", "Images": ["library/redis:7"]})

    answer = answered_once(lambda_service, response_endpoint, event)

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert len(lambda_service.invocations) >= 3
    stages = [invocation.get("CacheProviderProgress", {}).get("stage") for invocation in lambda_service.invocations]
    assert "wait" in stages  # a follow-up invocation waited for ECR's import
    assert len(cached(ecr, "docker-hub/library/redis")) == 3
