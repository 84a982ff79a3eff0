"""The package `sam build` makes, as Lambda loads it: exactly the pinned libraries, and an answer for every request
even when one of them is missing or the runtime's botocore is too old. (tests/integration plays every request it
can in this same clean interpreter, on the oldest and the newest supported boto3.)"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecr_cache_provider.aws import sdk
from emulation.cloudformation import ResponseEndpoint, make_event
from tests.integration.conftest import built_environment
from tools import lambda_runtime

pytestmark = [pytest.mark.integration, pytest.mark.built]

REQUIREMENTS = Path(__file__).resolve().parents[2] / "src" / "requirements.txt"
QUAY = {"EcrRepositoryPrefix": "quay", "UpstreamRegistryUrl": "quay.io"}
# Each bundled library, by the name it is imported as, and whether the Lambda runtime has its own copy.
BUNDLED = {
    "aws_lambda_powertools": False,
    "fastjsonschema": False,
    "typing_extensions": False,
    "jmespath": True,  # botocore's dependency, so the runtime has it too
}
Play = Callable[..., dict[str, Any]]


def pinned_requirements() -> dict[str, str]:
    pins = {}
    for text in REQUIREMENTS.read_text().splitlines():
        requirement = text.split("#")[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            assert version, f"src/requirements.txt: {requirement!r} is not pinned with =="
            pins[normalised(name)] = version
    return pins


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def bundled_distributions(function_dir: Path) -> dict[str, str]:
    found = {}
    for info in function_dir.glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        found[normalised(name)] = version
    return found


@pytest.fixture
def play(aws_endpoint: str, response_endpoint: ResponseEndpoint) -> Play:
    """Send one Create through a built function folder on a runtime; CloudFormation's one answer to it."""

    def run(function_dir: Path, runtime: str = "newest", request_type: str = "Create", **event: Any) -> dict[str, Any]:
        request = make_event(response_endpoint, request_type, QUAY, **event)
        environment = built_environment(aws_endpoint, response_endpoint)
        invocation = lambda_runtime.invoke(function_dir, request, environment, runtime, timeout_seconds=60)
        assert invocation.outcome == "returned", invocation.output
        return response_endpoint.wait_for(request["RequestId"])

    return run


def test_the_package_bundles_exactly_the_pinned_requirements(built_function: Path) -> None:
    assert bundled_distributions(built_function) == pinned_requirements()


def test_the_package_leaves_the_sdk_to_the_runtime(built_function: Path) -> None:
    assert not (built_function / "boto3").exists()
    assert not (built_function / "botocore").exists()


def test_every_bundled_library_is_known_here(built_function: Path) -> None:
    libraries = {
        path.name.removesuffix(".py")
        for path in built_function.iterdir()
        if not path.name.endswith((".dist-info", ".data", ".txt"))
        # crhelper must load before anything else, so it cannot be missing; bytecode is no library
        and path.name not in ("crhelper", "ecr_cache_provider", "__pycache__")
    }
    assert libraries == set(BUNDLED)


@pytest.mark.parametrize("library", sorted(BUNDLED))
def test_a_create_is_answered_when_a_bundled_library_is_missing(
    library: str, built_function: Path, tmp_path: Path, play: Play, ecr: Any
) -> None:
    broken = tmp_path / "function"
    shutil.copytree(built_function, broken)
    for path in (broken / library, broken / f"{library}.py"):
        if path.is_dir():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)

    answer = play(broken)

    if BUNDLED[library]:  # the runtime's own copy takes its place
        assert answer["Status"] == "SUCCESS", answer["Reason"]
        return
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("The provider failed to load: ModuleNotFoundError")
    assert f"'{library}" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("failed-create:")
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


def test_the_rollback_of_a_create_that_failed_to_load_succeeds(
    built_function: Path, tmp_path: Path, play: Play
) -> None:
    broken = tmp_path / "function"
    shutil.copytree(built_function, broken)
    shutil.rmtree(broken / "aws_lambda_powertools")

    failed = play(broken)
    rollback = play(broken, request_type="Delete", physical_id=failed["PhysicalResourceId"])

    assert failed["Status"] == "FAILED"
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]


def test_a_botocore_older_than_supported_fails_create_naming_the_version(
    built_function: Path, play: Play, ecr: Any
) -> None:
    answer = play(built_function, runtime="unsupported")

    assert answer["Status"] == "FAILED"
    assert "botocore 1.37.10 lacks CreatePullThroughCacheRule.customRoleArn" in answer["Reason"]
    assert f"needs botocore {sdk.MINIMUM_BOTOCORE} or newer" in answer["Reason"]
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


def test_the_oldest_runtime_is_the_minimum_the_provider_declares() -> None:
    oldest = (lambda_runtime.ROOT / "tools" / "lambda_runtime" / "oldest.txt").read_text()
    assert f"botocore=={sdk.MINIMUM_BOTOCORE}\n" in oldest


def test_what_sam_build_writes_holds_no_yaml_alias(built_function: Path) -> None:
    """CloudFormation refuses a template with YAML aliases ("YAML aliases are not allowed in CloudFormation
    templates"; aws-cloudformation/cloudformation-coverage-roadmap#613). template.yaml writes each cache's dashboard
    widgets once, as an anchor; what `sam build` writes for `sam deploy` must hold it resolved."""
    source = (lambda_runtime.ROOT / "template.yaml").read_text()
    built = (built_function.parent / "template.yaml").read_text()

    assert any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(source))  # the anchor is used
    assert not any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(built))
    # written out at each of the six aliases, besides the anchor itself (in the resource's Metadata)
    assert built.count("## ${Cache} cache") == source.count("*CacheWidgets") + 1 == 7
