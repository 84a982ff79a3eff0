"""The ownership ledger: which resource owns each thing the provider manages, proved by a claim written before the
thing is made, never inferred from timestamps or matching settings.

One DynamoDB item per managed thing (a pull-through cache rule's prefix, a repository creation template's prefix,
a schedule, ...) in the table the provider stack creates (its name in OWNERSHIP_TABLE), shared by every stack that
uses the provider's ServiceToken. The item names the owner: StackId, LogicalResourceId and the RequestId that
claimed it. A conditional write lets exactly one claimant win, even when two stacks race for the same prefix.
"""

from __future__ import annotations

import logging
import os
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
# A lock is taken when nobody holds it or its holder's time ran out (a holder that stopped never releases it).
FREE_OR_EXPIRED = "attribute_not_exists(Id) OR ExpiresAt < :now"
# How long a lock holds without its holder releasing it: longer than one read-modify-write of a registry setting.
LOCK_SECONDS = 60
# Backoff while another request holds the lock, growing to the maximum, with jitter.
LOCK_RETRY_BASE_SECONDS = 0.05
LOCK_RETRY_MAX_SECONDS = 1.0


@dataclass(frozen=True)
class Owner:
    """A CloudFormation resource, and the request with which it claimed a thing."""

    stack_id: str
    logical_id: str
    request_id: str

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


# What a claim holds while a take-over is not settled (Ledger.take_over).
TAKE_OVER_ATTRIBUTES = ("TakenOverFrom", "PredecessorRequestId", "PredecessorSnapshot", "PredecessorDeleted")


@dataclass(frozen=True)
class TakeOver:
    """A claim taken by a resource from the one it replaces in the same stack, not settled yet."""

    successor: Owner
    predecessor: Owner
    snapshot: str
    settled: bool = False  # the predecessor was deleted: the successor owns the thing as if it had made it


class OwnedByAnother(ResourceFailure):
    """Another resource holds the claim: this one may neither make nor change the thing."""

    def __init__(self, thing: Thing, owner: Owner) -> None:
        super().__init__(f"The {thing} belongs to {owner} (claimed by request {owner.request_id})")
        self.owner = owner


class Ledger:
    """Claims in the ownership table, each call stopping in time for the Lambda to answer."""

    def __init__(self, deadline: Deadline, table: str | None = None, client: Any | None = None) -> None:
        self.deadline = deadline
        self.table = table or os.environ.get(TABLE_VARIABLE, "")
        if not self.table:
            raise ResourceFailure(f"The provider's ownership table is not configured ({TABLE_VARIABLE} is not set)")
        self.client = client or boto3.client("dynamodb", config=CLIENT_CONFIG)

    def owner_of(self, thing: Thing) -> Owner | None:
        response = self._call("get_item", Key=_key(thing), ConsistentRead=True)
        return _owner(response.get("Item"))

    def claim(self, thing: Thing, owner: Owner) -> Owner | None:
        """Record `owner` as the thing's owner; what held the claim before (None when nobody did).

        Succeeds when nobody holds the claim, or the same resource does (a replayed or a later request of it);
        raises OwnedByAnother, naming the owner, when another resource does."""
        for _ in range(3):  # a claim released between the two calls below is tried again
            try:
                response = self._set_owner(thing, owner, FREE_OR_SAME_RESOURCE, _resource_values(owner))
            except _ConditionFailed:
                holder = self.owner_of(thing)
                if holder is not None:
                    raise OwnedByAnother(thing, holder) from None
            else:
                return _owner(response.get("Attributes"))
        raise ResourceFailure(f"Could not claim the {thing}: its claim kept changing")

    def take_over(self, thing: Thing, predecessor: Owner, owner: Owner, snapshot: str) -> Owner | None:
        """Take the claim from `predecessor`, another resource of the owner's stack that is being replaced by it
        (CloudFormation creates the new resource before it deletes the old one). The claim records the take-over
        and `snapshot` (what the predecessor had in place); the predecessor's Delete settles it, and until then
        the successor's Delete hands the claim back (the stack update rolled back). What held the claim before;
        raises OwnedByAnother when neither the predecessor nor this resource holds it."""
        values = {":stack": {"S": owner.stack_id}, ":predecessor": {"S": predecessor.logical_id}}
        condition = "StackId = :stack AND LogicalResourceId = :predecessor"
        extra = {
            "TakenOverFrom": predecessor.logical_id,
            "PredecessorRequestId": predecessor.request_id,  # what a hand-back restores
            "PredecessorSnapshot": snapshot,
        }
        try:
            response = self._set_owner(thing, owner, condition, values, extra)
        except _ConditionFailed:
            holder = self.owner_of(thing)
            if holder is None or holder.is_same_resource(owner):
                return self.claim(thing, owner)  # free, or already taken over: a replayed request
            raise OwnedByAnother(thing, holder) from None
        return _owner(response.get("Attributes"))

    def take_over_of(self, thing: Thing) -> TakeOver | None:
        """The take-over the thing's claim records; None when there is none."""
        item = self._call("get_item", Key=_key(thing), ConsistentRead=True).get("Item") or {}
        if "TakenOverFrom" not in item:
            return None
        return TakeOver(
            successor=_owner(item) or Owner("", "", ""),
            predecessor=Owner(
                item["StackId"]["S"], item["TakenOverFrom"]["S"], item.get("PredecessorRequestId", {}).get("S", "")
            ),
            snapshot=item.get("PredecessorSnapshot", {}).get("S", ""),
            settled="PredecessorDeleted" in item,
        )

    def name_predecessor(self, thing: Thing, owner: Owner, predecessor: str) -> None:
        """Record, on a claim `owner` made on a free thing, that it replaces `predecessor` (which held no claim):
        a take-over with nothing to hand back, settled from the start, so that the predecessor's Delete still
        knows the thing and what carries its settings are its successor's."""
        try:
            self._call(
                "update_item",
                Key=_key(thing),
                UpdateExpression="SET TakenOverFrom = :predecessor, PredecessorDeleted = :now",
                ConditionExpression=f"{SAME_RESOURCE} AND attribute_not_exists(TakenOverFrom)",
                ExpressionAttributeValues=_resource_values(owner)
                | {
                    ":predecessor": {"S": predecessor},
                    ":now": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
                },
            )
        except _ConditionFailed:
            logger.info("Take-over already recorded", extra={"thing": thing.key})

    def settle_take_over(self, thing: Thing, take_over: TakeOver) -> None:
        """The predecessor is deleted: the successor holds the claim as if it had made the thing. The take-over
        stays recorded, so that a repeated Delete of the predecessor still knows it was replaced. Nothing changes
        (a log line says so) when the claim no longer records this take-over."""
        try:
            self._call(
                "update_item",
                Key=_key(thing),
                UpdateExpression="SET PredecessorDeleted = :now",
                ConditionExpression="StackId = :stack AND TakenOverFrom = :predecessor",
                ExpressionAttributeValues={
                    ":stack": {"S": take_over.predecessor.stack_id},
                    ":predecessor": {"S": take_over.predecessor.logical_id},
                    ":now": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
                },
            )
        except _ConditionFailed:
            logger.warning("Take-over not settled: the claim no longer records it", extra={"thing": thing.key})

    def hand_back(self, thing: Thing, take_over: TakeOver) -> None:
        """The successor is deleted before its predecessor (a rolled-back stack update): the claim goes back.
        Nothing changes (a log line says so) when the successor no longer holds it."""
        predecessor = take_over.predecessor
        try:
            self._call(
                "update_item",
                Key=_key(thing),
                UpdateExpression=(
                    f"SET LogicalResourceId = :predecessor, RequestId = :request "
                    f"REMOVE {', '.join(TAKE_OVER_ATTRIBUTES)}"
                ),
                ConditionExpression="StackId = :stack AND LogicalResourceId = :logical",
                ExpressionAttributeValues=_resource_values(take_over.successor)
                | {":predecessor": {"S": predecessor.logical_id}, ":request": {"S": predecessor.request_id}},
            )
        except _ConditionFailed:
            logger.warning("Claim not handed back: the successor no longer holds it", extra={"thing": thing.key})

    def claims(self, *kinds: str) -> list[tuple[Thing, Owner]]:
        """Every claim on a thing of these kinds (one paginated Scan: the table holds one item per managed thing)."""
        found: list[tuple[Thing, Owner]] = []
        values = {f":kind{number}": {"S": kind} for number, kind in enumerate(kinds)}
        arguments: dict[str, Any] = {
            "FilterExpression": f"Kind IN ({', '.join(values)})",
            "ExpressionAttributeValues": values,
        }
        while True:
            response = self._call("scan", **arguments)
            for item in response.get("Items", []):
                owner = _owner(item)
                if owner is not None:
                    found.append((Thing(item["Kind"]["S"], item["Name"]["S"]), owner))
            if "LastEvaluatedKey" not in response:
                return found
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def release(self, thing: Thing, owner: Owner) -> bool:
        """Remove the claim if this resource holds it; False (and a log line) when it does not."""
        try:
            self._call(
                "delete_item",
                Key=_key(thing),
                ConditionExpression="StackId = :stack AND LogicalResourceId = :logical",
                ExpressionAttributeValues=_resource_values(owner),
            )
        except _ConditionFailed:
            logger.warning("Claim not released: it is not this resource's", extra={"thing": thing.key})
            return False
        return True

    @contextmanager
    def lock(self, name: str, owner: Owner, seconds: int = LOCK_SECONDS) -> Iterator[None]:
        """Hold the lock `name` (one item of the ledger) while the block runs; wait while another request holds it.

        Serialises a read-modify-write of a registry-wide setting across stacks. The lock expires after `seconds`,
        so a holder that was stopped cannot block the others for longer; waiting stops at the invocation's
        deadline (DeadlineApproaching, a ResourceFailure)."""
        key = {"Id": {"S": f"lock/{name}"}}
        token = uuid.uuid4().hex
        delay = LOCK_RETRY_BASE_SECONDS
        while True:
            now = time.time()
            item = key | {
                "Token": {"S": token},
                "ExpiresAt": {"N": str(int(now) + seconds)},
                "StackId": {"S": owner.stack_id},
                "LogicalResourceId": {"S": owner.logical_id},
                "RequestId": {"S": owner.request_id},
            }
            try:
                self._call(
                    "put_item",
                    Item=item,
                    ConditionExpression=FREE_OR_EXPIRED,
                    ExpressionAttributeValues={":now": {"N": str(int(now))}},
                )
                break
            except _ConditionFailed:
                time.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not cryptography
                delay = min(delay * 2, LOCK_RETRY_MAX_SECONDS)
        try:
            yield
        finally:
            try:
                self._call(
                    "delete_item",
                    Key=key,
                    ConditionExpression="#token = :token",
                    ExpressionAttributeNames={"#token": "Token"},
                    ExpressionAttributeValues={":token": {"S": token}},
                )
            except _ConditionFailed:
                logger.warning("Lock expired before it was released", extra={"lock": name})

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        self.deadline.check(f"calling DynamoDB {operation}")
        try:
            response: dict[str, Any] = getattr(self.client, operation)(TableName=self.table, **arguments)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "Unknown"))
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed from None
            message = aws_message(error.response.get("Error", {}).get("Message", ""))
            raise ResourceFailure(f"Ownership table {self.table}: {code}: {message}") from None
        except BotoCoreError as error:
            raise ResourceFailure(f"Ownership table {self.table}: {type(error).__name__}: {error}") from None
        return response

    def _set_owner(
        self,
        thing: Thing,
        owner: Owner,
        condition: str,
        values: dict[str, Any],
        extra: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Write the owner into the thing's claim when `condition` holds; other attributes of the claim stay."""
        fields = {
            "Kind": thing.kind,
            "Name": thing.name,
            "StackId": owner.stack_id,
            "LogicalResourceId": owner.logical_id,
            "RequestId": owner.request_id,
            "ClaimedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        } | (extra or {})
        names = {f"#f{index}": name for index, name in enumerate(fields)}
        assignments = ", ".join(f"#f{index} = :f{index}" for index in range(len(fields)))
        return self._call(
            "update_item",
            Key=_key(thing),
            UpdateExpression=f"SET {assignments}",
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values
            | {f":f{index}": {"S": value} for index, value in enumerate(fields.values())},
            ReturnValues="ALL_OLD",
        )


class _ConditionFailed(Exception):
    """The conditional write did not apply."""


def _key(thing: Thing) -> dict[str, Any]:
    return {"Id": {"S": thing.key}}


def _resource_values(owner: Owner) -> dict[str, Any]:
    return {":stack": {"S": owner.stack_id}, ":logical": {"S": owner.logical_id}}


def _owner(item: dict[str, Any] | None) -> Owner | None:
    if not item:
        return None
    return Owner(item["StackId"]["S"], item["LogicalResourceId"]["S"], item.get("RequestId", {}).get("S", ""))
