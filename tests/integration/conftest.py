"""Integration tests: the handler reaches ECR over HTTP on moto's threaded server and answers over HTTPS."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from emulation import dynamodb, iam
from emulation.cloudformation import ResponseEndpoint
from emulation.lambda_emulator import LambdaEmulator, start_lambda_emulator
from emulation.moto_ecr import faults
from emulation.ownership import create_ownership_table
from emulation.scheduler import create_schedule_group
from tests.conftest import stack_under_test
from tools import lambda_runtime
from tools.shipped_iam import TestStack

Invoke = Callable[..., dict[str, Any]]

# For tests that throttle: a built package's process waits botocore's real backoff, which `fast_retries` shrinks only
# in this process.
IN_PROCESS_ONLY = pytest.mark.parametrize("invoke", ["in-process"], indirect=True)


@pytest.fixture
def aws_endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, provider_identity: TestStack) -> Iterator[str]:
    """Every boto3 client created in the test (the handler's included) talks to the moto server, the handler's
    as the provider's role."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    faults.reset()
    dynamodb.reset()
    create_ownership_table(moto_endpoint)
    create_schedule_group(moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    yield moto_endpoint
    faults.reset()
    dynamodb.reset()


@pytest.fixture
def ecr(aws_endpoint: str) -> Any:
    return iam.admin_client("ecr", endpoint_url=aws_endpoint)


@pytest.fixture
def secrets(aws_endpoint: str) -> Any:
    return iam.admin_client("secretsmanager", endpoint_url=aws_endpoint)


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
    environment = built_environment(aws_endpoint, response_endpoint)

    def run(event: dict[str, Any], remaining_seconds: float = 300.0) -> dict[str, Any]:
        stack_under_test().lambda_writes_logs()
        invocation = lambda_runtime.invoke(function_dir, event, environment, runtime, timeout_seconds=remaining_seconds)
        assert invocation.outcome == "returned", invocation.output
        assert_ran_as_shipped(invocation)
        return response_endpoint.wait_for(event["RequestId"])

    return run


def assert_ran_as_shipped(invocation: lambda_runtime.Invocation) -> None:
    """Nothing loaded from outside the package and the runtime, and nothing compiled at the cold start: Lambda
    cannot write bytecode to /var/task, so what the package does not ship compiled (src/Makefile) is compiled again
    at every cold start."""
    foreign, uncompiled = invocation.foreign_modules, invocation.modules_without_bytecode
    assert not foreign, f"loaded from outside the package and the runtime: {foreign}"
    assert not uncompiled, f"shipped without bytecode: {uncompiled}"


def built_environment(aws_endpoint: str, response_endpoint: ResponseEndpoint) -> dict[str, str]:
    """The built function's environment: the test stack's variables and its role's credentials."""
    stack = stack_under_test()
    credentials = iam.grant(stack.provider)
    return lambda_runtime.lambda_environment(
        aws_endpoint, response_endpoint.ca_file, stack.function_environment(), credentials
    )


@dataclass(frozen=True)
class Ran:
    """How an invocation that answers no CloudFormation request ended ("returned", or "raised: ..."), and what it
    printed: its JSON log lines and embedded metrics."""

    outcome: str
    output: str


RunEvent = Callable[..., Ran]


@pytest.fixture
def run_event(
    request: pytest.FixtureRequest,
    invoke: Invoke,
    aws_endpoint: str,
    response_endpoint: ResponseEndpoint,
    capsys: pytest.CaptureFixture[str],
) -> RunEvent:
    """Run an event CloudFormation did not send (a schedule's) where the test's `invoke` runs its requests: in
    this process, or in the built package on the oldest or newest runtime."""
    runtime = request.node.callspec.params.get("invoke", "in-process")
    if runtime != "in-process":
        function_dir: Path = request.getfixturevalue("built_function")
        environment = built_environment(aws_endpoint, response_endpoint)

        def run_built(event: dict[str, Any], remaining_seconds: float = 300.0) -> Ran:
            stack_under_test().lambda_writes_logs()
            runtime_name = runtime.removeprefix("built-")
            invocation = lambda_runtime.invoke(
                function_dir, event, environment, runtime_name, timeout_seconds=remaining_seconds
            )
            assert_ran_as_shipped(invocation)
            return Ran(invocation.outcome, invocation.output)

        return run_built

    def run_here(event: dict[str, Any], remaining_seconds: float = 300.0) -> Ran:
        from ecr_cache_provider import handler
        from ecr_cache_provider.observability import logger
        from emulation.cloudformation import LambdaContext

        logged = io.StringIO()
        stream_handler: Any = logger.registered_handler  # made at import, on the stdout of that moment
        # Swapped, not setStream: that flushes the stream it replaces, which may be an earlier test's, now closed.
        previous, stream_handler.stream = stream_handler.stream, logged
        capsys.readouterr()
        try:
            handler.lambda_handler(event, LambdaContext(remaining_seconds))
            outcome = "returned"
        except Exception as error:  # as the runtime reports it
            outcome = f"raised: {type(error).__name__}: {error}"
        finally:
            stream_handler.stream = previous
        return Ran(outcome, logged.getvalue() + capsys.readouterr().out)

    return run_here


@pytest.fixture
def lambda_service(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaEmulator]:
    """The provider deployed behind a local Lambda Invoke endpoint, as CloudFormation (and the provider's own
    follow-up invocations) reach it."""
    from ecr_cache_provider import handler

    emulator = start_lambda_emulator(handler.lambda_handler, on_invocation=stack_under_test().lambda_writes_logs)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", emulator.url)
    yield emulator
    emulator.close()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each invocation does one batch of eight repositories, then hands the rest to the next."""
    from ecr_cache_provider.engine import batches as namespace

    monkeypatch.setattr(namespace, "BATCH_SIZE", 8)
    monkeypatch.setattr(namespace, "HAND_OFF_SECONDS", 1e9)
