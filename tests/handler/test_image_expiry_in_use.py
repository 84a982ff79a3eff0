"""Custom::CacheImageExpiry's in-use protection through the real handler: images a Lambda function, an ECS service
or a running ECS task uses, and those carrying one of ProtectedTags, are never expired, with their index family;
the sweep counts them; ProtectImagesInUse "false" turns the in-use part off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulation import iam
from emulation.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint
from emulation.moto_ecr import seed_image
from tests.handler.conftest import Invoke
from tests.handler.test_cache_image_expiry import event, props, remaining, sweep_now

NOW = datetime.now(UTC)
REGISTRY = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def image_function(name: str, image_uri: str, endpoint_url: str | None = None) -> str:
    """A Lambda function packaged as the image (Lambda resolves its tag to a digest when it is made)."""
    options = {"endpoint_url": endpoint_url} if endpoint_url else {}
    role = iam.admin_client("iam", **options).create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")
    client = iam.admin_client("lambda", **options)
    made = client.create_function(
        FunctionName=name, Role=role["Role"]["Arn"], PackageType="Image", Code={"ImageUri": image_uri}
    )
    return str(made["FunctionArn"])


def ecs_workloads(service_image: str, task_image: str, endpoint_url: str | None = None) -> None:
    """An ECS cluster with a service whose task definition names `service_image`, and a running task of another
    task definition naming `task_image` (by tag: ECS reports the digest it resolved)."""
    options = {"endpoint_url": endpoint_url} if endpoint_url else {}
    ecs = iam.admin_client("ecs", **options)
    ecs.create_cluster(clusterName="apps")
    for family, image in (("web", service_image), ("batch", task_image)):
        ecs.register_task_definition(
            family=family, containerDefinitions=[{"name": family, "image": image, "memory": 128}]
        )
    ecs.create_service(cluster="apps", serviceName="web", taskDefinition="web", desiredCount=1)
    ecs.run_task(cluster="apps", taskDefinition="batch", launchType="FARGATE", count=1)


@pytest.fixture(autouse=True)
def docker_hub_cache(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="public.ecr.aws")


@pytest.fixture
def namespace(ecr: Any) -> dict[str, str]:
    """docker-hub, every image unpulled for 200 days: one a Lambda function runs, one an ECS service runs, one a
    running task runs, a multi-arch image a function runs through its arm64 manifest, one tagged `stable`, and the
    negative control nobody uses."""

    def old(repository: str, name: str, tags: tuple[str, ...] = (), **extra: Any) -> str:
        return seed_image(ACCOUNT_ID, REGION, f"docker-hub/library/{repository}", pushed_at=ago(300),
                          last_pulled_at=ago(200), tags=tags, name=name, **extra)  # fmt: skip

    digests = {
        "function": old("python", "function", ("3.12",)),
        "service": old("nginx", "service", ("1.27",)),
        "task": old("busybox", "task", ("1.36",)),
        "stable": old("alpine", "stable", ("stable",)),
        "unused": old("nginx", "unused", ("1.25",)),
    }
    digests["amd64"] = old("redis", "amd64")
    digests["arm64"] = old("redis", "arm64")
    digests["index"] = old("redis", "index", ("7",), references=(digests["amd64"], digests["arm64"]))
    return digests


def in_use(endpoint_url: str | None = None) -> None:
    image_function("api", f"{REGISTRY}/docker-hub/library/python:3.12", endpoint_url)
    ecs_workloads(f"{REGISTRY}/docker-hub/library/nginx:1.27", f"{REGISTRY}/docker-hub/library/busybox:1.36",
                  endpoint_url)  # fmt: skip


def test_images_in_use_and_protected_tags_are_kept_and_counted(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, namespace: dict[str, str],
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    in_use()
    image_function("worker", f"{REGISTRY}/docker-hub/library/redis@{namespace['arm64']}")  # one platform's digest
    answer = invoke(event(response_endpoint, "Create", props(ProtectedTags=["stable"])))
    assert answer["Status"] == "SUCCESS", answer

    capsys.readouterr()
    sweep_now(answer["PhysicalResourceId"])

    assert remaining(ecr) == set(namespace.values()) - {namespace["unused"]}  # the negative control expired
    closing = _closing(capsys.readouterr().out, caplog)
    assert closing["ImagesExpired"] == 1
    # python, nginx 1.27, busybox, alpine:stable, and the redis index with both its manifests
    assert closing["ImagesProtectedInUse"] == 7
    assert any("lambda:" in line and "python" in line for line in closing["protected"]), closing["protected"]


def test_protect_images_in_use_false_turns_it_off_but_keeps_protected_tags(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, namespace: dict[str, str],
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    in_use()
    properties = props(ProtectImagesInUse="false", ProtectedTags=["stable"])  # as CloudFormation sends them
    answer = invoke(event(response_endpoint, "Create", properties))
    assert answer["Status"] == "SUCCESS", answer

    capsys.readouterr()
    sweep_now(answer["PhysicalResourceId"])

    assert remaining(ecr) == {namespace["stable"]}
    closing = _closing(capsys.readouterr().out, caplog)
    assert (closing["ImagesExpired"], closing["ImagesProtectedInUse"]) == (7, 1)


def test_images_ecs_pulls_through_the_dual_stack_endpoint_are_in_use(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, namespace: dict[str, str],
) -> None:  # fmt: skip
    """Tasks in IPv6 networks pull from <account>.dkr-ecr.<region>.on.aws (ECR user guide, ecr-requests)."""
    dual_stack = f"{ACCOUNT_ID}.dkr-ecr.{REGION}.on.aws"
    ecs_workloads(f"{dual_stack}/docker-hub/library/nginx:1.27", f"{dual_stack}/docker-hub/library/busybox:1.36")
    answer = invoke(event(response_endpoint, "Create", props()))
    assert answer["Status"] == "SUCCESS", answer

    sweep_now(answer["PhysicalResourceId"])

    assert remaining(ecr) == {namespace["service"], namespace["task"]}


@pytest.mark.denials_expected
def test_a_sweep_that_cannot_read_the_images_in_use_deletes_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, namespace: dict[str, str],
    provider_identity: Any, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    answer = invoke(event(response_endpoint, "Create", props()))
    assert answer["Status"] == "SUCCESS", answer
    from tests.integration.test_shipped_role import grant_without

    grant_without(provider_identity.provider, "ImagesInUseList", "ecs:ListClusters")
    sweep_now(answer["PhysicalResourceId"])

    assert remaining(ecr) == set(namespace.values())
    assert any(r.getMessage().startswith("Sweep skipped: the images in use") for r in caplog.records)
    assert [denial.action for denial in iam.denials()] == ["ecs:ListClusters"]


def _closing(output: str, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """The sweep's closing log line (its fields), checked against the metric it published (EMF, on stdout)."""
    import json

    (record,) = [record for record in caplog.records if record.getMessage() == "Image expiry sweep finished"]
    closing = record.__dict__
    metrics = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]
    assert any(m.get("SweepImagesProtectedInUse") == [closing["ImagesProtectedInUse"]] for m in metrics), metrics
    return dict(closing)
