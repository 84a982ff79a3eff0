"""The health check's pure parts: the rotating repository sample, its options read from the environment (strings:
"false" is false), statements compared as IAM reads them, and the order a continuation's cursor follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecr_cache_provider.aws.ledger import DeclaredResource, Owner
from ecr_cache_provider.engine.drift_checks import _normal
from ecr_cache_provider.engine.health_check import Options, subjects_of
from ecr_cache_provider.engine.repository_sample import sample

NAMES = [f"hub/library/image-{index:02d}" for index in range(25)]
HOUR = datetime(2026, 12, 5, 3, tzinfo=UTC)


def test_a_sample_is_bounded_and_the_same_within_an_hour() -> None:
    first = sample(NAMES, 10, HOUR)
    assert len(first) == 10
    assert sample(NAMES, 10, HOUR + timedelta(minutes=59)) == first
    assert sample(list(reversed(NAMES)), 10, HOUR) == first  # the order it was listed in does not matter


def test_hourly_samples_cover_the_whole_namespace() -> None:
    seen: set[str] = set()
    for hour in range(3):  # 25 repositories, 10 an hour: three hours
        seen |= set(sample(NAMES, 10, HOUR + timedelta(hours=hour)))
    assert seen == set(NAMES)
    assert sample(NAMES, 10, HOUR) != sample(NAMES, 10, HOUR + timedelta(hours=1))


def test_a_small_namespace_is_sampled_whole_and_a_size_of_zero_samples_nothing() -> None:
    assert sample(NAMES[:3], 10, HOUR) == NAMES[:3]
    assert sample(NAMES, 0, HOUR) == []
    assert sample([], 10, HOUR) == []


@pytest.mark.parametrize(
    ("repair", "size", "expected"),
    [
        (None, None, Options(repair=False, sample_size=10)),
        ("false", "0", Options(repair=False, sample_size=0)),
        ("False", "3", Options(repair=False, sample_size=3)),
        ("true", "25", Options(repair=True, sample_size=25)),
        (" TRUE ", "many", Options(repair=True, sample_size=10)),
        ("yes", "-4", Options(repair=False, sample_size=0)),
    ],
)
def test_the_options_are_read_as_strings(
    monkeypatch: pytest.MonkeyPatch, repair: str | None, size: str | None, expected: Options
) -> None:
    for name, value in (("HEALTH_CHECK_REPAIR_DRIFT", repair), ("HEALTH_CHECK_SAMPLE_SIZE", size)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert Options.from_environment() == expected


def test_statements_compare_as_iam_reads_them() -> None:
    declared = {"Sid": "A", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["ecr:CreateRepository"]}
    assert _normal(declared) == _normal(declared | {"Action": "ecr:CreateRepository"})
    assert _normal(declared) != _normal(declared | {"Action": ["ecr:CreateRepository", "ecr:ReplicateImage"]})


def test_each_declared_kind_is_a_subject_in_a_stable_order() -> None:
    stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1"
    declared = {
        "RegistryPolicyStatements": {"A": {}},
        "ScanningFilters": {"frequency": "SCAN_ON_PUSH", "filters": ["hub/*"], "allow_enhanced": False},
        "Repositories": {"namespaces": ["hub"], "settings": {"lifecycle_policy": {}}},
    }
    subjects = subjects_of(DeclaredResource(Owner(stack, "Settings", "r1"), declared, "r1"))
    assert [(item.kind, item.prefix) for item in subjects] == [
        ("registry policy statements", "registry"),
        ("registry scanning filters", "registry"),
        ("cached repositories", "hub"),
    ]
    assert len({item.key for item in subjects}) == 3
