"""The progress record a follow-up invocation carries, called directly."""

from __future__ import annotations

import json

from ecr_cache_provider.continuation import PROGRESS_KEY, Progress, follow_up_event


def test_a_follow_up_event_carries_the_progress_to_the_next_invocation() -> None:
    event = {"RequestType": "Create", "RequestId": "r-1"}

    follow_up = follow_up_event(event, Progress(cursor="quay/a", updated=3, skipped=1, invocation=2))

    assert Progress.from_event(follow_up) == Progress(cursor="quay/a", updated=3, skipped=1, invocation=3)
    assert {name: value for name, value in follow_up.items() if name != PROGRESS_KEY} == event


def test_the_first_invocation_has_no_progress() -> None:
    assert Progress.from_event({"RequestType": "Create"}) is None


def test_an_event_from_an_earlier_version_still_reads() -> None:
    """An invocation in flight during a deployment carries fields this version no longer has ("phase") and lacks
    those it added ("waiting", "throttled")."""
    event = {PROGRESS_KEY: {"phase": "apply", "cursor": "quay/b", "updated": 7, "skipped": 0, "invocation": 4}}

    assert Progress.from_event(event) == Progress(cursor="quay/b", updated=7, skipped=0, invocation=4)


def test_repositories_waiting_for_a_retry_and_the_throttled_calls_travel_as_json() -> None:
    progress = Progress(cursor="quay/c", updated=5, invocation=2, waiting=("quay/a", "quay/b"), throttled=40)

    follow_up = json.loads(json.dumps(follow_up_event({"RequestType": "Create"}, progress)))

    assert Progress.from_event(follow_up) == Progress(
        cursor="quay/c", updated=5, invocation=3, waiting=("quay/a", "quay/b"), throttled=40
    )
