"""Custom::CacheImageExpiry in `make local`: images with spread-out pull times in the seeded repositories of the
namespaces a CacheImageExpiry sweeps (--seed-repositories), and a sweep run now rather than at its schedule's time
(--sweep-now), reported as what expired and what it freed. Before each sweep, an emulated Lambda function and ECS
service run two old images of the namespace (`<namespace>/seed/in-use`), which the sweep keeps (ProtectImagesInUse)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from emulation import iam
from emulation.cloudformation import LambdaContext
from emulation.moto_ecr import seed_image
from tools.stack_player.aws import ACCOUNT_ID, REGION, LocalAws
from tools.stack_player.state import ResourceRecord

EXPIRY_TYPE = "Custom::CacheImageExpiry"
# How long a sweep may run here (the provider's Timeout in template.yaml), its follow-up invocations included.
SWEEP_SECONDS = 300.0
MEGABYTE = 1024 * 1024
INDEX_MEDIA_TYPE_ENDINGS = ("image.index.v1+json", "manifest.list.v2+json")

# What each seeded repository gets: (name, days since the last pull, None when never pulled, size in MB); every third
# repository also a multi-architecture image (an index with two manifests), unpulled for long in every sixth.
SINGLE_IMAGES = (("latest", 1, 40), ("v5", 10, 35), ("v4", 45, 30), ("v3", 90, 25), ("v2", 200, 20), ("v1", None, 15))
CACHED_DAYS_AGO = 120  # when the images were cached (pushed)
# The repository, under each swept namespace, whose images an emulated Lambda function and ECS service run.
IN_USE_REPOSITORY = "seed/in-use"


def expiry_prefixes(records: dict[str, ResourceRecord]) -> list[str]:
    """The namespaces the stack's CacheImageExpiry resources sweep."""
    return sorted({str(record.properties.get("RepositoryPrefix")) for record in records.values() if _is_expiry(record)})


def seed_images(aws: LocalAws, repositories: list[str], prefixes: list[str]) -> int:
    """Images in each seeded repository under one of `prefixes` that has none yet (so seeding twice changes
    nothing); how many were seeded."""
    ecr = aws.client("ecr")
    now = datetime.now(UTC)
    seeded = 0
    for number, repository in enumerate(sorted(repositories)):
        if not any(repository.startswith(prefix.rstrip("/") + "/") for prefix in prefixes):
            continue
        if ecr.describe_images(repositoryName=repository, filter={"imageStatus": "ANY"})["imageDetails"]:
            continue
        for tag, pulled_days_ago, megabytes in SINGLE_IMAGES:
            pulled = now - timedelta(days=pulled_days_ago) if pulled_days_ago is not None else None
            seed_image(ACCOUNT_ID, REGION, repository, pushed_at=now - timedelta(days=CACHED_DAYS_AGO),
                       last_pulled_at=pulled, tags=(tag,), size=megabytes * MEGABYTE, name=tag)  # fmt: skip
            seeded += 1
        if number % 3 == 0:
            seeded += _seed_index(repository, now, pulled_days_ago=60 if number % 6 == 0 else 3)
    return seeded


def _seed_index(repository: str, now: datetime, pulled_days_ago: int) -> int:
    """An index with amd64 and arm64 manifests; the arm64 one pulled `pulled_days_ago` days ago."""
    cached = now - timedelta(days=CACHED_DAYS_AGO)
    children = tuple(
        seed_image(
            ACCOUNT_ID,
            REGION,
            repository,
            pushed_at=cached,
            last_pulled_at=now - timedelta(days=days),
            size=megabytes * MEGABYTE,
            name=f"multi-{architecture}",
        )
        for architecture, days, megabytes in (("amd64", 300, 30), ("arm64", pulled_days_ago, 28))
    )
    seed_image(ACCOUNT_ID, REGION, repository, pushed_at=cached, tags=("multi",), references=children)
    return 3


@dataclass
class SweepReport:
    """What one CacheImageExpiry's sweep, run now, did: the images it deleted and the repositories it removed."""

    logical_id: str
    prefix: str
    dry_run: bool
    expired: list[dict[str, Any]] = field(default_factory=list)  # repository, digest, tags, last used, size
    repositories_deleted: list[str] = field(default_factory=list)
    kept_in_use: list[str] = field(default_factory=list)  # image (who runs it), each still there after the sweep
    seconds: float = 0.0
    error: str = ""

    @property
    def bytes_freed(self) -> int:
        return sum(int(image["size"]) for image in self.expired if not image["index"])


def sweep_now(aws: LocalAws, records: dict[str, ResourceRecord]) -> list[SweepReport]:
    """Run each CacheImageExpiry's sweep as its schedule would (the schedule's input to the provider function),
    waiting for its follow-up invocations; what disappeared from the registry is what it expired."""
    reports = []
    for record in records.values():
        if not _is_expiry(record):
            continue
        dry_run = str(record.properties.get("DryRun", "false")).lower() == "true"
        report = SweepReport(record.logical_id, str(record.properties.get("RepositoryPrefix")), dry_run)
        target = _schedule_target(aws, record.physical_id)
        if target is None:
            report.error = f"no schedule {record.physical_id} (the resource did not create it)"
            reports.append(report)
            continue
        denied = _scheduler_may_not_invoke(aws, target)
        if denied:
            report.error = f"the schedule cannot invoke the function: {denied}"
            reports.append(report)
            continue
        event = json.loads(target["Input"])
        in_use = run_workloads(aws, report.prefix)
        before = _images(aws)
        started = time.monotonic()
        try:
            aws.invoke_provider(
                event | {"ServiceToken": record.properties["ServiceToken"]},
                LambdaContext(SWEEP_SECONDS, function_arn=str(target["Arn"])),
            )
            while aws.busy() and time.monotonic() - started < SWEEP_SECONDS:
                time.sleep(0.05)  # follow-up invocations: polled, as nothing signals their end
        except RuntimeError as error:
            report.error = str(error).splitlines()[0]
        report.seconds = time.monotonic() - started
        after = _images(aws)
        report.expired = [image for key, image in sorted(before.items()) if key not in after]
        report.repositories_deleted = sorted({image["repository"] for image in before.values()} - _repositories(aws))
        tags_left = {(image["repository"], tag) for image in after.values() for tag in image["tags"].split(",")}
        report.kept_in_use = [f"{name}:{tag} ({who})" for name, tag, who in in_use if (name, tag) in tags_left]
        reports.append(report)
    return reports


def run_workloads(aws: LocalAws, prefix: str) -> list[tuple[str, str, str]]:
    """An old image a Lambda function runs and one an ECS service runs (its task running too), in
    `<prefix>/seed/in-use` (seeded when missing): (repository, tag, who runs it). None under ROOT."""
    if prefix in ("", "ROOT", "None"):
        return []
    repository = f"{prefix.rstrip('/')}/{IN_USE_REPOSITORY}"
    name = repository.replace("/", "-")
    now = datetime.now(UTC)
    tags = {
        tag for image in _images(aws).values() if image["repository"] == repository for tag in image["tags"].split(",")
    }
    for tag in ("function", "service"):
        if tag not in tags:
            seed_image(ACCOUNT_ID, REGION, repository, pushed_at=now - timedelta(days=300),
                       last_pulled_at=now - timedelta(days=200), tags=(tag,), size=10 * MEGABYTE, name=tag)  # fmt: skip
    host = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
    try:
        role = aws.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        aws.client("lambda").create_function(FunctionName=name, Role=role, PackageType="Image",
                                             Code={"ImageUri": f"{host}/{repository}:function"})  # fmt: skip
        ecs = aws.client("ecs")
        ecs.create_cluster(clusterName="local")
        definition = [{"name": "app", "image": f"{host}/{repository}:service", "memory": 128}]
        ecs.register_task_definition(family=name, containerDefinitions=definition)
        ecs.create_service(cluster="local", serviceName=name, taskDefinition=name, desiredCount=1)
        ecs.run_task(cluster="local", taskDefinition=name, launchType="FARGATE", startedBy=name)
    except ClientError as error:  # made by an earlier sweep of this run
        if error.response["Error"]["Code"] not in ("EntityAlreadyExists", "ResourceConflictException"):
            raise
    return [(repository, "function", f"Lambda function {name}"), (repository, "service", f"ECS service local/{name}")]


def _is_expiry(record: ResourceRecord) -> bool:
    return record.resource_type == EXPIRY_TYPE and not record.native


def _schedule_target(aws: LocalAws, name: str) -> dict[str, Any] | None:
    scheduler = aws.client("scheduler")
    for group in scheduler.list_schedule_groups()["ScheduleGroups"]:
        for listed in scheduler.list_schedules(GroupName=group["Name"])["Schedules"]:
            if listed["Name"] == name:
                target: dict[str, Any] = scheduler.get_schedule(Name=name, GroupName=group["Name"])["Target"]
                return target
    return None


def _scheduler_may_not_invoke(aws: LocalAws, target: dict[str, Any]) -> str:
    """EventBridge Scheduler invokes the target with the schedule's role: why IAM would deny it lambda:InvokeFunction
    on the function (the scheduler then drops the invocation); empty when it allows it."""
    principal = aws.roles.principal(str(target["RoleArn"]), "scheduler")
    needed = [iam.Authorization("lambda:InvokeFunction", str(target["Arn"]), denial=iam.DENIED_403)]
    try:
        iam.check(principal, "scheduler:InvokeTarget", needed, REGION)
    except iam.Denied as denied:
        return str(denied)
    return ""


def _images(aws: LocalAws) -> dict[tuple[str, str], dict[str, Any]]:
    """Every image of the registry, by (repository, digest)."""
    ecr = aws.client("ecr")
    images = {}
    for name in sorted(_repositories(aws)):
        for page in ecr.get_paginator("describe_images").paginate(repositoryName=name, filter={"imageStatus": "ANY"}):
            for detail in page["imageDetails"]:
                used = detail.get("lastRecordedPullTime") or detail["imagePushedAt"]
                images[(name, detail["imageDigest"])] = {
                    "repository": name,
                    "digest": detail["imageDigest"],
                    "tags": ",".join(detail.get("imageTags", [])) or "-",
                    "last_used": used,
                    "pulled": "lastRecordedPullTime" in detail,
                    "size": int(detail.get("imageSizeInBytes", 0)),
                    "index": detail.get("imageManifestMediaType", "").endswith(INDEX_MEDIA_TYPE_ENDINGS),
                }
    return images


def _repositories(aws: LocalAws) -> set[str]:
    ecr = aws.client("ecr")
    return {item["repositoryName"] for page in ecr.get_paginator("describe_repositories").paginate()
            for item in page["repositories"]}  # fmt: skip
