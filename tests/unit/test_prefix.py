"""ECR's repository prefix rules, called directly."""

from __future__ import annotations

import pytest

from ecr_cache_provider.grammar.prefix import ROOT, covers, is_prefix, without_trailing_slash


@pytest.mark.parametrize("prefix", ["quay", "docker-hub", "team/cache", "a.b_c__d--e", "quay/", ROOT])
def test_prefixes_ecr_accepts(prefix: str) -> None:
    assert is_prefix(prefix)


@pytest.mark.parametrize(
    "prefix", ["", "Quay", "-quay", "quay-", "a//b", "/quay", "quay\n", "failed-create:3f2a", "a_-b"]
)
def test_prefixes_ecr_rejects(prefix: str) -> None:
    assert not is_prefix(prefix)


@pytest.mark.parametrize(("given", "normal"), [("quay/", "quay"), ("quay", "quay"), ("a/b/", "a/b"), (ROOT, ROOT)])
def test_a_trailing_slash_is_implied(given: str, normal: str) -> None:
    assert without_trailing_slash(given) == normal


@pytest.mark.parametrize(
    ("prefix", "repository", "covered"),
    [
        ("docker-hub", "docker-hub/library/nginx", True),
        ("docker-hub", "docker-hubx/library/nginx", False),
        ("docker-hub", "docker-hub", False),
        ("team/cache", "team/cache/alpine", True),
        ("team/cache", "team/other/alpine", False),
        (ROOT, "anything/at/all", True),
        (ROOT, "nginx", True),
    ],
)
def test_what_a_prefix_covers(prefix: str, repository: str, covered: bool) -> None:
    assert covers(prefix, repository) is covered
