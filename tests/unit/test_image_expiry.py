"""The image expiry decision, directly: ages, the 2-day floor, indexes with their manifests, KeepLatestImages,
archived images, and what the sweep may touch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ecr_cache_provider.aws.ecr import INDEX_MEDIA_TYPES, ImageRecord
from ecr_cache_provider.engine.expiry_sweep import (
    ExpirySettings,
    decide,
    has_candidates,
    indexes_to_read,
)

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def image(digest: str, pulled_days_ago: float | None, pushed_days_ago: float = 400, **extra: Any) -> ImageRecord:
    pulled = NOW - timedelta(days=pulled_days_ago) if pulled_days_ago is not None else None
    return ImageRecord(digest=digest, pushed_at=NOW - timedelta(days=pushed_days_ago), last_pulled_at=pulled, **extra)


def index(digest: str, pulled_days_ago: float | None, **extra: Any) -> ImageRecord:
    return image(digest, pulled_days_ago, media_type=INDEX_MEDIA_TYPES[0], **extra)


def expired_images(images: list[ImageRecord], children: dict[str, tuple[str, ...]], settings: ExpirySettings,
                   now: datetime) -> list[ImageRecord]:  # fmt: skip
    """The images the decision deletes (what it keeps for being in use is tested through the sweep)."""
    return decide(images, children, settings, now)[0]


def digests(images: list[ImageRecord]) -> list[str]:
    return [found.digest for found in images]


SETTINGS = ExpirySettings(prefix="docker-hub", expire_after_days=30)


def test_expires_by_last_pull_and_keeps_recent_pulls() -> None:
    images = [image("old", 31), image("recent", 29), image("exactly", 30)]
    assert digests(expired_images(images, {}, SETTINGS, NOW)) == ["old"]


def test_never_pulled_counts_from_push() -> None:
    images = [image("cached-long-ago", None, pushed_days_ago=45), image("cached-lately", None, pushed_days_ago=3)]
    assert digests(expired_images(images, {}, SETTINGS, NOW)) == ["cached-long-ago"]


def test_two_day_floor_whatever_n_says() -> None:
    one_day = ExpirySettings(prefix="docker-hub", expire_after_days=1)
    images = [
        image("a-day-and-a-half", 1.5),
        image("three-days", 3),
        image("pushed-yesterday", None, pushed_days_ago=1.5),
    ]
    assert digests(expired_images(images, {}, one_day, NOW)) == ["three-days"]


def test_index_and_manifests_live_together_judged_by_most_recent_pull() -> None:
    images = [index("idx", 90), image("amd64", 90), image("arm64", 5), image("lonely", 90)]
    expired = expired_images(images, {"idx": ("amd64", "arm64")}, SETTINGS, NOW)
    assert digests(expired) == ["lonely"]  # arm64 pulled 5 days ago keeps the index and amd64


def test_expired_index_goes_first_then_its_manifests() -> None:
    images = [image("amd64", 90), index("idx", 90), image("arm64", 60)]
    assert digests(expired_images(images, {"idx": ("amd64", "arm64")}, SETTINGS, NOW)) == ["idx", "amd64", "arm64"]


def test_manifest_shared_by_a_kept_index_is_kept_with_both() -> None:
    images = [index("old-idx", 90), index("new-idx", 1), image("shared", 90), image("old-only", 90)]
    children = {"old-idx": ("shared", "old-only"), "new-idx": ("shared",)}
    assert expired_images(images, children, SETTINGS, NOW) == []


def test_an_unread_index_protects_every_manifest_no_read_index_references() -> None:
    images = [index("recent-idx", 1), index("old-idx", 90), image("old-child", 90), image("maybe-child", 90)]
    expired = expired_images(images, {"old-idx": ("old-child",)}, SETTINGS, NOW)
    assert digests(expired) == ["old-idx", "old-child"]


def test_only_old_indexes_are_read() -> None:
    images = [index("recent-idx", 1), index("old-idx", 90), image("manifest", 90)]
    assert indexes_to_read(images, SETTINGS, NOW) == ["old-idx"]


def test_archived_images_and_their_groups_are_left_alone() -> None:
    images = [image("archived", 400, status="ARCHIVED"), index("idx", 90), image("child", 90, status="ARCHIVED")]
    assert expired_images(images, {"idx": ("child",)}, SETTINGS, NOW) == []
    assert not has_candidates([image("archived", 400, status="ARCHIVED")], SETTINGS, NOW)


def test_keep_latest_keeps_the_most_recently_pulled_images_whatever_their_age() -> None:
    keep_two = ExpirySettings(prefix="docker-hub", expire_after_days=30, keep_latest=2)
    images = [image("a", 100), image("b", 200), image("c", 300), index("idx", 50), image("child", 400)]
    expired = expired_images(images, {"idx": ("child",)}, keep_two, NOW)
    assert digests(expired) == ["b", "c"]  # idx (with its child) and a are the two most recently pulled


def test_namespace_rules() -> None:
    assert SETTINGS.sweeps("docker-hub/library/nginx")
    assert not SETTINGS.sweeps("docker-hubx/library/nginx")
    root = ExpirySettings(prefix="ROOT", expire_after_days=30, root_prefixes=("quay",))
    assert root.sweeps("quay/org/app")
    assert not root.sweeps("team/app")  # an application repository under ROOT is never swept by default
    assert ExpirySettings.from_input(root.to_input()) == root


def test_schedule_names_fit_the_scheduler_whatever_the_stack_name_and_logical_id() -> None:
    """EventBridge Scheduler: a schedule name has 1 to 64 of [0-9a-zA-Z-_.]; a stack name may have 128 characters
    and a logical id 255. Every resource (stack and logical id) gets its own name."""
    import re

    from ecr_cache_provider.contract import Request
    from ecr_cache_provider.types.cache_image_expiry import is_schedule_name, schedule_name

    stacks = [
        f"arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/0f1e2d3c-aaaa-bbbb-cccc-0123456789ab"
        for name in ("a" * 128, "a" * 127 + "b", "consumer")
    ]
    logical_ids = ["C" * 255, "C" * 254 + "D", "ImageExpiry"]
    names = {
        schedule_name(Request("Create", "Custom::CacheImageExpiry", logical_id, stack, "r-1", {}, {}, ""))
        for stack in stacks
        for logical_id in logical_ids
    }
    assert len(names) == len(stacks) * len(logical_ids)
    for name in names:
        assert re.fullmatch(r"[0-9a-zA-Z\-_.]{1,64}", name), name
        assert is_schedule_name(name)
