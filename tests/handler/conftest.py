"""Handler tests: the real handler in-process against moto (with our ECR extension), answers caught over HTTPS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from emulation import iam
from emulation.cloudformation import LambdaContext, ResponseEndpoint

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


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Hand-offs recorded, in order, instead of invoking Lambda: the test plays the follow-ups."""
    from ecr_cache_provider import continuation

    recorded: list[dict[str, Any]] = []
    monkeypatch.setattr(
        continuation,
        "hand_off",
        lambda event, arn, progress: recorded.append(continuation.follow_up_event(event, progress)),
    )
    return recorded


def batches_of(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each invocation works through one batch of `size` repositories, then hands the rest on."""
    from ecr_cache_provider.engine import batches

    monkeypatch.setattr(batches, "BATCH_SIZE", size)
    monkeypatch.setattr(batches, "HAND_OFF_SECONDS", 1e9)


def play_until_answered(
    first: dict[str, Any], handed: list[dict[str, Any]], response_endpoint: ResponseEndpoint
) -> tuple[dict[str, Any], int]:
    """Invoke the request, then every follow-up it hands on, until it answered: the answer, and the invocations."""
    from ecr_cache_provider import handler

    invocations = 0
    pending = [first]
    while pending:
        handler.lambda_handler(pending.pop(), LambdaContext())
        invocations += 1
        pending += handed
        handed.clear()
        if pending:
            assert response_endpoint.answers(first["RequestId"]) == []  # no answer until the work is done
    return response_endpoint.wait_for(first["RequestId"]), invocations
