"""The provider refuses, with a Reason naming the version it needs, to run a Create or Update on a botocore whose
ECR model lacks what it calls; Deletes still run."""

from __future__ import annotations

from typing import Any

import pytest

from ecr_cache_provider.aws import sdk
from emulation import iam
from emulation.cloudformation import ResponseEndpoint, make_event
from tests.handler.conftest import Invoke

QUAY = {"EcrRepositoryPrefix": "quay", "UpstreamRegistryUrl": "quay.io"}


class ModelWithout:
    """The installed ECR model less one operation or one parameter, as an older botocore's would be."""

    def __init__(self, left_out: str) -> None:
        self.model = iam.admin_client("ecr").meta.service_model
        self.left_out = left_out

    @property
    def operation_names(self) -> list[str]:
        return [name for name in self.model.operation_names if name != self.left_out]

    def operation_model(self, name: str) -> Any:
        shape: Any = self.model.operation_model(name).input_shape
        members = {k: v for k, v in shape.members.items() if f"{name}.{k}" != self.left_out}
        return type("Operation", (), {"input_shape": type("Shape", (), {"members": members})})


@pytest.fixture(autouse=True)
def fresh_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdk, "_checked", None)


def test_the_installed_botocore_has_everything_the_provider_calls() -> None:
    assert sdk.missing_from(iam.admin_client("ecr").meta.service_model) == []


@pytest.mark.parametrize("left_out", ["CreateRepositoryCreationTemplate", "CreatePullThroughCacheRule.customRoleArn"])
def test_a_missing_operation_or_parameter_is_named(left_out: str) -> None:
    assert sdk.missing_from(ModelWithout(left_out)) == [left_out]


def test_an_old_botocore_fails_create_with_the_version_needed(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sdk, "missing_from", lambda model: ["CreatePullThroughCacheRule.customRoleArn"])

    answer = invoke(make_event(response_endpoint, "Create", QUAY))

    assert answer["Status"] == "FAILED"
    assert "lacks CreatePullThroughCacheRule.customRoleArn" in answer["Reason"]
    assert f"needs botocore {sdk.MINIMUM_BOTOCORE} or newer" in answer["Reason"]
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


def test_an_old_botocore_still_deletes(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke(make_event(response_endpoint, "Create", QUAY))["Status"] == "SUCCESS"
    monkeypatch.setattr(sdk, "missing_from", lambda model: ["CreatePullThroughCacheRule.customRoleArn"])
    monkeypatch.setattr(sdk, "_checked", None)

    answer = invoke(make_event(response_endpoint, "Delete", QUAY, physical_id="quay"))

    assert answer["Status"] == "SUCCESS"
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []
