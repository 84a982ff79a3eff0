"""Shared fixtures: fake AWS credentials, moto with our ECR extension, and CloudFormation's response endpoint."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from emulation import iam
from emulation.cloudformation import REGION, ResponseEndpoint, start_response_endpoint
from emulation.moto_server import FAKE_AWS_ENVIRONMENT
from emulation.ownership import TABLE_NAME
from emulation.scheduler import SCHEDULE_GROUP, SCHEDULER_ROLE_ARN
from tests import tier_progress
from tools.shipped_iam import TestStack

# Before anything creates a boto3 client: no real credentials, no real endpoints.
for name, value in {
    **FAKE_AWS_ENVIRONMENT,
    "OWNERSHIP_TABLE": TABLE_NAME,
    "SCHEDULE_GROUP": SCHEDULE_GROUP,
    "SCHEDULER_ROLE_ARN": SCHEDULER_ROLE_ARN,
    "POWERTOOLS_SERVICE_NAME": "ecr-pull-through-cache",
    "POWERTOOLS_METRICS_NAMESPACE": "EcrPullThroughCache",
}.items():
    os.environ[name] = value
for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR"):
    os.environ.pop(name, None)


def pytest_configure(config: pytest.Config) -> None:
    tier_progress.register(config)  # a line per tier and a summary, rather than a dot per test


# The namespaces tests/handler, tests/integration and tests/built manage besides the caches the template makes by
# default (ecr-public, quay, k8s): their test stack's ConsumerRepositoryPrefixes.
TEST_STACK_NAMESPACES = "docker-hub,ghcr,mirror,team,team-a,team__cache,hub"


@cache
def stack_under_test(*consumer_repository_prefixes: str) -> TestStack:
    """template.yaml as the test stack (its role's policies, its function's environment), resolved once a process:
    with TEST_STACK_NAMESPACES as its ConsumerRepositoryPrefixes, or the ones given."""
    return TestStack(",".join(consumer_repository_prefixes) or TEST_STACK_NAMESPACES)


@pytest.fixture
def provider_identity(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestStack]:
    """The handler, wherever this process runs it, calls AWS with the credentials Lambda gives the function (its
    role, as template.yaml ships it, evaluated by emulation/iam) and the template's environment. Everything the test
    itself calls goes through clients made with iam.ADMIN. A test marked `consumer_namespaces(...)` runs against a
    test stack with those ConsumerRepositoryPrefixes instead."""
    import boto3

    marker = request.node.get_closest_marker("consumer_namespaces")
    stack = stack_under_test(*marker.args) if marker else stack_under_test()
    iam.install()
    credentials = iam.grant(stack.provider)
    iam.grant(stack.scheduler)
    iam.grant(stack.health_check_scheduler)
    for name, value in {**credentials, **stack.function_environment()}.items():
        monkeypatch.setenv(name, value)
    boto3.DEFAULT_SESSION = None  # it caches the credentials it read first
    yield stack
    boto3.DEFAULT_SESSION = None


@pytest.fixture(autouse=True)
def iam_enforced(request: pytest.FixtureRequest) -> Iterator[None]:
    """A call IAM denies fails the test that made it, naming the action and the resource, even when the code under
    test handled the denial (it answered FAILED, or logged and went on). `denials_expected` tests inspect them."""
    iam.clear()
    yield
    if request.node.get_closest_marker("denials_expected") is None:
        denied = iam.denials()
        assert not denied, "IAM denied what template.yaml does not allow:\n" + "\n".join(map(str, denied))


@pytest.fixture
def invoke(response_endpoint: ResponseEndpoint, fast_retries: None) -> Callable[..., dict[str, Any]]:
    """Run the Lambda handler on an event and return CloudFormation's one answer to it. The AWS it reaches is
    the test's: moto in-process (tests/handler) or moto's server (tests/integration)."""
    from ecr_cache_provider import handler
    from emulation.cloudformation import LambdaContext

    def run(event: dict[str, Any], remaining_seconds: float = 300.0) -> dict[str, Any]:
        stack_under_test().lambda_writes_logs()
        handler.lambda_handler(event, LambdaContext(remaining_seconds))
        return response_endpoint.wait_for(event["RequestId"])

    return run


@pytest.fixture(scope="session")
def built_function(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The provider as it ships: `sam build` output, once per test process."""
    from tools import lambda_runtime

    return lambda_runtime.sam_build(tmp_path_factory.mktemp("sam") / "build")


@pytest.fixture(scope="session")
def response_endpoint() -> Iterator[ResponseEndpoint]:
    endpoint = start_response_endpoint()
    os.environ["SSL_CERT_FILE"] = endpoint.ca_file  # crhelper's HTTPS PUT trusts our local CA
    yield endpoint
    endpoint.close()


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process, with our ECR extension, the provider's ownership table, and no faults armed."""
    from moto import mock_aws

    from emulation import dynamodb, moto_ecr, workloads
    from emulation.moto_ecr import faults
    from emulation.ownership import create_ownership_table
    from emulation.scheduler import create_schedule_group

    moto_ecr.install()
    dynamodb.install()
    workloads.install()
    iam.install()
    faults.reset()
    dynamodb.reset()
    with mock_aws():
        create_ownership_table()
        create_schedule_group()
        yield
    faults.reset()
    dynamodb.reset()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's threaded server with our ECR extension, shared by the tests that reach AWS over HTTP."""
    from emulation.moto_server import start_moto_server

    server, url = start_moto_server()
    yield url
    server.stop()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the backoff between retries, ours and botocore's, so retry tests take milliseconds.
    Which calls are retried, and how often, stays as it is."""
    from botocore.retries.bucket import TokenBucket
    from botocore.retries.standard import ExponentialBackoff

    from ecr_cache_provider.aws import ecr

    monkeypatch.setattr(ecr, "SECRET_RETRY_BASE_SECONDS", 0.01)
    monkeypatch.setattr(ecr, "SECRET_RETRY_MAX_SECONDS", 0.02)
    monkeypatch.setattr(ecr, "THROTTLE_BACKOFF_BASE_SECONDS", 0.001)
    monkeypatch.setattr(ecr, "THROTTLE_BACKOFF_MAX_SECONDS", 0.02)
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.01)
    monkeypatch.setattr(TokenBucket, "acquire", lambda self, amount=1, block=True: True)  # adaptive mode's pacing


def secret_value(username: str = "cache-user", token: str = "s3cr3t-t0ken-value") -> str:
    return json.dumps({"username": username, "accessToken": token})


def create_secret(name: str, value: str | None = None, region: str = REGION) -> str:

    client: Any = iam.admin_client("secretsmanager", region_name=region)
    return str(client.create_secret(Name=name, SecretString=value or secret_value())["ARN"])


def cached_repositories(ecr: Any, count: int, prefix: str = "ecr-public") -> list[str]:
    """A cache rule for `prefix` and `count` repositories ECR cached under it, named in order."""
    from emulation import moto_ecr
    from emulation.cloudformation import ACCOUNT_ID

    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl="public.ecr.aws")
    names = [f"{prefix}/library/image-{index:0{len(str(count))}d}" for index in range(count)]
    for name in names:
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, ecr.meta.region_name, name)
    return names


def began(event: dict[str, Any]) -> dict[str, Any]:
    """Record the request as its resource's current one, as its first invocation does, for a test that starts with
    a follow-up invocation (a continuation checks that its request is still the current one)."""
    import time
    from datetime import UTC, datetime

    from ecr_cache_provider.aws.ledger import Ledger
    from ecr_cache_provider.contract import Request
    from ecr_cache_provider.deadline import Deadline

    request = Request.from_event(event)
    issued = request.issued_at or datetime.now(UTC)
    Ledger(Deadline(time.monotonic() + 60)).begin(request.owner, request.request_type, issued)
    return event
