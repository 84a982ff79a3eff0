"""Unit tests: the real handler in-process against moto (with our ECR extension), answers caught over HTTPS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests import moto_ecr
from tests.moto_ecr import faults
from tests.support.cloudformation import LambdaContext, ResponseEndpoint

Invoke = Callable[..., dict[str, Any]]


@pytest.fixture
def aws() -> Iterator[None]:
    moto_ecr.install()
    faults.reset()
    with mock_aws():
        yield
    faults.reset()


@pytest.fixture
def ecr(aws: None) -> Any:
    return boto3.client("ecr")


@pytest.fixture
def invoke(aws: None, response_endpoint: ResponseEndpoint, fast_retries: None) -> Invoke:
    """Run the Lambda handler on an event and return CloudFormation's one answer to it."""
    from ecr_cache_provider import handler

    def run(event: dict[str, Any], remaining_seconds: float = 300.0) -> dict[str, Any]:
        handler.lambda_handler(event, LambdaContext(remaining_seconds))
        return response_endpoint.wait_for(event["RequestId"])

    return run
