"""`make local --warm`: once the stack is played, a Custom::CacheWarmUp pulls images through the local ECR endpoint
from the local upstream registry, and each image is reported as ECR then has it; a bad image reference is refused
before anything starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulation.registry import fixtures
from tests.stack.conftest import ROOT, STACK_NAME, Play
from tools.stack_player import LocalAws
from tools.stack_player.state import state_file
from tools.stack_player.warm import FIXTURES

pytestmark = pytest.mark.stack

TAG, INDEX, MISSING = "docker/library/nginx:1.27", "docker/library/redis:7.4", "docker/library/nope:1"


def cached_repository(image: str) -> str:
    return "ecr-public/" + image.partition(":")[0]


def fixture_digest(image: str) -> str:
    """The digest the local upstream serves for a fixture image, made again from its definition."""
    for repository, tag, platforms, layers in FIXTURES:
        if f"{repository}:{tag}" == image:
            made = fixtures.image(image, layers) if platforms is None else fixtures.index(image, layers, platforms)
            return made.digest
    raise KeyError(image)


def player(state: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tools.stack_player", "--state-dir", str(state), *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_make_local_warm_shows_a_tag_an_index_and_a_missing_image_and_ecr_holds_the_two(tmp_path: Path) -> None:
    state = tmp_path / "state"

    local = player(state, "--warm", f"{TAG},{INDEX}", "--warm", MISSING)

    assert local.returncode == 1, local.stdout + local.stderr  # an image not warmed fails the warm-up
    assert "Traceback" not in local.stderr, local.stderr
    report = local.stdout[local.stdout.index("Warm-up of 3 images") :].splitlines()
    assert report == [
        "Warm-up of 3 images through ecr-public (Custom::CacheWarmUp): FAILED",
        f"  {TAG}  manifest pulled; layers 3/3 available in ECR; {fixture_digest(TAG)}",
        f"  {INDEX}   index pulled, 2/2 platform manifests; layers 4/4 available in ECR; {fixture_digest(INDEX)}",
        f"  {MISSING}      FAILED: not found upstream (MANIFEST_UNKNOWN)",
    ]
    # The registry as make local keeps it: the warmed repositories (from the cache's creation template), not the
    # missing image's; the warm-up's consumer stack deleted once reported.
    registry = json.loads((state / "registry.json").read_text())
    names = {repository["name"] for repository in registry["repositories"]}
    assert {cached_repository(TAG), cached_repository(INDEX)} <= names
    assert cached_repository(MISSING) not in names
    assert not state_file(state, f"{STACK_NAME}-warm-up").exists()


def cached_digests(ecr: Any, repository: str) -> set[str]:
    return {image["imageDigest"] for image in ecr.describe_images(repositoryName=repository)["imageDetails"]}


def test_a_warm_up_of_a_tag_and_an_index_succeeds_and_ecr_reports_every_manifest(
    play: Play, local_aws: LocalAws
) -> None:
    result = play(warm=[TAG, INDEX])

    assert result.succeeded, result.warm_up and result.warm_up.render()
    assert result.warm_up is not None
    assert [(line.image, line.ok) for line in result.warm_up.lines] == [(TAG, True), (INDEX, True)]
    ecr = local_aws.client("ecr")
    assert cached_digests(ecr, cached_repository(TAG)) == {fixture_digest(TAG)}
    index = json.loads(
        ecr.batch_get_image(repositoryName=cached_repository(INDEX), imageIds=[{"imageTag": "7.4"}])["images"][0][
            "imageManifest"
        ]
    )
    platforms = {entry["digest"] for entry in index["manifests"]}
    assert cached_digests(ecr, cached_repository(INDEX)) == {fixture_digest(INDEX), *platforms}
    names = {repository["repositoryName"] for repository in ecr.describe_repositories()["repositories"]}
    assert cached_repository(MISSING) not in names


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["--warm", "docker/library/Nginx:1.27"], "error: --warm: 'docker/library/Nginx:1.27': not repository:tag"),
        (["--warm", "docker/library/nginx"], "error: --warm: 'docker/library/nginx': names no tag or digest"),
        (["--warm", f"{TAG},"], "error: --warm: '': not repository:tag"),
        (["--delete", "--warm", TAG], "error: --warm plays a warm-up once the stack is played: not with --delete"),
    ],
)
def test_a_bad_image_reference_is_refused_before_anything_starts(
    tmp_path: Path, arguments: list[str], error: str
) -> None:
    state = tmp_path / "state"

    refused = player(state, *arguments)

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.splitlines()[0].startswith(error), refused.stderr
    assert refused.stdout == ""
    assert not state.exists()
