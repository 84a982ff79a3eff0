"""Resource records: which request is each resource's current one (newer requests overtake older ones, whose work
stops at its next step), the physical ids answered for it, what it declared (for the health check), and that it
was deleted."""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecr_cache_provider.aws.ledger.table import ConditionFailed, Owner, Table, owner_values
from ecr_cache_provider.failures import Superseded

logger = logging.getLogger(__name__)

# resource changed on one repository.
RESOURCE_KIND = "resource"
SETTINGS_KIND = "repository settings"
# How long the record of a deleted resource stays (DynamoDB's time to live, on ExpiresAt): longer than the longest
# ServiceTimeout (3,600 s), after which CloudFormation waits for no request the deletion could have overtaken.
DELETED_RECORD_SECONDS = 2 * 3600
# The declared state is kept as zlib-compressed JSON (attribute Declared, binary): DynamoDB counts an item's
# attribute names and values against 400 KB
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-items). What a
# resource declares is bounded by ECR's own limits (a lifecycle policy of at most 30,720 characters, a repository
# policy of 10,240) and CloudFormation's (a template body of at most 1 MB); policies compress several times over.
# Past this size (leaving room for the record's other attributes) the state is not kept, and the health check
# says so for the resource rather than comparing with nothing.
DECLARED_LIMIT_BYTES = 300_000


@dataclass(frozen=True)
class DeclaredResource:
    """A live resource and what it declared (see `keep_declared`)."""

    owner: Owner  # its request_id: the resource's current request
    declared: dict[str, Any]
    declared_by: str = ""  # the request whose success kept `declared`: another current one is still in progress

    @property
    def request_in_progress(self) -> bool:
        """Whether a request of the resource began after the one that declared this state, and has not (yet)
        succeeded: what it will declare is not known, and nothing may be put back meanwhile."""
        return self.declared_by != self.owner.request_id


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


class ResourceRecords(Table):
    """The resource records."""

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
        except ConditionFailed:
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
            except ConditionFailed:
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
            ExpressionAttributeValues=owner_values(owner)
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

    def _update_while_current(self, owner: Owner, update: str, values: dict[str, Any]) -> None:
        """Update the resource's record only while `owner`'s request is its current one (ConditionFailed else)."""
        self._call(
            "update_item",
            Key=_resource_key(owner),
            UpdateExpression=update,
            ConditionExpression="RequestId = :request",
            ExpressionAttributeValues={**values, ":request": {"S": owner.request_id}},
        )

    def keep_settings(self, owner: Owner, settings: str) -> None:
        """Keep the settings of the work the resource schedules, while `owner`'s request is its current one."""
        try:
            self._update_while_current(owner, "SET Settings = :settings", {":settings": {"S": settings}})
        except ConditionFailed:
            raise Superseded(f"A newer request for {owner} took over: this one stops here") from None

    def keep_declared(self, owner: Owner, declared: dict[str, Any]) -> bool:
        """Keep what the resource declared (its validated properties, never a secret value, and the state the health
        check compares with), while `owner`'s request is its current one. False when it was not kept: too large,
        or a newer request took over (which keeps its own)."""
        packed = zlib.compress(json.dumps(declared, sort_keys=True, separators=(",", ":")).encode(), 9)
        too_large = len(packed) > DECLARED_LIMIT_BYTES
        if too_large:
            logger.warning("Declared state too large to keep", extra={"owner": str(owner), "bytes": len(packed)})
        try:
            if too_large:
                self._update_while_current(owner, "REMOVE Declared, DeclaredBy", {})
            else:
                self._update_while_current(
                    owner,
                    "SET Declared = :declared, DeclaredBy = :request",
                    {":declared": {"B": packed}},
                )
        except ConditionFailed:
            return False
        return not too_large

    def declared_resources(self) -> Iterator[DeclaredResource]:
        """Every resource not deleted whose record keeps what it declared, page by page (one Scan, filtered)."""
        arguments: dict[str, Any] = {
            "FilterExpression": "Kind = :kind AND attribute_exists(Declared) AND attribute_not_exists(Deleted)",
            "ExpressionAttributeValues": {":kind": {"S": RESOURCE_KIND}},
        }
        while True:
            response = self._call("scan", **arguments)
            for item in response.get("Items", []):
                owner = Owner(
                    item["StackId"]["S"],
                    item["LogicalResourceId"]["S"],
                    item.get("RequestId", {}).get("S", ""),
                    item.get("ResourceType", {}).get("S", ""),
                )
                declared = json.loads(zlib.decompress(item["Declared"]["B"]))
                yield DeclaredResource(owner, declared, item.get("DeclaredBy", {}).get("S", ""))
            if "LastEvaluatedKey" not in response:
                return
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def finish_delete(self, owner: Owner) -> None:
        """The resource is deleted: its record says so (a request it overtook then stops at its next step) until
        DynamoDB's time to live removes it."""
        try:
            self._call(
                "update_item",
                Key=_resource_key(owner),
                UpdateExpression="SET Deleted = :now, ExpiresAt = :expires REMOVE Settings, Declared, DeclaredBy",
                ConditionExpression="RequestId = :request",
                ExpressionAttributeValues={
                    ":now": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
                    ":expires": {"N": str(int(time.time()) + DELETED_RECORD_SECONDS)},
                    ":request": {"S": owner.request_id},
                },
            )
        except ConditionFailed:
            logger.warning("The resource's record names a newer request: left as it is", extra={"owner": str(owner)})


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
