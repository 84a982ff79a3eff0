"""Image references and platforms as Custom::CacheWarmUp reads them (the distribution spec's grammar)."""

from __future__ import annotations

import pytest

from ecr_cache_provider.grammar.image_reference import BadReference, ImageReference, Platform, parse, parse_platform

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("library/nginx:1.27", ImageReference("library/nginx:1.27", "library/nginx", "1.27")),
        (f"nginx@{DIGEST}", ImageReference(f"nginx@{DIGEST}", "nginx", "", DIGEST)),
        (
            f"a/b-c/d__e:v1.0_rc@{DIGEST}",
            ImageReference(f"a/b-c/d__e:v1.0_rc@{DIGEST}", "a/b-c/d__e", "v1.0_rc", DIGEST),
        ),
    ],
)
def test_references_that_docker_pull_takes(text: str, expected: ImageReference) -> None:
    assert parse(text, "docker-hub") == expected
    assert expected.cached_repository("docker-hub") == f"docker-hub/{expected.repository}"
    assert expected.pulled_by == (expected.tag or expected.digest)


@pytest.mark.parametrize(
    "text",
    [
        "library/nginx",  # neither tag nor digest: latest is not assumed
        "Library/nginx:1",
        "library//nginx:1",
        "library/nginx:.hidden",
        "library/nginx:" + "t" * 129,
        "library/nginx@sha256:abc",
        "library/nginx@md5:" + "0" * 32,
        "/nginx:1",
        "nginx:1 ",
        "x/" * 130 + "y:1",  # the cached repository's name would pass ECR's 256 characters
    ],
)
def test_references_that_are_refused(text: str) -> None:
    with pytest.raises(BadReference):
        parse(text, "docker-hub")


def test_platforms() -> None:
    assert parse_platform("linux/arm/v7") == Platform("linux", "arm", "v7")
    assert str(parse_platform("linux/amd64")) == "linux/amd64"
    assert parse_platform("linux/arm64").matches({"os": "linux", "architecture": "arm64", "variant": "v8"})
    assert not parse_platform("linux/arm/v7").matches({"os": "linux", "architecture": "arm", "variant": "v6"})
    assert not parse_platform("linux/amd64").matches({"os": "windows", "architecture": "amd64"})
    for bad in ("amd64", "linux/", "Linux/amd64", "linux/amd64/v1/x"):
        with pytest.raises(BadReference):
            parse_platform(bad)


def test_warm_up_attributes_stay_within_cloudformations_answer() -> None:
    import json

    from ecr_cache_provider.engine.warm_up import WARMED, Outcome
    from ecr_cache_provider.types.cache_warm_up import attributes

    outcomes = [Outcome(f"library/image-{n:03d}-" + "x" * 300 + ":1", WARMED, digest=DIGEST) for n in range(100)]

    data = attributes(outcomes)

    assert len(json.dumps(data)) < 3000  # CloudFormation takes 4,096 bytes in all
    assert data["WarmedImages"] == "100"
    listed = json.loads(data["Digests"])
    assert 0 < len(listed) < 100
    assert data["DigestsNotListed"] == f"{100 - len(listed)} images (the answer is limited to 4,096 bytes)"
