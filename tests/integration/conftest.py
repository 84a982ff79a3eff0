"""Integration tests: the handler reaches ECR over HTTP on moto's threaded server and answers over HTTPS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests

from emulation.lambda_emulator import LambdaEmulator, start_lambda_emulator
from emulation.moto_ecr import faults

Invoke = Callable[..., dict[str, Any]]


@pytest.fixture
def aws_endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every boto3 client created in the test (the handler's included) talks to the moto server."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    faults.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    yield moto_endpoint
    faults.reset()


@pytest.fixture
def ecr(aws_endpoint: str) -> Any:
    return boto3.client("ecr", endpoint_url=aws_endpoint)


@pytest.fixture
def secrets(aws_endpoint: str) -> Any:
    return boto3.client("secretsmanager", endpoint_url=aws_endpoint)


@pytest.fixture
def invoke(aws_endpoint: str, invoke: Invoke) -> Invoke:
    """The shared `invoke`, with every client on the moto server."""
    return invoke


@pytest.fixture
def lambda_service(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaEmulator]:
    """The provider deployed behind a local Lambda Invoke endpoint, as CloudFormation (and the provider's own
    follow-up invocations) reach it."""
    from ecr_cache_provider import handler

    emulator = start_lambda_emulator(handler.lambda_handler)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", emulator.url)
    yield emulator
    emulator.close()
