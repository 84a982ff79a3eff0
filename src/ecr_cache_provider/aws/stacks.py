"""The one place that asks CloudFormation about a stack: which operation it is in (DescribeStacks).

A custom resource's Delete does not say why it was sent. The stack's status does (CloudFormation user guide, stack
status codes; API reference, DescribeStacks and StackStatus): a Delete sent while the stack is ROLLBACK_IN_PROGRESS
(its creation failed), UPDATE_ROLLBACK_IN_PROGRESS or UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS (an update
failed) undoes what the failed operation made; one sent while it is DELETE_IN_PROGRESS (the stack is deleted) or
UPDATE_COMPLETE_CLEANUP_IN_PROGRESS (the resource left the template, or was replaced) removes what the stack had.
A deleted stack is still described by its StackId (the ARN every request carries), so the status is found
whatever the stack's state.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from ecr_cache_provider.deadline import Deadline

logger = logging.getLogger(__name__)

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=10)

# The statuses in which CloudFormation undoes a failed stack operation.
ROLLING_BACK = frozenset(
    {"ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"}
)


def stack_status(stack_id: str, deadline: Deadline, region: str | None = None, client: Any | None = None) -> str | None:
    """The stack's status; None when CloudFormation cannot say (no permission, no answer): the caller then acts as
    when it cannot tell why it is asked, and leaves alone what it cannot prove it may remove."""
    deadline.check("calling CloudFormation DescribeStacks")
    try:
        cloudformation = client or boto3.client("cloudformation", region_name=region, config=CLIENT_CONFIG)
        stacks = cloudformation.describe_stacks(StackName=stack_id).get("Stacks", [])
    except (ClientError, BotoCoreError) as error:
        logger.warning("The stack's status could not be read", extra={"error": str(error)})
        return None
    return str(stacks[0]["StackStatus"]) if stacks else None


def is_rolling_back(status: str | None) -> bool:
    return status in ROLLING_BACK


def is_removing(status: str | None) -> bool:
    """Whether a Delete removes what the stack had: the stack is deleted (DELETE_IN_PROGRESS) or the resource left
    the template, or was replaced (UPDATE_COMPLETE_CLEANUP_IN_PROGRESS)."""
    return status in ("DELETE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")


def is_undoing(status: str | None) -> bool:
    """Whether the stack is rolling back or being deleted: CloudFormation then sends no Create and no Update that
    goes forward."""
    return is_rolling_back(status) or status == "DELETE_IN_PROGRESS"
