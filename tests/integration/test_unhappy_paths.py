"""CloudFormation's unhappy paths over HTTP, with the events it really sends, the provider's continuations chained
through a local Lambda Invoke endpoint, and the newer request run as the package ships (in its own process, beside
the work it overtakes) as well as in this process:
- a sibling fails while a long Create runs: CloudFormation cancels the Create ("Resource creation cancelled") and
  rolls back with a Delete whose physical id it made up, since the Create never answered;
- a ServiceTimeout passes: the same Delete, while the Create's continuations are still running;
- an Update that renames the resource is cancelled: CloudFormation rolls back with an Update to the old properties
  (the rename's as the old ones) to the old physical id, and never deletes the new one;
- an adopting Create is rolled back: the Delete comes while the stack is UPDATE_ROLLBACK_IN_PROGRESS.
(CloudFormation user guide: crpg-ref-requesttypes-delete, crpg-ref-requesttypes-update, and the ServiceTimeout of
AWS::CloudFormation::CustomResource; cloudformation-coverage-roadmap issue 1814 for the made-up physical id.)"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulation import iam
from emulation.cloudformation import STACK_ID, ResponseEndpoint, generated_physical_id, make_event
from emulation.lambda_emulator import LambdaEmulator
from emulation.ownership import TABLE_NAME
from emulation.stacks import set_stack_status
from tests import conftest
from tests.integration.conftest import Invoke
from tests.unit.test_lifecycle_policy import policy

pytestmark = pytest.mark.integration

SETTINGS = "Custom::CachedRepositorySettings"
POLICY = json.dumps(policy())


def settings(prefix: str = "ecr-public", **extra: Any) -> dict[str, Any]:
    return {"RepositoryPrefix": prefix, "LifecyclePolicyText": POLICY, **extra}


def send(lambda_service: LambdaEmulator, event: dict[str, Any]) -> None:
    """Invoke the provider as CloudFormation does: asynchronously, through the Lambda API."""
    client: Any = iam.admin_client("lambda", endpoint_url=lambda_service.url)
    client.invoke(FunctionName="provider", InvocationType="Event", Payload=json.dumps(event).encode())


def until(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def left(ecr: Any) -> dict[str, Any]:
    """What the provider leaves: templates, lifecycle policies, schedules' and rules' claims, repository records."""
    policies = []
    for repository in ecr.describe_repositories()["repositories"]:
        try:
            ecr.get_lifecycle_policy(repositoryName=repository["repositoryName"])
            policies.append(repository["repositoryName"])
        except ecr.exceptions.LifecyclePolicyNotFoundException:
            pass
    items = iam.admin_client("dynamodb").scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    return {
        "templates": [t["prefix"] for t in ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]],
        "lifecycle policies": policies,
        "ledger": sorted(item["Id"]["S"] for item in items if not item["Id"]["S"].startswith("resource/")),
    }


NOTHING: dict[str, Any] = {"templates": [], "lifecycle policies": [], "ledger": []}


@pytest.fixture
def t0() -> datetime:
    """When the test's first request is issued: taken per test, so that a slow suite never passes its ServiceTimeout."""
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def two_caches(ecr: Any) -> list[str]:
    conftest.cached_repositories(ecr, 24, prefix="quay")
    return conftest.cached_repositories(ecr, 30)


def overtake(
    invoke: Invoke, lambda_service: LambdaEmulator, endpoint: ResponseEndpoint, event: dict[str, Any], runtime: str
) -> dict[str, Any]:
    """Run the newer request: in its own process as the package ships, or in this process through the Lambda
    endpoint (one execution environment, so after the invocation under way)."""
    if runtime != "in-process":
        return invoke(event)
    send(lambda_service, event)
    return endpoint.wait_for(event["RequestId"], timeout=60)


@pytest.mark.parametrize("invoke", ["in-process", pytest.param("built-newest", marks=pytest.mark.built)], indirect=True)
def test_a_sibling_fails_while_a_long_create_runs(
    invoke: Invoke,
    request: pytest.FixtureRequest,
    lambda_service: LambdaEmulator,
    response_endpoint: ResponseEndpoint,
    ecr: Any,
    two_caches: list[str],
    small_batches: None,
    fast_retries: None,
    t0: datetime,
) -> None:
    """The Create's backfill continues from invocation to invocation when a sibling fails: CloudFormation cancels it
    and sends the rollback's Delete with a physical id of its own. The Delete removes what the Create made so far;
    the Create's next step finds the Delete took over and stops, changing nothing more."""
    create = make_event(response_endpoint, "Create", settings(), resource_type=SETTINGS, issued=t0)
    send(lambda_service, create)
    until(lambda: len(lambda_service.invocations) >= 2)  # the Create handed its work on: still running

    delete = make_event(
        response_endpoint,
        "Delete",
        settings(),
        resource_type=SETTINGS,
        physical_id=generated_physical_id(STACK_ID, "CacheRule"),
        issued=t0 + timedelta(seconds=2),
    )
    answer = overtake(invoke, lambda_service, response_endpoint, delete, request.node.callspec.params["invoke"])
    lambda_service.wait_idle()

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert left(ecr) == NOTHING
    assert lambda_service.errors == []
    # The Create answered at most once (SUCCESS if it finished first, FAILED if it found the Delete had taken over):
    # CloudFormation no longer reads that answer.
    assert len(response_endpoint.answers(create["RequestId"])) <= 1


def test_a_service_timeout_passes_while_a_create_runs(
    lambda_service: LambdaEmulator,
    response_endpoint: ResponseEndpoint,
    ecr: Any,
    two_caches: list[str],
    small_batches: None,
    fast_retries: None,
) -> None:
    """CloudFormation waited its ServiceTimeout: it marks the Create failed and rolls back with a Delete of a
    physical id of its own. The Create's next step sees CloudFormation stopped waiting and changes nothing more;
    the Delete removes what it made."""
    create = make_event(response_endpoint, "Create", settings(ServiceTimeout="5"), resource_type=SETTINGS)
    deadline = datetime.now(UTC) + timedelta(seconds=5)  # at the latest (the request's time is in whole seconds)
    invocation = lambda_service.on_invocation

    def slow_follow_up() -> None:  # its first follow-up waits, as behind a slow ECR, until CloudFormation gives up
        invocation()
        if len(lambda_service.invocations) >= 2:
            until(lambda: datetime.now(UTC) > deadline)

    lambda_service.on_invocation = slow_follow_up
    send(lambda_service, create)
    stopped = response_endpoint.wait_for(create["RequestId"], timeout=60)  # its next step stops, answering FAILED
    made = left(ecr)

    delete = make_event(
        response_endpoint,
        "Delete",
        settings(ServiceTimeout="5"),
        resource_type=SETTINGS,
        physical_id=generated_physical_id(STACK_ID, "CacheRule"),
    )
    send(lambda_service, delete)
    answer = response_endpoint.wait_for(delete["RequestId"], timeout=60)
    lambda_service.wait_idle()

    assert stopped["Status"] == "FAILED"
    assert "ServiceTimeout passed" in stopped["Reason"]
    assert len(made["lifecycle policies"]) == 8  # its first batch, and no more
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert left(ecr) == NOTHING


@pytest.mark.parametrize("invoke", ["in-process", pytest.param("built-newest", marks=pytest.mark.built)], indirect=True)
def test_an_update_rolled_back_after_a_rename(
    invoke: Invoke,
    request: pytest.FixtureRequest,
    lambda_service: LambdaEmulator,
    response_endpoint: ResponseEndpoint,
    ecr: Any,
    two_caches: list[str],
    small_batches: None,
    fast_retries: None,
    t0: datetime,
) -> None:
    """The rename to quay is cancelled while its backfill runs; the rollback's Update (to ecr-public, its old
    properties the rename's) removes the quay template and puts back the quay repositories, and the rename's next
    step stops."""
    create = make_event(response_endpoint, "Create", settings(), resource_type=SETTINGS, issued=t0)
    send(lambda_service, create)
    assert response_endpoint.wait_for(create["RequestId"], timeout=60)["Status"] == "SUCCESS"
    lambda_service.wait_idle()
    before = left(ecr)
    invocations = len(lambda_service.invocations)

    rename = make_event(
        response_endpoint,
        "Update",
        settings("quay"),
        resource_type=SETTINGS,
        physical_id="ecr-public",
        old_properties=settings(),
        issued=t0 + timedelta(seconds=5),
    )
    send(lambda_service, rename)
    until(lambda: len(lambda_service.invocations) >= invocations + 2)
    rollback = make_event(
        response_endpoint,
        "Update",
        settings(),
        resource_type=SETTINGS,
        physical_id="ecr-public",
        old_properties=settings("quay"),
        issued=t0 + timedelta(seconds=9),
    )
    answer = overtake(invoke, lambda_service, response_endpoint, rollback, request.node.callspec.params["invoke"])
    until(lambda: bool(response_endpoint.answers(rollback["RequestId"])))
    lambda_service.wait_idle()

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "ecr-public"
    assert left(ecr) == before  # ecr-public as it was; nothing left under quay
    assert not any(name.startswith("quay/") for name in left(ecr)["lifecycle policies"])


@pytest.mark.parametrize("invoke", ["in-process", pytest.param("built-newest", marks=pytest.mark.built)], indirect=True)
def test_an_adopting_create_rolled_back_leaves_the_rule(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, t0: datetime
) -> None:
    """Step 2 of the move from AWS::ECR::PullThroughCacheRule: the retained native rule is adopted, then another
    resource fails. The rollback's Delete (the stack UPDATE_ROLLBACK_IN_PROGRESS, as DescribeStacks says) hands the
    rule back: pulls through its prefix go on."""
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    adopting = {"EcrRepositoryPrefix": "quay", "UpstreamRegistryUrl": "quay.io", "AdoptExisting": "true"}
    rule_type = "Custom::PullThroughCacheRule"
    set_stack_status(STACK_ID, "UPDATE_IN_PROGRESS")
    adopted = invoke(make_event(response_endpoint, "Create", adopting, resource_type=rule_type, issued=t0))
    set_stack_status(STACK_ID, "UPDATE_ROLLBACK_IN_PROGRESS")

    rollback = invoke(
        make_event(
            response_endpoint,
            "Delete",
            adopting,
            resource_type=rule_type,
            physical_id="quay",
            issued=t0 + timedelta(seconds=3),
        )
    )

    assert adopted["Status"] == rollback["Status"] == "SUCCESS", (adopted, rollback)
    assert [
        rule["ecrRepositoryPrefix"] for rule in ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    ] == ["quay"]
    assert left(ecr)["ledger"] == []
