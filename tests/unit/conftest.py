"""Unit tests: the real handler in-process against moto (with our ECR extension), answers caught over HTTPS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests import moto_ecr
from tests.moto_ecr import faults

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
def invoke(aws: None, invoke: Invoke) -> Invoke:
    """The shared `invoke`, with moto in-process."""
    return invoke
