"""The ownership ledger: which resource owns each thing the provider manages, proved by a claim written before the
thing is made, never inferred from timestamps or matching settings.

One DynamoDB item per managed thing (a pull-through cache rule's prefix, a repository creation template's prefix,
a schedule, ...) in the table the provider stack creates (its name in OWNERSHIP_TABLE), shared by every stack that
uses the provider's ServiceToken. The item names the owner: StackId, LogicalResourceId and the RequestId that
claimed it. A conditional write lets exactly one claimant win, even when two stacks race for the same prefix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ecr_cache_provider.failures import ResourceFailure, Superseded, aws_message

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
# How long a lock holds after its holder last renewed it (every third of this, while the holder works): a holder
# that was stopped blocks the others for at most this long.
LOCK_SECONDS = 60
# Backoff while another request holds the lock, growing to the maximum, with jitter.
LOCK_RETRY_BASE_SECONDS = 0.05
LOCK_RETRY_MAX_SECONDS = 1.0


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


# What a claim holds while a take-over is not settled (Ledger.take_over).
TAKE_OVER_ATTRIBUTES = ("TakenOverFrom", "PredecessorRequestId", "PredecessorSnapshot", "PredecessorDeleted")


@dataclass(frozen=True)
class TakeOver:
    """A claim taken by a resource from the one it replaces in the same stack, not settled yet."""

    successor: Owner
    predecessor: Owner
    snapshot: str
    settled: bool = False  # the predecessor was deleted: the successor owns the thing as if it had made it


# The kinds of ledger items that are no claim on a thing: a resource's record (its current request) and what a
# resource changed on one repository.
RESOURCE_KIND = "resource"
SETTINGS_KIND = "repository settings"
# How long the record of a deleted resource stays (DynamoDB's time to live, on ExpiresAt): longer than the longest
# ServiceTimeout (3,600 s), after which CloudFormation waits for no request the deletion could have overtaken.
DELETED_RECORD_SECONDS = 2 * 3600
# DynamoDB's batch sizes (botocore model): BatchWriteItem takes 25 requests, BatchGetItem 100 keys.
BATCH_WRITE_SIZE = 25
BATCH_GET_SIZE = 100
BATCH_OPERATIONS = frozenset({"batch_get_item", "batch_write_item"})
# Pauses while DynamoDB leaves part of a batch unprocessed (its throughput ran out), growing, with jitter.
UNPROCESSED_RETRY_BASE_SECONDS = 0.05
UNPROCESSED_RETRY_MAX_SECONDS = 2.0


@dataclass(frozen=True)
class ResourceRecord:
    """What the ledger knows of a resource (StackId, LogicalResourceId): the request that is its current one,
    moved by every newer request (a generation counts them), and what continued work checks before each step.

    `issued`: the physical ids the provider answered for it; `issued_complete` when the record has existed since the
    resource's Create, so that an id missing from `issued` was never answered (CloudFormation made it up, after a
    cancelled or timed-out Create). `settings`: what a resource keeps for the work it schedules (image expiry)."""

    request_id: str
    request_type: str
    generation: int
    issued_at: str = ""  # when CloudFormation issued the current request (ISO 8601, whole seconds)
    issued: frozenset[str] = frozenset()
    issued_complete: bool = False
    deleted: bool = False
    settings: str = ""


@dataclass(frozen=True)
class SettingsRecord:
    """What one resource changed on one repository, recorded before it changed it: for each setting, the value it
    found there (`before`, None for none) and the value it set (`set`). A value is this resource's only while the
    repository still carries exactly the value it set."""

    repository: str
    namespace: str  # the resource's RepositoryPrefix when it made the change
    settings: dict[str, dict[str, Any]]
    request_id: str = ""


class OwnedByAnother(ResourceFailure):
    """Another resource holds the claim: this one may neither make nor change the thing."""

    def __init__(self, thing: Thing, owner: Owner) -> None:
        super().__init__(f"The {thing} belongs to {owner} (claimed by request {owner.request_id})")
        self.owner = owner


class HeldLock:
    """A lock of the ledger while its block runs: `confirm()` before each write it protects."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.released = threading.Event()
        self.lost = threading.Event()

    def confirm(self) -> None:
        """Raise when the lock was lost (another request holds it now): the write it protects must not happen."""
        if self.lost.is_set():
            raise ResourceFailure(f"Lost the {self.name} lock while changing it (the ownership table did not renew it)")


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

    def claim(self, thing: Thing, owner: Owner, adopted: str = "") -> Owner | None:
        """Record `owner` as the thing's owner; what held the claim before (None when nobody did). With `adopted`
        (what the thing was like), the claim records that the thing existed before this resource took it over:
        see `adoption`.

        Succeeds when nobody holds the claim, or the same resource does (a replayed or a later request of it);
        raises OwnedByAnother, naming the owner, when another resource does."""
        extra = {"Adopted": adopted} if adopted else None
        for _ in range(3):  # a claim released between the two calls below is tried again
            try:
                response = self._set_owner(thing, owner, FREE_OR_SAME_RESOURCE, _resource_values(owner), extra)
            except _ConditionFailed:
                holder = self.owner_of(thing)
                if holder is not None:
                    raise OwnedByAnother(thing, holder) from None
            else:
                return _owner(response.get("Attributes"))
        raise ResourceFailure(f"Could not claim the {thing}: its claim kept changing")

    def adoption(self, thing: Thing) -> str | None:
        """What the thing was like when its claimant adopted it (it existed before; see `claim`); None when the
        claimant made it."""
        item = self._call("get_item", Key=_key(thing), ConsistentRead=True).get("Item") or {}
        adopted = item.get("Adopted", {}).get("S")
        return str(adopted) if adopted is not None else None

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

    # The resource record: which request is a resource's current one

    def begin(
        self,
        owner: Owner,
        request_type: str,
        issued_at: datetime,
        stack_undoing: Callable[[], bool] = lambda: False,
    ) -> ResourceRecord:
        """Make `owner`'s request the resource's current one, before it changes anything: a request issued later
        than the current one takes over (the generation moves, and every step of older work stops); a replay of
        the current request changes nothing; an older request raises Superseded (it was overtaken: a Delete of a
        cancelled Create that Lambda ran first, say).

        X-Amz-Date counts whole seconds. Within one, a Delete takes over from anything: it may be the Delete of a
        Create CloudFormation cancelled a moment after sending it. Another request takes over from a Delete of the
        same second only when `stack_undoing()` (the stack's status) says the stack is not rolling back or being
        deleted, the only times CloudFormation sends such a Delete: otherwise the Delete was the end of an earlier
        life of the resource."""
        issued = issued_at.astimezone(UTC).isoformat(timespec="seconds")
        if request_type == "Delete":
            newer = "IssuedAt <= :issued"
        else:
            newer = "IssuedAt < :issued OR (IssuedAt = :issued AND RequestType <> :delete)"
        condition = f"attribute_not_exists(Id) OR (RequestId <> :request AND ({newer}))"
        try:
            return self._make_current(owner, request_type, issued, condition, {})
        except _ConditionFailed:
            current = self.resource(owner)
        if current is not None and current.request_id == owner.request_id:
            return current  # a replay of the current request
        tie = current is not None and current.request_type == "Delete" and current.issued_at == issued
        if tie and request_type != "Delete" and not stack_undoing():
            try:
                return self._make_current(
                    owner,
                    request_type,
                    issued,
                    "RequestId = :current",
                    {":current": {"S": current.request_id if current else ""}},
                )
            except _ConditionFailed:
                current = self.resource(owner)
        raise Superseded(f"A newer request for {owner} came first ({_describe(current)}): this one changes nothing")

    def _make_current(
        self, owner: Owner, request_type: str, issued: str, condition: str, values: dict[str, Any]
    ) -> ResourceRecord:
        response = self._call(
            "update_item",
            Key=_resource_key(owner),
            UpdateExpression=(
                "SET Kind = :kind, StackId = :stack, LogicalResourceId = :logical, ResourceType = :type, "
                "RequestId = :request, RequestType = :request_type, IssuedAt = :issued, "
                "Generation = if_not_exists(Generation, :zero) + :one, "
                "IssuedComplete = if_not_exists(IssuedComplete, :complete) REMOVE Deleted, ExpiresAt"
            ),
            ConditionExpression=condition,
            ExpressionAttributeValues=_resource_values(owner)
            | {
                ":kind": {"S": RESOURCE_KIND},
                ":type": {"S": owner.resource_type},
                ":request": {"S": owner.request_id},
                ":request_type": {"S": request_type},
                ":issued": {"S": issued},
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":complete": {"BOOL": request_type == "Create"},  # since its Create, the record knows every id
            }
            | ({":delete": {"S": "Delete"}} if ":delete" in condition else {})
            | values,
            ReturnValues="ALL_NEW",
        )
        return _resource_record(response["Attributes"])

    def resource(self, owner: Owner) -> ResourceRecord | None:
        """The resource's record; None when it has none (made before the ledger recorded resources)."""
        item = self._call("get_item", Key=_resource_key(owner), ConsistentRead=True).get("Item")
        return _resource_record(item) if item else None

    def ensure_current(self, owner: Owner, request_type: str) -> ResourceRecord:
        """One read: the resource's record, when `owner`'s request is still its current one; raises Superseded
        when a newer request took over, or the resource was deleted since (a Delete's own steps excepted)."""
        record = self.resource(owner)
        if record is None or record.request_id != owner.request_id:
            raise Superseded(f"A newer request for {owner} took over ({_describe(record)}): this one stops here")
        if record.deleted and request_type != "Delete":
            raise Superseded(f"{owner} was deleted meanwhile: this request stops here")
        return record

    def record_issued(self, owner: Owner, physical_id: str) -> None:
        """Remember a physical id answered for the resource."""
        self._call(
            "update_item",
            Key=_resource_key(owner),
            UpdateExpression="ADD Issued :id",
            ConditionExpression="attribute_exists(Id)",
            ExpressionAttributeValues={":id": {"SS": [physical_id]}},
        )

    def keep_settings(self, owner: Owner, settings: str) -> None:
        """Keep the settings of the work the resource schedules, while `owner`'s request is its current one."""
        try:
            self._call(
                "update_item",
                Key=_resource_key(owner),
                UpdateExpression="SET Settings = :settings",
                ConditionExpression="RequestId = :request",
                ExpressionAttributeValues={":settings": {"S": settings}, ":request": {"S": owner.request_id}},
            )
        except _ConditionFailed:
            raise Superseded(f"A newer request for {owner} took over: this one stops here") from None

    def finish_delete(self, owner: Owner) -> None:
        """The resource is deleted: its record says so (a request it overtook then stops at its next step) until
        DynamoDB's time to live removes it."""
        try:
            self._call(
                "update_item",
                Key=_resource_key(owner),
                UpdateExpression="SET Deleted = :now, ExpiresAt = :expires REMOVE Settings",
                ConditionExpression="RequestId = :request",
                ExpressionAttributeValues={
                    ":now": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
                    ":expires": {"N": str(int(time.time()) + DELETED_RECORD_SECONDS)},
                    ":request": {"S": owner.request_id},
                },
            )
        except _ConditionFailed:
            logger.warning("The resource's record names a newer request: left as it is", extra={"owner": str(owner)})

    # What a resource changed on repositories, one record per repository

    def settings_records(self, owner: Owner, repositories: Iterable[str]) -> dict[str, SettingsRecord]:
        """The records `owner`'s resource keeps for these repositories (consistent reads, 100 a call)."""
        names = list(dict.fromkeys(repositories))
        found: dict[str, SettingsRecord] = {}
        for start in range(0, len(names), BATCH_GET_SIZE):
            keys = [_settings_key(owner, name) for name in names[start : start + BATCH_GET_SIZE]]
            attempt = 0
            while keys:
                response = self._call(
                    "batch_get_item", RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}}
                )
                for item in response.get("Responses", {}).get(self.table, []):
                    record = settings_record(item)
                    found[record.repository] = record
                keys = response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                attempt = self._pause_for_unprocessed(keys, attempt)
        return found

    def write_settings_records(self, owner: Owner, records: Iterable[SettingsRecord]) -> None:
        """Write the records (25 a call), before the changes they record are made."""
        self._batch_write([{"PutRequest": {"Item": _settings_item(owner, record)}} for record in records])

    def drop_settings_records(self, owner: Owner, repositories: Iterable[str]) -> None:
        """Remove the records of these repositories (25 a call)."""
        self._batch_write(
            [{"DeleteRequest": {"Key": _settings_key(owner, name)}} for name in dict.fromkeys(repositories)]
        )

    def drop_settings_record_if_mine(self, owner: Owner, repository: str) -> None:
        """Remove the repository's record only if `owner`'s request wrote it last (a stale request undoing its own
        change must not remove what a newer request of the resource recorded)."""
        try:
            self._call(
                "delete_item",
                Key=_settings_key(owner, repository),
                ConditionExpression="RequestId = :request",
                ExpressionAttributeValues={":request": {"S": owner.request_id}},
            )
        except _ConditionFailed:
            logger.info("Record left: a newer request wrote it", extra={"repository": repository})

    def restore_settings_record_if_mine(self, owner: Owner, record: SettingsRecord) -> None:
        """Put a repository's record back as it was, only if `owner`'s request wrote it last."""
        try:
            self._call(
                "put_item",
                Item=_settings_item(replace(owner, request_id=record.request_id), record),
                ConditionExpression="RequestId = :request",
                ExpressionAttributeValues={":request": {"S": owner.request_id}},
            )
        except _ConditionFailed:
            logger.info("Record left: a newer request wrote it", extra={"repository": record.repository})

    # Everything a resource owns

    def owned(self, owner: Owner, kinds: Iterable[str]) -> Iterator[list[dict[str, Any]]]:
        """The ledger's items of these kinds that `owner`'s resource holds (claims, repository records), page by
        page. One consistent Scan of the table, filtered: it sees what a request wrote a moment ago, which a
        global secondary index (eventually consistent) could miss, and a Delete is what asks."""
        values = {f":kind{number}": {"S": kind} for number, kind in enumerate(kinds)}
        arguments: dict[str, Any] = {
            "ConsistentRead": True,
            "FilterExpression": f"StackId = :stack AND LogicalResourceId = :logical AND Kind IN ({', '.join(values)})",
            "ExpressionAttributeValues": _resource_values(owner) | values,
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

    @contextmanager
    def lock(self, name: str, owner: Owner, seconds: int = LOCK_SECONDS) -> Iterator[HeldLock]:
        """Hold the lock `name` (one item of the ledger) while the block runs; wait while another request holds it.

        Serialises a read-modify-write of a registry-wide setting across stacks. The lock expires `seconds` after
        it was last renewed, so that a holder that was stopped cannot block the others for longer; while the block
        runs, a thread renews it every third of that time, so that a slow ECR never lets a second writer in. The
        block calls `confirm()` on what it is given right before each write: it raises when the lock was lost (a
        renewal found another holder). Waiting stops at the invocation's deadline (DeadlineApproaching, a
        ResourceFailure)."""
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
        held = HeldLock(name)
        renewing = threading.Thread(
            target=self._renew, args=(key, token, seconds, held), name=f"renew lock {name}", daemon=True
        )
        renewing.start()
        try:
            yield held
        finally:
            held.released.set()
            renewing.join()
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

    def _renew(self, key: dict[str, Any], token: str, seconds: int, held: HeldLock) -> None:
        """Push the lock's expiry `seconds` ahead every third of `seconds` until it is released; mark it lost
        when a renewal finds it no longer ours, or cannot be made before the lock would run out."""
        interval = max(seconds / 3, 0.05)
        while not held.released.wait(interval):
            try:
                self._call(
                    "update_item",
                    Key=key,
                    UpdateExpression="SET ExpiresAt = :expires",
                    ConditionExpression="#token = :token",
                    ExpressionAttributeNames={"#token": "Token"},
                    ExpressionAttributeValues={
                        ":token": {"S": token},
                        ":expires": {"N": str(int(time.time()) + seconds)},
                    },
                )
            except (_ConditionFailed, ResourceFailure) as error:
                logger.warning("Lock lost: it could not be renewed", extra={"lock": held.name, "error": str(error)})
                held.lost.set()
                return

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        self.deadline.check(f"calling DynamoDB {operation}")
        if operation not in BATCH_OPERATIONS:  # a batch names its table in RequestItems
            arguments["TableName"] = self.table
        try:
            response: dict[str, Any] = getattr(self.client, operation)(**arguments)
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
    return Owner(
        item["StackId"]["S"],
        item["LogicalResourceId"]["S"],
        item.get("RequestId", {}).get("S", ""),
        item.get("ResourceType", {}).get("S", ""),
    )


def _resource_key(owner: Owner) -> dict[str, Any]:
    return {"Id": {"S": f"{RESOURCE_KIND}/{owner.stack_id}/{owner.logical_id}"}}


def _resource_record(item: dict[str, Any]) -> ResourceRecord:
    return ResourceRecord(
        request_id=item.get("RequestId", {}).get("S", ""),
        request_type=item.get("RequestType", {}).get("S", ""),
        generation=int(item.get("Generation", {}).get("N", "0")),
        issued_at=item.get("IssuedAt", {}).get("S", ""),
        issued=frozenset(item.get("Issued", {}).get("SS", [])),
        issued_complete=bool(item.get("IssuedComplete", {}).get("BOOL", False)),
        deleted="Deleted" in item,
        settings=item.get("Settings", {}).get("S", ""),
    )


def _describe(record: ResourceRecord | None) -> str:
    if record is None:
        return "the resource has no record"
    state = ", since deleted" if record.deleted else ""
    return f"{record.request_type} request {record.request_id}, generation {record.generation}{state}"


def _owner_digest(owner: Owner) -> str:
    return hashlib.sha256(f"{owner.stack_id}/{owner.logical_id}".encode()).hexdigest()[:24]


def _settings_key(owner: Owner, repository: str) -> dict[str, Any]:
    return {"Id": {"S": f"{SETTINGS_KIND}/{_owner_digest(owner)}/{repository}"}}


def _settings_item(owner: Owner, record: SettingsRecord) -> dict[str, Any]:
    return _settings_key(owner, record.repository) | {
        "Kind": {"S": SETTINGS_KIND},
        "Name": {"S": record.repository},
        "Namespace": {"S": record.namespace},
        "StackId": {"S": owner.stack_id},
        "LogicalResourceId": {"S": owner.logical_id},
        "ResourceType": {"S": owner.resource_type},
        "RequestId": {"S": owner.request_id},
        "Settings": {"S": json.dumps(record.settings, separators=(",", ":"), sort_keys=True)},
    }


def settings_record(item: dict[str, Any]) -> SettingsRecord:
    """A repository record, from its item (as `Ledger.owned` returns it)."""
    return SettingsRecord(
        repository=item["Name"]["S"],
        namespace=item.get("Namespace", {}).get("S", ""),
        settings=json.loads(item.get("Settings", {}).get("S", "{}")),
        request_id=item.get("RequestId", {}).get("S", ""),
    )
