"""The one place that talks to EventBridge Scheduler: the image expiry schedules, in the provider's schedule group."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ecr_cache_provider.failures import ResourceFailure, aws_message

if TYPE_CHECKING:
    from ecr_cache_provider.deadline import Deadline

# Set by template.yaml: the provider's schedule group, and the role the scheduler assumes to invoke the function.
GROUP_VARIABLE = "SCHEDULE_GROUP"
ROLE_VARIABLE = "SCHEDULER_ROLE_ARN"
CLIENT_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 6}, connect_timeout=5, read_timeout=10)


@dataclass(frozen=True)
class Schedule:
    """A schedule that invokes the provider function with `payload` as its event."""

    name: str
    expression: str
    target_arn: str
    payload: dict[str, Any]
    description: str = ""


class SchedulerGateway:
    """Create, change and delete schedules in the provider's group, each call stopping in time to answer."""

    def __init__(self, deadline: Deadline, region: str | None = None, client: Any | None = None) -> None:
        self.deadline = deadline
        self.group = os.environ.get(GROUP_VARIABLE, "")
        self.role_arn = os.environ.get(ROLE_VARIABLE, "")
        if not (self.group and self.role_arn):
            raise ResourceFailure(
                f"The provider's schedule group or scheduler role is not configured ({GROUP_VARIABLE}, {ROLE_VARIABLE})"
            )
        self.client = client or boto3.client("scheduler", region_name=region or None, config=CLIENT_CONFIG)

    def find(self, name: str) -> dict[str, Any] | None:
        """The schedule as the scheduler describes it; None when there is none."""
        return self._call_unless_missing(self.client.get_schedule, Name=name, GroupName=self.group)

    def put(self, schedule: Schedule) -> None:
        """Create the schedule, or change it when it exists."""
        settings = {
            "Name": schedule.name,
            "GroupName": self.group,
            "Description": schedule.description,
            "ScheduleExpression": schedule.expression,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": schedule.target_arn,
                "RoleArn": self.role_arn,
                "Input": json.dumps(schedule.payload),
                # A sweep that failed is run again by the next schedule; retrying it at once would only throttle.
                "RetryPolicy": {"MaximumRetryAttempts": 0},
            },
        }
        operation = self.client.update_schedule if self.find(schedule.name) else self.client.create_schedule
        self._call(operation, **settings)

    def delete(self, name: str) -> bool:
        """Delete the schedule; False when there was none."""
        return self._call_unless_missing(self.client.delete_schedule, Name=name, GroupName=self.group) is not None

    def _call(self, operation: Callable[..., dict[str, Any]], **arguments: Any) -> dict[str, Any]:
        self.deadline.check("calling EventBridge Scheduler")
        try:
            return operation(**arguments)
        except ClientError as error:
            details = error.response.get("Error", {})
            message = aws_message(str(details.get("Message", "")))
            raise SchedulerError(str(details.get("Code", "Unknown")), message) from None
        except BotoCoreError as error:
            raise SchedulerError(type(error).__name__, str(error)) from None

    def _call_unless_missing(self, operation: Callable[..., dict[str, Any]], **arguments: Any) -> dict[str, Any] | None:
        try:
            return self._call(operation, **arguments)
        except SchedulerError as error:
            if error.code == "ResourceNotFoundException":
                return None
            raise


class SchedulerError(ResourceFailure):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"EventBridge Scheduler: {code}: {message}" if message else f"EventBridge Scheduler: {code}")
        self.code = code
