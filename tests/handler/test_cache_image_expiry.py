"""Custom::CacheImageExpiry through the real handler: the schedule on Create, Update and Delete, bad input, the
deploy-time preview, and the scheduled sweep (which never answers CloudFormation)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulation import iam
from emulation.cloudformation import ACCOUNT_ID, REGION, LambdaContext, ResponseEndpoint, make_event
from emulation.moto_ecr import seed_image
from emulation.scheduler import SCHEDULE_GROUP, SCHEDULER_ROLE_ARN
from tests.handler.conftest import Invoke, batches_of

TYPE = "Custom::CacheImageExpiry"
NOW = datetime.now(UTC)


def props(prefix: str = "docker-hub", days: int = 30, **extra: Any) -> dict[str, Any]:
    return {"RepositoryPrefix": prefix, "ExpireAfterDaysWithoutPull": days, **extra}


def event(endpoint: ResponseEndpoint, request_type: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return make_event(endpoint, request_type, properties, resource_type=TYPE, logical_id="ImageExpiry", **extra)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture(autouse=True)
def caches(ecr: Any) -> None:
    """The pull-through cache rules whose namespaces the tests sweep (image expiry sweeps only a cache's)."""
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="public.ecr.aws")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")


@pytest.fixture
def cache(ecr: Any) -> dict[str, str]:
    """A Docker Hub cache: an old image, a recent one, an old multi-arch image whose arm64 manifest was pulled
    lately, an old multi-arch image nobody pulls, and a neighbour outside the namespace."""
    seed: dict[str, tuple[str, dict[str, Any]]] = {
        "old": (
            "docker-hub/library/nginx",
            {"pushed_at": ago(200), "last_pulled_at": ago(90), "tags": ("1.25",), "name": "old"},
        ),
        "recent": (
            "docker-hub/library/nginx",
            {"pushed_at": ago(200), "last_pulled_at": ago(3), "tags": ("1.27",), "name": "recent"},
        ),
        "outside": ("team/app", {"pushed_at": ago(400), "tags": ("v1",)}),
    }
    digests = {name: seed_image(ACCOUNT_ID, REGION, repository, **kw) for name, (repository, kw) in seed.items()}
    for name, arm64_pulled in (("kept", ago(2.5)), ("gone", ago(60))):
        repository = f"docker-hub/library/{'redis' if name == 'kept' else 'alpine'}"
        amd64 = seed_image(ACCOUNT_ID, REGION, repository, pushed_at=ago(100), name="amd64", size=1000)
        arm64 = seed_image(
            ACCOUNT_ID, REGION, repository, pushed_at=ago(100), last_pulled_at=arm64_pulled, name="arm64", size=2000
        )
        digests[f"{name}-index"] = seed_image(
            ACCOUNT_ID,
            REGION,
            repository,
            pushed_at=ago(100),
            last_pulled_at=ago(70),
            tags=("7",),
            references=(amd64, arm64),
        )
        digests[f"{name}-amd64"], digests[f"{name}-arm64"] = amd64, arm64
    return digests


def remaining(ecr: Any) -> set[str]:
    """Every image left, whatever its status (DescribeImages returns only ACTIVE ones unless told otherwise)."""
    found = set()
    for repository in ecr.describe_repositories()["repositories"]:
        name = repository["repositoryName"]
        for detail in ecr.describe_images(repositoryName=name, filter={"imageStatus": "ANY"})["imageDetails"]:
            found.add(detail["imageDigest"])
    return found


def schedule(name: str) -> dict[str, Any]:
    return iam.admin_client("scheduler").get_schedule(Name=name, GroupName=SCHEDULE_GROUP)  # type: ignore[no-any-return]


def sweep_now(name: str) -> None:
    """What the schedule does: invoke the function with its input."""
    from ecr_cache_provider import handler

    handler.lambda_handler(json.loads(schedule(name)["Target"]["Input"]), LambdaContext())


def test_create_makes_a_claimed_schedule_and_previews(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: dict[str, str], ecr: Any
) -> None:
    answer = invoke(event(response_endpoint, "Create", props()))
    assert answer["Status"] == "SUCCESS", answer
    name = answer["PhysicalResourceId"]
    data = answer["Data"]
    assert data["ScheduleName"] == name
    assert data["RepositoryPrefix"] == "docker-hub"
    # deciding on the old indexes needs reading them, which ECR counts as a pull: no preview then
    assert data["ImagesToExpire"] == data["BytesToFree"] == "unknown"
    found = schedule(name)
    assert found["ScheduleExpression"] == "rate(1 day)"
    assert found["Target"]["RoleArn"] == SCHEDULER_ROLE_ARN
    assert found["Target"]["Arn"].endswith(":function:ecr-pull-through-cache-provider")
    assert remaining(ecr) == set(cache.values())  # the preview deleted nothing


def test_preview_without_indexes(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any) -> None:
    for number, days in enumerate((90, 40, 10)):
        seed_image(
            ACCOUNT_ID, REGION, "quay/org/app", pushed_at=ago(100), last_pulled_at=ago(days), name=str(number), size=10
        )
    answer = invoke(event(response_endpoint, "Create", props(prefix="quay")))
    assert (answer["Data"]["ImagesToExpire"], answer["Data"]["BytesToFree"]) == ("2", "20")
    assert len(remaining(ecr)) == 3


def test_sweep_expires_exactly_the_old_images_and_never_answers(
    invoke: Invoke,
    response_endpoint: ResponseEndpoint,
    cache: dict[str, str],
    ecr: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = invoke(event(response_endpoint, "Create", props(DeleteEmptyRepositories="true")))["PhysicalResourceId"]
    from ecr_cache_provider.responder import CloudFormationResponder

    def no_answer(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a sweep must not answer CloudFormation")

    monkeypatch.setattr(CloudFormationResponder, "__call__", no_answer)
    sweep_now(name)
    gone = {cache["old"], cache["gone-index"], cache["gone-amd64"], cache["gone-arm64"]}
    assert remaining(ecr) == set(cache.values()) - gone
    repositories = {repository["repositoryName"] for repository in ecr.describe_repositories()["repositories"]}
    assert "docker-hub/library/alpine" not in repositories  # emptied by the sweep, so deleted
    assert {"docker-hub/library/nginx", "docker-hub/library/redis", "team/app"} <= repositories


def test_an_index_whose_manifests_were_archived_is_kept(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    """A lifecycle policy moved the manifests of an old multi-arch image to the archive; the index stayed ACTIVE.
    The sweep must see the archived manifests (DescribeImages returns only ACTIVE images unless asked for ANY) and
    keep the index with them, as it promises for every group holding an image that is not ACTIVE."""
    manifests = tuple(
        seed_image(ACCOUNT_ID, REGION, "docker-hub/library/busybox", pushed_at=ago(300), name=arch, status="ARCHIVED")
        for arch in ("amd64", "arm64")
    )
    index = seed_image(
        ACCOUNT_ID, REGION, "docker-hub/library/busybox", pushed_at=ago(300), tags=("1",), references=manifests
    )
    name = invoke(event(response_endpoint, "Create", props()))["PhysicalResourceId"]

    sweep_now(name)

    assert remaining(ecr) == {index, *manifests}


def test_dry_run_and_keep_latest(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: dict[str, str], ecr: Any
) -> None:
    name = invoke(event(response_endpoint, "Create", props(DryRun="true")))["PhysicalResourceId"]
    sweep_now(name)
    assert remaining(ecr) == set(cache.values())
    answer = invoke(
        event(
            response_endpoint,
            "Update",
            props(KeepLatestImages="1"),
            physical_id=name,
            old_properties=props(DryRun="true"),
        )
    )
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == name
    sweep_now(name)
    # KeepLatestImages 1 keeps nginx 1.27 (the recent one) and the alpine index group (the only image there)
    assert remaining(ecr) == set(cache.values()) - {cache["old"]}


def test_update_changes_the_schedule_and_delete_removes_it_leaving_images(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: dict[str, str], ecr: Any
) -> None:
    name = invoke(event(response_endpoint, "Create", props()))["PhysicalResourceId"]
    answer = invoke(
        event(
            response_endpoint,
            "Update",
            props(days=90, ScheduleExpression="rate(12 hours)"),
            physical_id=name,
            old_properties=props(),
        )
    )
    assert answer["Status"] == "SUCCESS"
    found = schedule(name)
    assert found["ScheduleExpression"] == "rate(12 hours)"
    assert json.loads(found["Target"]["Input"])["CacheProviderImageExpiry"]["settings"]["expire_after_days"] == 90
    assert invoke(event(response_endpoint, "Delete", props(), physical_id=name))["Status"] == "SUCCESS"
    with pytest.raises(Exception, match="ResourceNotFound"):
        schedule(name)
    assert remaining(ecr) == set(cache.values())
    assert invoke(event(response_endpoint, "Delete", props(), physical_id=name))["Status"] == "SUCCESS"  # idempotent


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        (props(days=0), "ExpireAfterDaysWithoutPull"),
        (props(days=3651), "ExpireAfterDaysWithoutPull"),
        (props(DryRun="maybe"), "DryRun"),
        (props(ScheduleExpression="at(2026-12-01T00:00:00)"), "ScheduleExpression"),
        (props(prefix="ROOT"), "ExistingRepositoryPrefixes"),
        (props(ExistingRepositoryPrefixes=["quay"]), "ExistingRepositoryPrefixes"),
        ({"RepositoryPrefix": "docker-hub"}, "ExpireAfterDaysWithoutPull"),
        (props(Unknown="x"), "Unknown property"),
    ],
)
def test_bad_input_fails_and_changes_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, properties: dict[str, Any], reason: str
) -> None:
    answer = invoke(event(response_endpoint, "Create", properties))
    assert answer["Status"] == "FAILED"
    assert reason in answer["Reason"]
    assert iam.admin_client("scheduler").list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []
    rollback = invoke(event(response_endpoint, "Delete", properties, physical_id=answer["PhysicalResourceId"]))
    assert rollback["Status"] == "SUCCESS"


def test_another_stacks_namespace_inside_ours_is_never_swept(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    from ecr_cache_provider.aws.ledger import Ledger, Owner, Thing
    from ecr_cache_provider.deadline import Deadline

    theirs = seed_image(ACCOUNT_ID, REGION, "docker-hub/team/app", pushed_at=ago(300))
    ours = seed_image(ACCOUNT_ID, REGION, "docker-hub/library/nginx", pushed_at=ago(300))
    other = Owner(f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/other/1", "TeamCache", "r-1")
    Ledger(Deadline.from_context(LambdaContext())).claim(Thing("pull-through cache rule", "docker-hub/team"), other)
    name = invoke(event(response_endpoint, "Create", props()))["PhysicalResourceId"]
    sweep_now(name)
    assert remaining(ecr) == {theirs}
    assert ours not in remaining(ecr)


def test_a_schedule_name_another_resource_claims_is_never_taken(
    invoke: Invoke, response_endpoint: ResponseEndpoint
) -> None:
    first = invoke(event(response_endpoint, "Create", props()))
    # the same stack and logical id from another request replays the claim; a different stack gets its own name
    again = invoke(event(response_endpoint, "Create", props()))
    assert again["Status"] == "SUCCESS"
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]


def test_a_schedule_made_by_a_failed_create_is_removed_by_the_rollback(
    invoke: Invoke, response_endpoint: ResponseEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler made the schedule but the answer was lost: the Create fails, naming the schedule, so that the
    rollback's Delete removes it and its claim instead of leaving a sweep running that nobody owns."""
    from ecr_cache_provider.aws.scheduler import SchedulerGateway
    from ecr_cache_provider.failures import ResourceFailure

    put = SchedulerGateway.put

    def made_then_timed_out(self: SchedulerGateway, schedule: Any) -> None:
        put(self, schedule)
        raise ResourceFailure("ReadTimeoutError: the scheduler did not answer")

    monkeypatch.setattr(SchedulerGateway, "put", made_then_timed_out)
    failed = invoke(event(response_endpoint, "Create", props()))
    monkeypatch.undo()

    assert failed["Status"] == "FAILED"
    assert "did not answer" in failed["Reason"]
    name = failed["PhysicalResourceId"]
    assert schedule(name)["Name"] == name  # made, and named in the answer
    rollback = invoke(event(response_endpoint, "Delete", props(), physical_id=name))
    assert rollback["Status"] == "SUCCESS"
    with pytest.raises(iam.admin_client("scheduler").exceptions.ResourceNotFoundException):
        schedule(name)
    # the claim went with the schedule: creating the resource again makes both afresh
    again = invoke(event(response_endpoint, "Create", props()))
    assert again["Status"] == "SUCCESS", again
    assert again["PhysicalResourceId"] == name


def test_a_preview_the_ledger_cannot_serve_is_unknown_not_a_failure(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecr_cache_provider.engine import expiry_sweep as image_expiry
    from ecr_cache_provider.failures import ResourceFailure

    def ledger_down(*_: Any, **__: Any) -> Any:
        raise ResourceFailure("ProvisionedThroughputExceededException: the ledger is busy")

    monkeypatch.setattr(image_expiry, "protected_namespaces", ledger_down)
    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Status"] == "SUCCESS", answer
    assert answer["Data"]["ImagesToExpire"] == answer["Data"]["BytesToFree"] == "unknown"


# Only where a cache is (issue 18, case 6)


@pytest.mark.parametrize(
    ("properties", "named"),
    [
        (props(prefix="team"), "'team'"),
        (props(prefix="mirror"), "'mirror'"),
        (props(prefix="ROOT", ExistingRepositoryPrefixes=["docker-hub", "team-a"]), "'team-a'"),
    ],
)
def test_a_namespace_no_cache_rule_covers_is_refused(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, properties: dict[str, Any], named: str
) -> None:
    """Applications push release images there: deleted, nothing could pull them again."""
    release = seed_image(ACCOUNT_ID, REGION, "team/app", pushed_at=ago(400), tags=("v1.0.0",))

    answer = invoke(event(response_endpoint, "Create", properties))

    assert answer["Status"] == "FAILED"
    assert f"No pull-through cache rule covers {named}" in answer["Reason"]
    nearest = answer["Reason"].split("the nearest rule prefixes: ")[1]
    assert sorted(nearest.split(", ")) == ["docker-hub", "quay"]
    assert iam.admin_client("scheduler").list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []
    assert release in remaining(ecr)


def test_a_namespace_inside_a_cache_is_accepted(invoke: Invoke, response_endpoint: ResponseEndpoint) -> None:
    answer = invoke(event(response_endpoint, "Create", props(prefix="docker-hub/library")))

    assert answer["Status"] == "SUCCESS", answer["Reason"]


def test_a_sweep_skips_a_namespace_whose_cache_rule_is_gone(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: dict[str, str], ecr: Any
) -> None:
    name = invoke(event(response_endpoint, "Create", props()))["PhysicalResourceId"]
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")

    sweep_now(name)

    assert remaining(ecr) == set(cache.values())


# Sweeps read their resource at each step (issue 18, case 4)


@pytest.fixture
def one_repository_per_invocation(
    monkeypatch: pytest.MonkeyPatch, handed: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each sweep invocation does one repository, then hands the rest on: the follow-up events, in order."""
    batches_of(1, monkeypatch)
    return handed


def three_old_images() -> list[str]:
    return [
        seed_image(ACCOUNT_ID, REGION, f"docker-hub/library/image-{number}", pushed_at=ago(300), name=str(number))
        for number in range(3)
    ]


def run_follow_up(follow_up: dict[str, Any]) -> None:
    from ecr_cache_provider import handler

    handler.lambda_handler(follow_up, LambdaContext())


def test_a_sweep_under_way_stops_when_its_resource_is_deleted(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, one_repository_per_invocation: list[Any]
) -> None:
    images = three_old_images()
    name = invoke(event(response_endpoint, "Create", props()))["PhysicalResourceId"]
    sweep_now(name)  # the first repository, then hands the rest on
    assert remaining(ecr) == set(images[1:])

    invoke(event(response_endpoint, "Delete", props(), physical_id=name))
    run_follow_up(one_repository_per_invocation[-1])

    assert remaining(ecr) == set(images[1:])  # the follow-up found its resource deleted: it deleted nothing
    assert len(one_repository_per_invocation) == 1


def test_a_sweep_under_way_stops_deleting_once_dry_run_is_turned_on(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, one_repository_per_invocation: list[Any]
) -> None:
    images = three_old_images()
    name = invoke(event(response_endpoint, "Create", props()))["PhysicalResourceId"]
    sweep_now(name)

    invoke(event(response_endpoint, "Update", props(DryRun="true"), physical_id=name, old_properties=props()))
    for follow_up in one_repository_per_invocation:  # each follow-up hands on the next
        run_follow_up(follow_up)

    assert remaining(ecr) == set(images[1:])
    assert len(one_repository_per_invocation) == 2


def test_a_schedule_whose_resource_is_gone_removes_itself(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: dict[str, str], ecr: Any
) -> None:
    """A cancelled Create made its schedule after its rollback's Delete had looked for it: the schedule fires,
    finds no resource and no claim, deletes nothing, and removes itself."""
    from ecr_cache_provider import handler
    from ecr_cache_provider.aws.scheduler import Schedule, SchedulerGateway
    from ecr_cache_provider.deadline import Deadline
    from ecr_cache_provider.engine.expiry_sweep import ExpirySettings, sweep_event

    name = "cache-image-expiry-0123456789abcdef0123"
    payload = sweep_event(name, ExpirySettings("docker-hub", 30), "arn:aws:cloudformation:us-east-1:1:stack/s/1", "X")
    gateway = SchedulerGateway(Deadline.from_context(LambdaContext()))
    gateway.put(Schedule(name, "rate(1 day)", "arn:aws:lambda:us-east-1:1:function:f", payload))

    handler.lambda_handler(payload, LambdaContext())

    assert remaining(ecr) == set(cache.values())
    with pytest.raises(iam.admin_client("scheduler").exceptions.ResourceNotFoundException):
        schedule(name)
