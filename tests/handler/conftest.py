"""Handler tests: the real handler in-process against moto (with our ECR extension), answers caught over HTTPS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from emulation import iam

Invoke = Callable[..., dict[str, Any]]


@pytest.fixture(autouse=True)
def as_the_provider(aws: None, provider_identity: Any) -> None:
    """Every handler call of this tier runs as the provider's role, as template.yaml ships it."""


@pytest.fixture
def ecr(aws: None) -> Any:
    return iam.admin_client("ecr")


@pytest.fixture
def invoke(aws: None, invoke: Invoke) -> Invoke:
    """The shared `invoke`, with moto in-process."""
    return invoke
