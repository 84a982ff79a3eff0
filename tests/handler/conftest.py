"""Handler tests: the real handler in-process against moto (with our ECR extension), answers caught over HTTPS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

Invoke = Callable[..., dict[str, Any]]


@pytest.fixture
def ecr(aws: None) -> Any:
    return boto3.client("ecr")


@pytest.fixture
def invoke(aws: None, invoke: Invoke) -> Invoke:
    """The shared `invoke`, with moto in-process."""
    return invoke
