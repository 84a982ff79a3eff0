"""Custom::CacheLifecyclePolicy over HTTP: a backfill that takes several invocations, chained through a local
Lambda Invoke endpoint, answered once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulation import iam
from emulation.cloudformation import ResponseEndpoint, load_event, make_event
from emulation.lambda_emulator import LambdaEmulator
from emulation.moto_ecr import faults
from tests import conftest
from tests.integration.conftest import IN_PROCESS_ONLY
from tests.unit.test_lifecycle_policy import policy

pytestmark = pytest.mark.integration

TYPE = "Custom::CacheLifecyclePolicy"
PROPERTIES = {"RepositoryPrefix": "ecr-public", "LifecyclePolicyText": json.dumps(policy())}


@pytest.fixture
def cached_repositories(ecr: Any) -> list[str]:
    return conftest.cached_repositories(ecr, 30)


def send(lambda_service: LambdaEmulator, event: dict[str, Any]) -> None:
    """Invoke the provider as CloudFormation does: asynchronously, through the Lambda API."""
    client: Any = iam.admin_client("lambda", endpoint_url=lambda_service.url)
    client.invoke(FunctionName="provider", InvocationType="Event", Payload=json.dumps(event).encode())


def answered_once(lambda_service: LambdaEmulator, endpoint: ResponseEndpoint, event: dict[str, Any]) -> dict[str, Any]:
    """Send the request, wait for its answer and for every invocation it led to; it was answered exactly once."""
    send(lambda_service, event)
    answer = endpoint.wait_for(event["RequestId"], timeout=60)
    lambda_service.wait_idle()
    assert endpoint.answers(event["RequestId"]) == [answer]
    return answer


def lifecycle_policies(ecr: Any, names: list[str]) -> list[Any]:
    found = []
    for name in names:
        try:
            found.append(json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]))
        except ecr.exceptions.LifecyclePolicyNotFoundException:
            found.append(None)
    return found


def test_a_backfill_across_invocations_answers_once(
    lambda_service: LambdaEmulator,
    response_endpoint: ResponseEndpoint,
    ecr: Any,
    cached_repositories: list[str],
    small_batches: None,
    fast_retries: None,
) -> None:
    create = make_event(response_endpoint, "Create", PROPERTIES, resource_type=TYPE)

    answer = answered_once(lambda_service, response_endpoint, create)

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "30"
    assert len(lambda_service.invocations) == 4  # 30 repositories, 8 per invocation
    assert lambda_service.errors == []
    assert lifecycle_policies(ecr, cached_repositories) == [policy()] * 30

    delete = make_event(response_endpoint, "Delete", PROPERTIES, resource_type=TYPE, physical_id="ecr-public")
    send(lambda_service, delete)
    assert response_endpoint.wait_for(delete["RequestId"], timeout=60)["Status"] == "SUCCESS"
    lambda_service.wait_idle()
    assert lifecycle_policies(ecr, cached_repositories) == [None] * 30
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []


@IN_PROCESS_ONLY
def test_a_backfill_under_throttling_completes(
    invoke: Any, response_endpoint: ResponseEndpoint, ecr: Any, cached_repositories: list[str]
) -> None:
    faults.throttle("PutLifecyclePolicy", times=10)
    faults.throttle("DescribeRepositories", times=2)

    answer = invoke(make_event(response_endpoint, "Create", PROPERTIES, resource_type=TYPE))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "30"
    assert faults.count("PutLifecyclePolicy") == 40


def test_the_events_in_events_folder_play_in_order(invoke: Any, response_endpoint: ResponseEndpoint, ecr: Any) -> None:
    # The events' namespace: ecr-public/docker, inside the default stack's ECR Public cache.
    cached_repositories = conftest.cached_repositories(ecr, 30, "ecr-public/docker")

    def play(name: str) -> dict[str, Any]:
        answer: dict[str, Any] = invoke(load_event(response_endpoint, name))
        assert answer["Status"] == "SUCCESS", f"{name}: {answer['Reason']}"
        return answer

    created = play("cache-lifecycle-policy-create.json")
    assert created["Data"]["RepositoriesUpdated"] == "30"
    changed = play("cache-lifecycle-policy-change-policy.json")
    assert changed["Data"]["RepositoriesUpdated"] == "30"
    assert lifecycle_policies(ecr, cached_repositories) == [policy(days=7, keep=50)] * 30
    play("cache-lifecycle-policy-delete.json")
    assert lifecycle_policies(ecr, cached_repositories) == [None] * 30
    play("cache-lifecycle-policy-delete-after-failed-create.json")
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []
