"""Custom::CacheImageExpiry in whole stacks, as `make local` plays them: seeded images swept now (--seed-repositories,
--sweep-now), the registry snapshot keeping images and schedules between runs, and a deployed expiry's properties
(DryRun, KeepLatestImages, DeleteEmptyRepositories, ScheduleExpression) through Create, Update and Delete."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulation.moto_ecr import seed_image
from tests.stack.conftest import ROOT, Play
from tools.stack_player import LocalAws, RunResult, render
from tools.stack_player.aws import ACCOUNT_ID, REGION
from tools.stack_player.report import render_sweeps
from tools.stack_player.sweep import MEGABYTE

pytestmark = pytest.mark.stack

NOW = datetime.now(UTC)
# Six seeded repositories, two per default cache. Each gets six images of which four are unpulled for more than 30
# days (v4 45 days, v3 90, v2 200, v1 never since it was cached 120 days ago: 30 + 25 + 20 + 15 MB), and the first
# and fourth (in name order) a multi-architecture image: the first's last pulled 60 days ago (so it expires: 30 +
# 28 MB), the fourth's arm64 manifest 3 days ago (so the index and both manifests stay).
EXPIRED_IMAGES = 6 * 4 + 3
FREED_MEGABYTES = 6 * 90 + 58


def images(aws: LocalAws) -> dict[str, set[str]]:
    """Each repository's image tags (an untagged manifest as its digest)."""
    ecr = aws.client("ecr")
    found = {}
    for repository in ecr.describe_repositories()["repositories"]:
        name = repository["repositoryName"]
        details = ecr.describe_images(repositoryName=name, filter={"imageStatus": "ANY"})["imageDetails"]
        found[name] = {",".join(detail.get("imageTags", [])) or detail["imageDigest"][:12] for detail in details}
    return found


def schedules(aws: LocalAws) -> dict[str, dict[str, Any]]:
    scheduler = aws.client("scheduler")
    found = {}
    for group in scheduler.list_schedule_groups()["ScheduleGroups"]:
        if group["Name"] == "default":  # the provider stack's health check schedule, not an image expiry's
            continue
        for listed in scheduler.list_schedules(GroupName=group["Name"])["Schedules"]:
            found[listed["Name"]] = scheduler.get_schedule(Name=listed["Name"], GroupName=group["Name"])
    return found


def swept(result: RunResult) -> tuple[int, int]:
    """(images expired, MB freed) by the run's sweeps."""
    expired = sum(len(sweep.expired) for sweep in result.sweeps)
    return expired, round(sum(sweep.bytes_freed for sweep in result.sweeps) / MEGABYTE)


def test_seeded_images_are_swept_now_and_the_table_shows_what_expired(play: Play, local_aws: LocalAws) -> None:
    result = play("ExpireImagesNotPulledForDays=30", seed_repositories=6, sweep_now=True)

    assert result.succeeded, render(result.stack, result.registry)
    assert [sweep.logical_id for sweep in result.sweeps] == [
        f"{cache}CacheImageExpiry" for cache in ("EcrPublic", "Quay", "K8s")
    ]
    assert all(sweep.error == "" for sweep in result.sweeps)
    assert swept(result) == (EXPIRED_IMAGES, FREED_MEGABYTES)
    left = images(local_aws)
    assert left["ecr-public/seed/repository-00000"] == {"latest", "v5"}  # its old multi-architecture image expired
    kept = left["k8s/seed/repository-00005"]
    assert {"latest", "v5", "multi"} <= kept
    assert len(kept) == 5  # the index kept with both its manifests (untagged)
    assert any("seeded 42 images" in note for note in result.notes), result.notes  # 6 x 6 + 2 x 3
    table = render_sweeps(result.sweeps)
    assert "Image expiry sweeps, run now" in table
    assert "ecr-public/seed/repository-00000  v1" in table.replace("   ", "  ")
    assert "never (cached 120 days ago)" in table


def test_make_local_sweep_now_prints_the_table(tmp_path: Path) -> None:
    """The command, as a person runs it: a first run seeds, a later one (from the saved state) sweeps."""
    arguments = ["--state-dir", str(tmp_path / "state")]
    arguments += ["--parameter-overrides", "ExpireImagesNotPulledForDays=30", "EnableQuayCache=false"]

    def make_local(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tools.stack_player", *arguments, *extra]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)

    first = make_local("--seed-repositories", "2")
    second = make_local("--sweep-now")

    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert "Image expiry sweeps" not in first.stdout
    assert "EcrPublicCacheImageExpiry (ecr-public): 7 images expired, 148 MB freed" in second.stdout  # and an index
    assert "K8sCacheImageExpiry (k8s): 4 images expired, 90 MB freed" in second.stdout
    in_use = "kept, in use: ecr-public/seed/in-use:function (Lambda function ecr-public-seed-in-use), "
    assert in_use + "ecr-public/seed/in-use:service (ECS service local/ecr-public-seed-in-use)" in second.stdout
    saved = json.loads((tmp_path / "state" / "registry.json").read_text())
    # the two caches' sweeps, and the provider stack's health check (in the default group: make local keeps it too)
    assert sorted(schedule["GroupName"] == "default" for schedule in saved["schedules"]) == [False, False, True]
    # the two seeded repositories, and per swept namespace the two images in use (kept)
    assert sorted(len(repository["images"]) for repository in saved["repositories"]) == [2, 2, 2, 2]


EXPIRY_TEMPLATE = """
Parameters:
  DryRun: {Type: String, Default: 'true'}
  KeepLatestImages: {Type: String, Default: '1'}
  ScheduleExpression: {Type: String, Default: 'rate(1 day)'}
Resources:
  QuayExpiry:
    Type: Custom::CacheImageExpiry
    Properties:
      ServiceToken: !ImportValue ecr-pull-through-cache-ServiceToken
      RepositoryPrefix: quay
      ExpireAfterDaysWithoutPull: 30
      KeepLatestImages: !Ref KeepLatestImages
      DeleteEmptyRepositories: true
      DryRun: !Ref DryRun
      ScheduleExpression: !Ref ScheduleExpression
Outputs:
  ImagesToExpire:
    Value: !GetAtt QuayExpiry.ImagesToExpire
"""


def test_a_deployed_expiry_through_create_update_and_delete(play: Play, local_aws: LocalAws, tmp_path: Path) -> None:
    assert play().succeeded  # the provider stack, whose ServiceToken the expiry's stack imports
    template = tmp_path / "expiry.yaml"
    template.write_text(EXPIRY_TEMPLATE)

    def days(count: float) -> datetime:
        return NOW - timedelta(days=count)

    for tag, repository, pulled in (
        ("a", "quay/org/app", days(90)),
        ("b", "quay/org/app", days(60)),
        ("c", "quay/org/app", days(3)),
        ("x", "quay/org/stale", days(100)),
        ("y", "quay/org/stale", days(50)),
        ("old", "ecr-public/library/old", days(200)),  # another cache's namespace
        ("old", "quay-mirror/app", days(200)),  # a namespace that only starts like ours
        ("old", "team/app", days(300)),  # an application's repository
    ):
        seed_image(ACCOUNT_ID, REGION, repository, pushed_at=days(400), last_pulled_at=pulled, tags=(tag,), name=tag)
    stack = {"template": template, "samconfig": tmp_path / "none.toml"}
    outside = {name: tags for name, tags in images(local_aws).items() if not name.startswith("quay/")}

    created = play(**stack, sweep_now=True)  # DryRun: finds, deletes nothing
    (name,) = schedules(local_aws)
    assert created.succeeded, render(created.stack, created.registry)
    assert created.stack.outputs["ImagesToExpire"] == "3"  # a, b, x (KeepLatestImages 1 keeps c and y)
    assert created.sweeps[0].dry_run
    assert images(local_aws)["quay/org/app"] == {"a", "b", "c"}

    updated = play("DryRun=false", "ScheduleExpression='rate(12 hours)'", **stack, sweep_now=True)
    assert updated.succeeded, render(updated.stack, updated.registry)
    assert schedules(local_aws)[name]["ScheduleExpression"] == "rate(12 hours)"  # the same schedule, changed
    assert (
        json.loads(schedules(local_aws)[name]["Target"]["Input"])["CacheProviderImageExpiry"]["settings"]["dry_run"]
        is False
    )
    assert swept(updated)[0] == 3
    assert images(local_aws)["quay/org/app"] == {"c"}
    assert images(local_aws)["quay/org/stale"] == {"y"}  # KeepLatestImages 1

    emptied = play("DryRun=false", "ScheduleExpression='rate(12 hours)'", "KeepLatestImages=0", **stack, sweep_now=True)
    assert emptied.succeeded
    assert emptied.sweeps[0].repositories_deleted == ["quay/org/stale"]  # left empty: DeleteEmptyRepositories
    assert images(local_aws)["quay/org/app"] == {"c"}  # pulled 3 days ago

    deleted = play(**stack, delete=True)
    assert deleted.succeeded
    assert schedules(local_aws) == {}
    assert images(local_aws)["quay/org/app"] == {"c"}  # images stay after Delete
    assert {name: tags for name, tags in images(local_aws).items() if not name.startswith("quay/")} == outside


def test_the_benchmark_runs_and_both_sweepers_expire_the_same_images() -> None:
    bench = subprocess.run(
        [sys.executable, "bench/image_expiry.py", "--quick", "--latency", "0.001"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )

    lines = (bench.stdout + bench.stderr).splitlines()
    assert '"_aws"' not in bench.stdout  # the report only, not the provider's metrics
    runs = [line for line in lines if ": DONE, " in line]
    assert [line.split(":")[0].strip() for line in runs] == [
        "latency, bare boto3", "latency,   provider", "rate-limit, bare boto3", "rate-limit,   provider"
    ]  # fmt: skip
    expired = {line.split("; ")[1].split(" expired")[0] for line in runs}
    assert expired == {"481"}  # the same images, by either sweeper, in either condition
