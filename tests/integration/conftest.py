"""Integration tests: the handler reaches ECR over HTTP on moto's threaded server and answers over HTTPS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from emulation.cloudformation import ResponseEndpoint
from emulation.lambda_emulator import LambdaEmulator, start_lambda_emulator
from emulation.moto_ecr import faults
from emulation.ownership import TABLE_NAME, create_ownership_table
from tools import lambda_runtime

Invoke = Callable[..., dict[str, Any]]

# For tests that throttle: a built package's process waits botocore's real backoff, which `fast_retries` shrinks only
# in this process.
IN_PROCESS_ONLY = pytest.mark.parametrize("invoke", ["in-process"], indirect=True)


@pytest.fixture
def aws_endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every boto3 client created in the test (the handler's included) talks to the moto server."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    faults.reset()
    create_ownership_table(moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    yield moto_endpoint
    faults.reset()


@pytest.fixture
def ecr(aws_endpoint: str) -> Any:
    return boto3.client("ecr", endpoint_url=aws_endpoint)


@pytest.fixture
def secrets(aws_endpoint: str) -> Any:
    return boto3.client("secretsmanager", endpoint_url=aws_endpoint)


@pytest.fixture(
    params=[
        "in-process",
        pytest.param("built-oldest", marks=pytest.mark.built),
        pytest.param("built-newest", marks=pytest.mark.built),
    ]
)
def invoke(
    request: pytest.FixtureRequest, aws_endpoint: str, invoke: Invoke, response_endpoint: ResponseEndpoint
) -> Invoke:
    """The handler run on each request, with every client on the moto server: in this process (from src/), and as
    it ships (the sam-built package in a clean python3.13 with only the oldest or the newest supported boto3)."""
    if request.param == "in-process":
        return invoke
    function_dir: Path = request.getfixturevalue("built_function")
    runtime = request.param.removeprefix("built-")
    environment = lambda_runtime.lambda_environment(aws_endpoint, response_endpoint.ca_file, TABLE_NAME)

    def run(event: dict[str, Any], remaining_seconds: float = 300.0) -> dict[str, Any]:
        invocation = lambda_runtime.invoke(function_dir, event, environment, runtime, timeout_seconds=remaining_seconds)
        assert invocation.outcome == "returned", invocation.output
        foreign, uncompiled = invocation.foreign_modules, invocation.modules_without_bytecode
        assert not foreign, f"loaded from outside the package and the runtime: {foreign}"
        # Lambda cannot write bytecode to /var/task: what the package does not ship compiled (src/Makefile) is
        # compiled again at every cold start.
        assert not uncompiled, f"shipped without bytecode: {uncompiled}"
        return response_endpoint.wait_for(event["RequestId"])

    return run


@pytest.fixture
def lambda_service(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaEmulator]:
    """The provider deployed behind a local Lambda Invoke endpoint, as CloudFormation (and the provider's own
    follow-up invocations) reach it."""
    from ecr_cache_provider import handler

    emulator = start_lambda_emulator(handler.lambda_handler)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", emulator.url)
    yield emulator
    emulator.close()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each invocation does one batch of eight repositories, then hands the rest to the next."""
    from ecr_cache_provider import namespace

    monkeypatch.setattr(namespace, "BATCH_SIZE", 8)
    monkeypatch.setattr(namespace, "HAND_OFF_SECONDS", 1e9)
