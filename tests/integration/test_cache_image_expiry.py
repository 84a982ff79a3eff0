"""Custom::CacheImageExpiry over HTTP: Create, the scheduled sweep, Update and Delete, in this process and as the
package ships (the oldest supported runtime refuses it with a Reason naming the botocore it needs); a sweep under
throttling, and a sweep that continues across invocations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from emulation import iam
from emulation.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint, make_event
from emulation.lambda_emulator import LambdaEmulator, published_metrics
from emulation.moto_ecr import faults, seed_image
from emulation.scheduler import SCHEDULE_GROUP, SCHEDULER_ROLE_ARN
from tests.conftest import stack_under_test
from tests.integration.conftest import IN_PROCESS_ONLY, Invoke, RunEvent

pytestmark = pytest.mark.integration

TYPE = "Custom::CacheImageExpiry"
PROPERTIES = {"RepositoryPrefix": "docker-hub", "ExpireAfterDaysWithoutPull": 30, "DeleteEmptyRepositories": True}
NOW = datetime.now(UTC)
WORKING_RUNTIMES = pytest.mark.parametrize(
    "invoke", ["in-process", pytest.param("built-newest", marks=pytest.mark.built)], indirect=True
)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def request(endpoint: ResponseEndpoint, request_type: str, **extra: Any) -> dict[str, Any]:
    properties = extra.pop("properties", PROPERTIES)
    return make_event(endpoint, request_type, properties, resource_type=TYPE, logical_id="ImageExpiry", **extra)


@pytest.fixture
def scheduler(aws_endpoint: str) -> Any:
    return iam.admin_client("scheduler", endpoint_url=aws_endpoint)


@pytest.fixture(autouse=True)
def docker_hub_cache(ecr: Any) -> None:
    """The pull-through cache rule whose namespace the tests sweep (image expiry sweeps only a cache's)."""
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="public.ecr.aws")


@pytest.fixture
def cache(ecr: Any) -> dict[str, str]:
    """docker-hub: an image unpulled for 90 days alone in its repository, one pulled 3 days ago next to one unpulled
    for 60 days, an old index whose arm64 manifest was pulled lately; and an old image outside the namespace."""
    digests = {
        "alone": seed_image(
            ACCOUNT_ID, REGION, "docker-hub/library/busybox", pushed_at=ago(200), last_pulled_at=ago(90)
        ),
        "recent": seed_image(
            ACCOUNT_ID, REGION, "docker-hub/library/nginx", pushed_at=ago(200), last_pulled_at=ago(3), name="1"
        ),
        "stale": seed_image(
            ACCOUNT_ID, REGION, "docker-hub/library/nginx", pushed_at=ago(200), last_pulled_at=ago(60), name="2"
        ),
        "outside": seed_image(ACCOUNT_ID, REGION, "team/app", pushed_at=ago(400)),
    }
    amd64 = seed_image(ACCOUNT_ID, REGION, "docker-hub/library/redis", pushed_at=ago(100), name="amd64")
    arm64 = seed_image(
        ACCOUNT_ID, REGION, "docker-hub/library/redis", pushed_at=ago(100), last_pulled_at=ago(4), name="arm64"
    )
    index = seed_image(ACCOUNT_ID, REGION, "docker-hub/library/redis", pushed_at=ago(100), references=(amd64, arm64))
    return digests | {"amd64": amd64, "arm64": arm64, "index": index}


def images(ecr: Any) -> set[str]:
    return {
        detail["imageDigest"]
        for repository in ecr.describe_repositories()["repositories"]
        for detail in ecr.describe_images(repositoryName=repository["repositoryName"], filter={"imageStatus": "ANY"})[
            "imageDetails"
        ]
    }


def repositories(ecr: Any) -> set[str]:
    return {repository["repositoryName"] for repository in ecr.describe_repositories()["repositories"]}


def schedule_input(scheduler: Any, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(scheduler.get_schedule(Name=name, GroupName=SCHEDULE_GROUP)["Target"]["Input"])
    return found


def logged_sweep(output: str, message: str = "Image expiry sweep finished") -> dict[str, Any]:
    """The sweep's one closing log line."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' not in line]
    (closing,) = [line for line in lines if line.get("message") == message]
    return dict(closing)


def published(output: str, metric: str) -> float:
    return published_metrics(output).get(metric, 0)


@WORKING_RUNTIMES
def test_create_sweep_update_delete(
    invoke: Invoke, run_event: RunEvent, response_endpoint: ResponseEndpoint, ecr: Any, scheduler: Any,
    cache: dict[str, str],
) -> None:  # fmt: skip
    created = invoke(request(response_endpoint, "Create"))
    assert created["Status"] == "SUCCESS", created["Reason"]
    name = created["PhysicalResourceId"]
    assert created["Data"]["ScheduleName"] == name
    assert images(ecr) == set(cache.values())  # the deploy-time preview deletes nothing

    swept = run_event(schedule_input(scheduler, name))

    assert swept.outcome == "returned", swept.output
    expired = {cache["alone"], cache["stale"]}
    assert images(ecr) == set(cache.values()) - expired  # the index stays with its lately pulled arm64 manifest
    assert "docker-hub/library/busybox" not in repositories(ecr)  # left empty, so deleted
    closing = logged_sweep(swept.output)
    assert (closing["ImagesExpired"], closing["RepositoriesScanned"], closing["RepositoriesDeleted"]) == (2, 3, 1)
    assert closing["InvocationsUsed"] == 1
    assert published(swept.output, "SweepImagesExpired") == 2

    changed = invoke(
        request(
            response_endpoint,
            "Update",
            properties=PROPERTIES | {"ScheduleExpression": "cron(0 3 * * ? *)", "DryRun": True},
            physical_id=name,
            old_properties=PROPERTIES,
        )
    )
    assert changed["Status"] == "SUCCESS", changed["Reason"]
    assert changed["PhysicalResourceId"] == name
    found = scheduler.get_schedule(Name=name, GroupName=SCHEDULE_GROUP)
    assert found["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert schedule_input(scheduler, name)["CacheProviderImageExpiry"]["settings"]["dry_run"] is True
    lately_old = seed_image(
        ACCOUNT_ID, REGION, "docker-hub/library/nginx", pushed_at=ago(200), last_pulled_at=ago(45), tags=("1.24",)
    )
    previewed = run_event(schedule_input(scheduler, name))
    assert previewed.outcome == "returned", previewed.output
    assert lately_old in images(ecr)  # a dry run deletes nothing, and says what it would delete
    would = logged_sweep(previewed.output, "Dry run: images that would expire")
    assert would["ImagesExpired"] == 1
    assert would["images"] == [f"docker-hub/library/nginx@{lately_old} (1.24)"]

    deleted = invoke(request(response_endpoint, "Delete", physical_id=name))
    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    assert scheduler.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []
    assert images(ecr) == set(cache.values()) - expired | {lately_old}  # Delete never deletes images


@WORKING_RUNTIMES
def test_an_index_whose_manifests_a_lifecycle_policy_archived_is_kept(
    invoke: Invoke, run_event: RunEvent, response_endpoint: ResponseEndpoint, ecr: Any, scheduler: Any
) -> None:
    """DescribeImages returns only ACTIVE images unless asked for ANY: the sweep asks, and keeps an old active index
    with the manifests that were archived (an index is judged with all of its manifests)."""
    archived = tuple(
        seed_image(ACCOUNT_ID, REGION, "docker-hub/library/busybox", pushed_at=ago(300), name=arch, status="ARCHIVED")
        for arch in ("amd64", "arm64")
    )
    index = seed_image(ACCOUNT_ID, REGION, "docker-hub/library/busybox", pushed_at=ago(300), references=archived)
    created = invoke(request(response_endpoint, "Create"))
    assert created["Status"] == "SUCCESS", created["Reason"]

    swept = run_event(schedule_input(scheduler, created["PhysicalResourceId"]))

    assert swept.outcome == "returned", swept.output
    assert images(ecr) == {index, *archived}
    assert logged_sweep(swept.output)["ImagesExpired"] == 0


@pytest.mark.built
@pytest.mark.parametrize("invoke", ["built-oldest"], indirect=True)
def test_the_oldest_runtime_refuses_with_the_botocore_it_needs(
    invoke: Invoke, run_event: RunEvent, response_endpoint: ResponseEndpoint, ecr: Any, scheduler: Any,
    cache: dict[str, str],
) -> None:  # fmt: skip
    from ecr_cache_provider.engine.expiry_sweep import ExpirySettings, sweep_event

    failed = invoke(request(response_endpoint, "Create"))
    rollback = invoke(request(response_endpoint, "Delete", physical_id=failed["PhysicalResourceId"]))
    settings = ExpirySettings(prefix="docker-hub", expire_after_days=30)
    swept = run_event(sweep_event("cache-image-expiry-0123456789abcdef0123", settings, "stack", "ImageExpiry"))

    assert failed["Status"] == "FAILED"
    assert "botocore 1.37.11" in failed["Reason"]
    assert "needs botocore 1.41.0 or newer" in failed["Reason"]
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert scheduler.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []
    assert swept.outcome.startswith("raised: SdkTooOld"), swept.output  # a schedule left behind deletes nothing
    assert "1.41.0" in swept.outcome
    assert images(ecr) == set(cache.values())


@IN_PROCESS_ONLY
def test_a_sweep_under_throttling_completes_and_counts_the_throttled_calls(
    invoke: Invoke, run_event: RunEvent, response_endpoint: ResponseEndpoint, ecr: Any, scheduler: Any,
    cache: dict[str, str],
) -> None:  # fmt: skip
    name = invoke(request(response_endpoint, "Create"))["PhysicalResourceId"]
    faults.throttle("DescribeRepositories", times=3)
    faults.throttle("DescribeImages", times=12)
    faults.throttle("BatchGetImage", times=4)
    faults.throttle("BatchDeleteImage", times=9)
    faults.throttle("DeleteRepository", times=3)

    swept = run_event(schedule_input(scheduler, name))

    assert swept.outcome == "returned", swept.output
    assert images(ecr) == set(cache.values()) - {cache["alone"], cache["stale"]}
    assert "docker-hub/library/busybox" not in repositories(ecr)
    closing = logged_sweep(swept.output)
    assert closing["ThrottledCalls"] == 3 + 12 + 4 + 9 + 3
    assert published(swept.output, "SweepThrottledCalls") == 3 + 12 + 4 + 9 + 3
    assert closing["ImagesExpired"] == 2


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each invocation sweeps one batch of eight repositories, then hands the rest to the next."""
    from ecr_cache_provider.engine import batches as namespace

    monkeypatch.setattr(namespace, "BATCH_SIZE", 8)
    monkeypatch.setattr(namespace, "HAND_OFF_SECONDS", 1e9)


def test_a_sweep_continues_across_invocations_and_reports_once(
    lambda_service: LambdaEmulator,
    response_endpoint: ResponseEndpoint,
    ecr: Any,
    scheduler: Any,
    small_batches: None,
    fast_retries: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for number in range(30):
        repository = f"docker-hub/library/image-{number:02d}"
        seed_image(ACCOUNT_ID, REGION, repository, pushed_at=ago(100), last_pulled_at=ago(50), name="old", size=10)
        seed_image(ACCOUNT_ID, REGION, repository, pushed_at=ago(100), last_pulled_at=ago(5), name="new", size=10)
    create = request(response_endpoint, "Create")
    lambda_service.invoke(create, asynchronous=False)
    name = response_endpoint.wait_for(create["RequestId"])["PhysicalResourceId"]
    capsys.readouterr()

    # As EventBridge Scheduler does: the schedule's target, invoked with the schedule's role.
    target = scheduler.get_schedule(Name=name, GroupName=SCHEDULE_GROUP)["Target"]
    assert target["RoleArn"] == SCHEDULER_ROLE_ARN
    role = iam.grant(stack_under_test().scheduler)
    client: Any = boto3.client(
        "lambda",
        endpoint_url=lambda_service.url,
        aws_access_key_id=role["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=role["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=role["AWS_SESSION_TOKEN"],
    )
    client.invoke(FunctionName=target["Arn"], InvocationType="Event", Payload=target["Input"].encode())
    lambda_service.wait_idle()

    assert lambda_service.errors == []
    assert len(lambda_service.invocations) == 1 + 4  # the Create, then 30 repositories, 8 per invocation
    assert len(images(ecr)) == 30
    output = capsys.readouterr().out
    assert published(output, "SweepImagesExpired") == 30  # published once, by the last invocation
    assert published(output, "SweepInvocationsUsed") == 4
    assert published(output, "SweepBytesFreed") == 300
    assert published(output, "SweepContinued") == 3  # one from each invocation that handed on
