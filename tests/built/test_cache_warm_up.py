"""Custom::CacheWarmUp as the package ships: its HTTP client is the Lambda runtime's urllib3 (botocore's own
dependency), not a bundled copy, and a warm-up through the local ECR endpoint works on the oldest and the newest
supported runtime. (tests/integration/test_cache_warm_up.py plays its other requests on the built package too.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emulation.cloudformation import ResponseEndpoint, make_event
from emulation.registry import EcrRegistryEndpoint, UpstreamRegistry
from tests.integration.conftest import built_environment
from tests.integration.test_cache_warm_up import registry, upstream
from tools import lambda_runtime

__all__ = ["registry", "upstream"]  # fixtures

pytestmark = [pytest.mark.integration, pytest.mark.built]


def test_the_package_does_not_bundle_urllib3(built_function: Path) -> None:
    assert not (built_function / "urllib3").exists()
    assert "urllib3" not in (Path(__file__).resolve().parents[2] / "src" / "requirements.txt").read_text()


@pytest.mark.parametrize("runtime", ["oldest", "newest"])
def test_a_warm_up_on_the_runtime_as_shipped(
    runtime: str, built_function: Path, aws_endpoint: str, response_endpoint: ResponseEndpoint,
    registry: EcrRegistryEndpoint, upstream: UpstreamRegistry, ecr: Any,
) -> None:  # fmt: skip
    properties = {"RepositoryPrefix": "docker-hub", "Images": ["library/redis:7"], "Platforms": ["linux/amd64"]}
    request = make_event(response_endpoint, "Create", properties, resource_type="Custom::CacheWarmUp",
                         logical_id="WarmUp")  # fmt: skip
    environment = built_environment(aws_endpoint, response_endpoint)

    invocation = lambda_runtime.invoke(built_function, request, environment, runtime, timeout_seconds=60)

    assert invocation.outcome == "returned", invocation.output
    assert not invocation.modules_without_bytecode, invocation.modules_without_bytecode
    answer = response_endpoint.wait_for(request["RequestId"])
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    index = upstream.manifests["library/redis"][upstream.tags["library/redis"]["7"]]
    assert json.loads(answer["Data"]["Digests"]) == {"library/redis:7": index.digest}
    details = ecr.describe_images(repositoryName="docker-hub/library/redis")["imageDetails"]
    assert {detail["imageDigest"] for detail in details} == {index.digest, index.children[0].digest}
    assert registry.url not in invocation.output  # neither the registry endpoint nor a redirect reaches a log
    assert upstream.url not in invocation.output
