"""Custom::CacheWarmUp through the real handler: images pulled through the local ECR endpoint (emulation/registry)
from a local upstream, as the provider's role, until ECR reports them; bad input, failures named per image, a
warm-up that continues across invocations, the refresh schedule, and Delete (which removes no image)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulation import iam
from emulation.cloudformation import ACCOUNT_ID, REGION, LambdaContext, ResponseEndpoint, make_event
from emulation.registry import EcrRegistryEndpoint, UpstreamRegistry
from emulation.scheduler import SCHEDULE_GROUP
from tests.handler.conftest import Invoke
from tests.warm_up import docker_hub_cache, nginx_and_redis

TYPE = "Custom::CacheWarmUp"
LAYERS = (2048, 70_000, 300_000)


def props(*images: str, prefix: str = "ecr-public", **extra: Any) -> dict[str, Any]:
    return {"RepositoryPrefix": prefix, "Images": list(images), **extra}


def event(endpoint: ResponseEndpoint, request_type: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return make_event(endpoint, request_type, properties, resource_type=TYPE, logical_id="WarmUp", **extra)


@pytest.fixture
def upstream() -> Iterator[UpstreamRegistry]:
    with nginx_and_redis(LAYERS) as registry:
        yield registry


@pytest.fixture
def registry(aws: None, upstream: UpstreamRegistry, ecr: Any) -> Iterator[EcrRegistryEndpoint]:
    """The local ECR endpoint, and a cache of ECR Public (no credentials) and one of Docker Hub (a secret)."""
    with docker_hub_cache(ecr, upstream) as endpoint:
        endpoint.serve_upstream("public.ecr.aws", upstream)
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
        yield endpoint


def images(ecr: Any, repository: str) -> dict[str, list[str]]:
    """digest -> tags of every image ECR describes in the repository."""
    details = ecr.describe_images(repositoryName=repository)["imageDetails"]
    return {detail["imageDigest"]: detail.get("imageTags", []) for detail in details}


def layers_available(ecr: Any, repository: str, digests: list[str]) -> list[str]:
    answer = ecr.batch_check_layer_availability(repositoryName=repository, layerDigests=digests)
    return [layer["layerDigest"] for layer in answer["layers"] if layer["layerAvailability"] == "AVAILABLE"]


def blobs(upstream: UpstreamRegistry, repository: str, digest: str) -> list[str]:
    manifest = upstream.manifests[repository][digest]
    return [blob.digest for blob in manifest.blobs]


def test_warms_a_tag_until_ecr_reports_the_image_and_every_layer(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, upstream: UpstreamRegistry,
    ecr: Any,
) -> None:  # fmt: skip
    digest = upstream.tags["library/nginx"]["1.27"]
    wanted = blobs(upstream, "library/nginx", digest)
    # ECR imports while the provider waits: released once the provider has downloaded every layer (from the
    # upstream, as ECR redirects it while importing), so no download can find the import already done.
    registry.hold_imports()
    original = upstream.serve
    served: list[str] = []

    def serve(request: Any, method: str) -> None:
        original(request, method)
        if "/storage/" in request.path:
            served.append(request.path)
            if len(served) == len(wanted):
                registry.release_imports()

    upstream.serve = serve  # type: ignore[method-assign]
    answer = invoke(event(response_endpoint, "Create", props("library/nginx:1.27")))

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"].startswith("cache-warm-up-")
    assert answer["Data"]["WarmedImages"] == "1"
    assert json.loads(answer["Data"]["Digests"]) == {"library/nginx:1.27": digest}
    assert json.loads(answer["Data"]["Failed"]) == {}
    assert images(ecr, "ecr-public/library/nginx") == {digest: ["1.27"]}
    assert sorted(layers_available(ecr, "ecr-public/library/nginx", wanted)) == sorted(wanted)
    # Each layer was downloaded through ECR: the upstream served it once to the client, once to ECR's import.
    downloads = [path for method, path in upstream.requests if path.startswith("/storage/")]
    assert sorted(downloads) == sorted([f"/storage/{blob}" for blob in wanted] * 2)
    assert iam.admin_client("scheduler").list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []


def test_warms_every_platform_of_an_index_or_the_one_asked_for(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, upstream: UpstreamRegistry,
    ecr: Any,
) -> None:  # fmt: skip
    index = upstream.manifests["library/redis"][upstream.tags["library/redis"]["7"]]
    amd64, arm64 = index.children
    upstream.add_index("library/redis", "8", ("linux/amd64", "linux/arm64"), (1000,), seed="eight")
    eight = upstream.manifests["library/redis"][upstream.tags["library/redis"]["8"]]

    every = invoke(event(response_endpoint, "Create", props("library/redis:7")))
    one = invoke(event(response_endpoint, "Update", props("library/redis:8", Platforms=["linux/arm64"]),
                       physical_id=every["PhysicalResourceId"], old_properties=props("library/redis:7")))  # fmt: skip

    assert every["Status"] == one["Status"] == "SUCCESS", (every.get("Reason"), one.get("Reason"))
    assert json.loads(every["Data"]["Digests"]) == {"library/redis:7": index.digest}
    cached = images(ecr, "ecr-public/library/redis")
    assert {index.digest, amd64.digest, arm64.digest, eight.digest, eight.children[1].digest} == set(cached)
    assert eight.children[0].digest not in cached  # linux/amd64 of 8 was not asked for
    assert (
        layers_available(ecr, "ecr-public/library/redis", blobs(upstream, "library/redis", eight.children[0].digest))
        == []
    )


def test_a_digest_is_warmed_through_its_tag(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, upstream: UpstreamRegistry,
    ecr: Any,
) -> None:  # fmt: skip
    digest = upstream.tags["library/nginx"]["1.27"]
    arm64 = upstream.manifests["library/redis"][upstream.tags["library/redis"]["7"]].children[1].digest

    answer = invoke(
        event(response_endpoint, "Create", props(f"library/nginx:1.27@{digest}", f"library/redis:7@{arm64}"))
    )

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert json.loads(answer["Data"]["Digests"]) == {
        f"library/nginx:1.27@{digest}": digest,
        f"library/redis:7@{arm64}": arm64,
    }
    assert digest in images(ecr, "ecr-public/library/nginx")
    assert arm64 in images(ecr, "ecr-public/library/redis")


def test_a_digest_alone_that_the_cache_cannot_fetch_fails_saying_so(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, upstream: UpstreamRegistry,
    ecr: Any,
) -> None:  # fmt: skip
    digest = upstream.tags["library/nginx"]["1.27"]

    answer = invoke(event(response_endpoint, "Create", props(f"library/nginx@{digest}")))

    assert answer["Status"] == "FAILED"
    assert f"library/nginx@{digest}" in answer["Reason"]
    assert "aws/containers-roadmap#2837" in answer["Reason"]
    assert ecr.describe_repositories()["repositories"] == []


def test_a_digest_alone_already_cached_is_warm(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, upstream: UpstreamRegistry,
) -> None:  # fmt: skip
    digest = upstream.tags["library/nginx"]["1.27"]
    assert invoke(event(response_endpoint, "Create", props("library/nginx:1.27")))["Status"] == "SUCCESS"

    answer = invoke(event(response_endpoint, "Create", props(f"library/nginx@{digest}")))

    assert answer["Status"] == "SUCCESS", answer.get("Reason")


def test_a_cached_image_is_downloaded_from_ecrs_storage_once_per_layer(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, upstream: UpstreamRegistry,
) -> None:  # fmt: skip
    assert invoke(event(response_endpoint, "Create", props("library/nginx:1.27")))["Status"] == "SUCCESS"
    wanted = blobs(upstream, "library/nginx", upstream.tags["library/nginx"]["1.27"])
    registry.requests.clear()
    upstream.requests.clear()

    answer = invoke(event(response_endpoint, "Create", props("library/nginx:1.27")))

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert [path for _, path in upstream.requests if path.startswith("/storage/")] == []
    # One request per layer: a redirect's connection goes back to the pool ready for the next request, so no
    # download is sent twice (the retry of a connection handed back with its answer unread).
    downloads = [path for _, path in registry.requests if path.startswith("/layer-bucket/")]
    assert sorted(downloads) == sorted(f"/layer-bucket/{blob}" for blob in wanted)


def test_a_tag_that_moved_off_the_digest_fails_naming_the_image(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint
) -> None:
    image = f"library/nginx:1.27@sha256:{'a' * 64}"

    answer = invoke(event(response_endpoint, "Create", props(image)))

    assert answer["Status"] == "FAILED"
    assert f"{image}: its tag 1.27 is sha256:" in answer["Reason"]


def test_an_image_missing_upstream_fails_naming_it_and_the_others_are_warmed(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, ecr: Any
) -> None:
    answer = invoke(event(response_endpoint, "Create", props("library/nginx:1.27", "library/nginx:9.9")))

    assert answer["Status"] == "FAILED"
    assert (
        answer["Reason"]
        == "1 of 2 images could not be warmed: library/nginx:9.9: not found upstream (MANIFEST_UNKNOWN)"
    )
    assert answer["PhysicalResourceId"].startswith(
        "cache-warm-up-"
    )  # nothing to remove: the rollback's Delete is a no-op
    assert list(images(ecr, "ecr-public/library/nginx").values()) == [["1.27"]]


def test_an_upstream_login_failure_fails_naming_the_image(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, upstream: UpstreamRegistry
) -> None:
    upstream.fail_login = True

    answer = invoke(event(response_endpoint, "Create", props("library/nginx:1.27", prefix="docker-hub")))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("1 of 1 images could not be warmed: library/nginx:1.27: denied: ")
    assert "authentication to the upstream registry failed" in answer["Reason"]


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        (props("library/nginx"), "Images: 'library/nginx' is names no tag or digest"),
        (props("Library/Nginx:1"), "Images: 'Library/Nginx:1' is not repository:tag"),
        (props("library/nginx:1", Platforms=["amd64"]), "Platforms: 'amd64' is not os/architecture"),
        (props("library/nginx:1", prefix="team"), "No pull-through cache rule has the prefix 'team'"),
        (props("library/nginx:1", RefreshSchedule="daily"), "RefreshSchedule"),
        ({"RepositoryPrefix": "ecr-public"}, "Missing required property: Images"),
    ],
)
def test_bad_input_fails_and_changes_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, upstream: UpstreamRegistry,
    ecr: Any, properties: dict[str, Any], reason: str,
) -> None:  # fmt: skip
    answer = invoke(event(response_endpoint, "Create", properties))

    assert answer["Status"] == "FAILED"
    assert reason in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("failed-create:")
    assert upstream.requests == []
    assert registry.requests == []
    assert ecr.describe_repositories()["repositories"] == []


def test_a_warm_up_that_does_not_fit_continues_in_follow_up_invocations(
    response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, ecr: Any, handed: list[dict[str, Any]],
    fast_retries: None,
) -> None:  # fmt: skip
    from ecr_cache_provider import handler

    first = event(response_endpoint, "Create", props("library/nginx:1.27", "library/redis:7"))
    registry.hold_imports()  # ECR's import takes longer than an invocation
    played = [first]
    handler.lambda_handler(first, LambdaContext(remaining_seconds=31.0))  # a second past the margin
    while handed and len(played) < 30:
        assert response_endpoint.answers(first["RequestId"]) == []  # no answer until every image is warm
        if [invocation.get("CacheProviderProgress", {}).get("stage") for invocation in played[-2:]] == ["wait"] * 2:
            registry.release_imports()  # ECR finishes once the provider has waited across two invocations
            registry.wait_for_imports()
        played.append(handed.pop())
        handler.lambda_handler(played[-1], LambdaContext(remaining_seconds=31.0))

    answer = response_endpoint.wait_for(first["RequestId"])
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["Data"]["WarmedImages"] == "2"
    assert len(played) >= 3
    notes = played[-1]["CacheProviderProgress"]["notes"]
    assert sorted(json.loads(note)["state"] for note in notes) == ["pulled", "pulled"]  # carried, not pulled again
    assert len(images(ecr, "ecr-public/library/redis")) == 3


def test_refresh_schedule_pulls_again_and_delete_removes_it_but_no_image(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint, upstream: UpstreamRegistry,
    ecr: Any,
) -> None:  # fmt: skip
    from ecr_cache_provider import handler

    properties = props("library/nginx:1.27", RefreshSchedule="rate(1 day)")
    answer = invoke(event(response_endpoint, "Create", properties))
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    name = answer["PhysicalResourceId"]
    schedule = iam.admin_client("scheduler").get_schedule(Name=name, GroupName=SCHEDULE_GROUP)
    assert schedule["ScheduleExpression"] == "rate(1 day)"

    moved = upstream.add_image("library/nginx", "1.27", (5000,), seed="moved")  # the tag moves upstream
    a_day_ago()  # ECR checks the upstream for a cached tag up to once per 24 hours
    handler.lambda_handler(json.loads(schedule["Target"]["Input"]), LambdaContext())  # what the schedule sends
    registry.wait_for_imports()
    assert images(ecr, "ecr-public/library/nginx")[moved] == ["1.27"]

    deleted = invoke(event(response_endpoint, "Delete", properties, physical_id=name))
    assert deleted["Status"] == "SUCCESS"
    assert iam.admin_client("scheduler").list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []
    assert len(images(ecr, "ecr-public/library/nginx")) == 2  # Delete removes no image


def a_day_ago() -> None:
    """Every cached image's upstream was last checked 24 hours ago."""
    from datetime import UTC, datetime, timedelta

    from moto.ecr.models import ecr_backends

    for repository in ecr_backends[ACCOUNT_ID][REGION].repositories.values():
        for image in repository.images:
            image.ext_upstream_checked_at = datetime.now(UTC) - timedelta(hours=24)  # type: ignore[attr-defined]


def test_an_update_without_refresh_schedule_removes_it(
    invoke: Invoke, response_endpoint: ResponseEndpoint, registry: EcrRegistryEndpoint
) -> None:
    scheduled = props("library/nginx:1.27", RefreshSchedule="rate(12 hours)")
    name = invoke(event(response_endpoint, "Create", scheduled))["PhysicalResourceId"]

    answer = invoke(event(response_endpoint, "Update", props("library/nginx:1.27"), physical_id=name,
                          old_properties=scheduled))  # fmt: skip

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] == name
    assert iam.admin_client("scheduler").list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []
