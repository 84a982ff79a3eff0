"""Work too long for one invocation continues in the next: the provider invokes its own function asynchronously
with the original request and a record of progress, and only the invocation that finishes answers CloudFormation.

Why not crhelper's polling: it polls at minute granularity through an EventBridge rule whose target input holds
the whole event, ResponseURL included, readable by anyone who can describe the rule. An asynchronous invocation
starts the next step at once and keeps the event inside Lambda's own payload.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

import boto3
from botocore.config import Config

# The key under which the progress travels in the follow-up invocation's event.
PROGRESS_KEY = "CacheProviderProgress"

# A safety net against a loop: no request may take more than this many invocations.
MAX_INVOCATIONS = 100


@dataclass(frozen=True)
class Progress:
    """Where a long piece of work stands: every item up to `cursor` is done except those still `waiting` for a
    retry (ECR throttled them); the counts so far, and how many calls ECR throttled."""

    cursor: str = ""
    updated: int = 0
    skipped: int = 0
    invocation: int = 1
    waiting: tuple[str, ...] = ()
    throttled: int = 0
    stage: str = ""  # which part of a request's work the cursor is in, when it has several (a Delete's)
    notes: tuple[str, ...] = ()  # what each item came to so far, for the answer (Custom::CacheWarmUp's images)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Progress | None:
        saved = event.get(PROGRESS_KEY)
        if not isinstance(saved, dict):
            return None
        # Fields this version does not know are left out; those an earlier version did not send keep their default.
        known = {field.name for field in fields(cls)}
        values = {name: value for name, value in saved.items() if name in known}
        for name in ("waiting", "notes"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


class ContinueLater(Exception):
    """Raised by a resource type when its work must go on in a follow-up invocation.

    `physical_id` names what the work has made so far, should the hand-off itself fail."""

    def __init__(self, progress: Progress, physical_id: str) -> None:
        super().__init__(f"continuing in invocation {progress.invocation + 1} after {progress.cursor!r}")
        self.progress = progress
        self.physical_id = physical_id


def follow_up_event(event: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """The request again, with the progress made, for the next invocation."""
    return {**event, PROGRESS_KEY: asdict(progress) | {"invocation": progress.invocation + 1}}


def hand_off(event: dict[str, Any], function_arn: str, progress: Progress) -> None:
    """Invoke this function again, asynchronously, with the request and the progress made."""
    client = boto3.client("lambda", config=Config(retries={"mode": "standard", "max_attempts": 5}))
    payload = json.dumps(follow_up_event(event, progress)).encode()
    client.invoke(FunctionName=function_arn, InvocationType="Event", Payload=payload)
