"""The ownership table as the ledger's parts share it: who owns (Owner), what is owned (Thing), and each call
stopping in time for the Lambda to answer. A conditional write that does not apply raises ConditionFailed."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ecr_cache_provider.failures import ResourceFailure, aws_message

if TYPE_CHECKING:
    from ecr_cache_provider.deadline import Deadline


logger = logging.getLogger(__name__)

TABLE_VARIABLE = "OWNERSHIP_TABLE"
CLIENT_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=10)
# The claim's owner may change only when nobody holds it, or when the same resource already does.
FREE_OR_SAME_RESOURCE = "attribute_not_exists(Id) OR (StackId = :stack AND LogicalResourceId = :logical)"
SAME_RESOURCE = "StackId = :stack AND LogicalResourceId = :logical"
# DynamoDB's batch sizes (botocore model): BatchWriteItem takes 25 requests, BatchGetItem 100 keys.
BATCH_WRITE_SIZE = 25
BATCH_GET_SIZE = 100
BATCH_OPERATIONS = frozenset({"batch_get_item", "batch_write_item"})
# Pauses while DynamoDB leaves part of a batch unprocessed (its throughput ran out), growing, with jitter.
UNPROCESSED_RETRY_BASE_SECONDS = 0.05
UNPROCESSED_RETRY_MAX_SECONDS = 2.0


@dataclass(frozen=True)
class Owner:
    """A CloudFormation resource, and the request with which it claimed a thing. The resource type is recorded on
    what it claims (so that a Delete cleaning up by owner touches only what its own type makes) but is no part of
    who the owner is."""

    stack_id: str
    logical_id: str
    request_id: str
    resource_type: str = field(default="", compare=False)

    def is_same_resource(self, other: Owner) -> bool:
        return (self.stack_id, self.logical_id) == (other.stack_id, other.logical_id)

    def __str__(self) -> str:
        return f"{self.logical_id} in stack {stack_name(self.stack_id)}"


def stack_name(stack_id: str) -> str:
    """A StackId is arn:...:stack/<name>/<id>: the name is what a person recognises."""
    parts = stack_id.split("/")
    return parts[1] if len(parts) > 2 else stack_id


@dataclass(frozen=True)
class Thing:
    """Something the provider makes in the account: its kind and its name (e.g. a rule's prefix)."""

    kind: str  # as a person says it: "pull-through cache rule", "repository creation template"
    name: str

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


class OwnedByAnother(ResourceFailure):
    """Another resource holds the claim: this one may neither make nor change the thing."""

    def __init__(self, thing: Thing, owner: Owner) -> None:
        super().__init__(f"The {thing} belongs to {owner} (claimed by request {owner.request_id})")
        self.owner = owner


class ConditionFailed(Exception):
    """The conditional write did not apply."""


class Table:
    """The ownership table: each call stops in time for the Lambda to answer, and names the table when it fails."""

    def __init__(self, deadline: Deadline, table: str | None = None, client: Any | None = None) -> None:
        self.deadline = deadline
        self.table = table or os.environ.get(TABLE_VARIABLE, "")
        if not self.table:
            raise ResourceFailure(f"The provider's ownership table is not configured ({TABLE_VARIABLE} is not set)")
        self.client = client or boto3.client("dynamodb", config=CLIENT_CONFIG)

    # Everything a resource owns

    def owned(self, owner: Owner, kinds: Iterable[str]) -> Iterator[list[dict[str, Any]]]:
        """The ledger's items of these kinds that `owner`'s resource holds (claims, repository records), page by
        page. One consistent Scan of the table, filtered: it sees what a request wrote a moment ago, which a
        global secondary index (eventually consistent) could miss, and a Delete is what asks."""
        values = {f":kind{number}": {"S": kind} for number, kind in enumerate(kinds)}
        arguments: dict[str, Any] = {
            "ConsistentRead": True,
            "FilterExpression": f"StackId = :stack AND LogicalResourceId = :logical AND Kind IN ({', '.join(values)})",
            "ExpressionAttributeValues": owner_values(owner) | values,
        }
        while True:
            response = self._call("scan", **arguments)
            yield list(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_SIZE):
            batch = requests[start : start + BATCH_WRITE_SIZE]
            attempt = 0
            while batch:
                response = self._call("batch_write_item", RequestItems={self.table: batch})
                batch = response.get("UnprocessedItems", {}).get(self.table, [])
                attempt = self._pause_for_unprocessed(batch, attempt)

    def _pause_for_unprocessed(self, left: list[Any], attempt: int) -> int:
        """DynamoDB left part of a batch unprocessed (its throughput ran out): pause before sending it again."""
        if not left:
            return 0
        pause = min(UNPROCESSED_RETRY_MAX_SECONDS, UNPROCESSED_RETRY_BASE_SECONDS * 2**attempt)
        time.sleep(pause * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not cryptography
        return attempt + 1

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        self.deadline.check(f"calling DynamoDB {operation}")
        if operation not in BATCH_OPERATIONS:  # a batch names its table in RequestItems
            arguments["TableName"] = self.table
        try:
            response: dict[str, Any] = getattr(self.client, operation)(**arguments)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "Unknown"))
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed from None
            message = aws_message(error.response.get("Error", {}).get("Message", ""))
            raise ResourceFailure(f"Ownership table {self.table}: {code}: {message}") from None
        except BotoCoreError as error:
            raise ResourceFailure(f"Ownership table {self.table}: {type(error).__name__}: {error}") from None
        return response

    def _setowner_from(
        self,
        thing: Thing,
        owner: Owner,
        condition: str,
        values: dict[str, Any],
        extra: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Write the owner into the thing's claim when `condition` holds; other attributes of the claim stay."""
        fields = (
            {
                "Kind": thing.kind,
                "Name": thing.name,
                "StackId": owner.stack_id,
                "LogicalResourceId": owner.logical_id,
                "RequestId": owner.request_id,
                "ClaimedAt": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            | ({"ResourceType": owner.resource_type} if owner.resource_type else {})
            | (extra or {})
        )
        names = {f"#f{index}": name for index, name in enumerate(fields)}
        assignments = ", ".join(f"#f{index} = :f{index}" for index in range(len(fields)))
        return self._call(
            "update_item",
            Key=thing_key(thing),
            UpdateExpression=f"SET {assignments}",
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values
            | {f":f{index}": {"S": value} for index, value in enumerate(fields.values())},
            ReturnValues="ALL_OLD",
        )


def thing_key(thing: Thing) -> dict[str, Any]:
    return {"Id": {"S": thing.key}}


def owner_values(owner: Owner) -> dict[str, Any]:
    return {":stack": {"S": owner.stack_id}, ":logical": {"S": owner.logical_id}}


def owner_from(item: dict[str, Any] | None) -> Owner | None:
    if not item:
        return None
    return Owner(
        item["StackId"]["S"],
        item["LogicalResourceId"]["S"],
        item.get("RequestId", {}).get("S", ""),
        item.get("ResourceType", {}).get("S", ""),
    )
