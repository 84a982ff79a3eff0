"""Claims: which resource owns each thing, written before the thing is made; and a take-over, when a resource
replaces another of its stack (TakeOverFrom) and takes its claim."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecr_cache_provider.aws.ledger.table import (
    FREE_OR_SAME_RESOURCE,
    SAME_RESOURCE,
    ConditionFailed,
    OwnedByAnother,
    Owner,
    Table,
    Thing,
    owner_from,
    owner_values,
    thing_key,
)
from ecr_cache_provider.failures import ResourceFailure

logger = logging.getLogger(__name__)

# What a claim holds while a take-over is not settled (Ledger.take_over).
TAKE_OVER_ATTRIBUTES = ("TakenOverFrom", "PredecessorRequestId", "PredecessorSnapshot", "PredecessorDeleted")


@dataclass(frozen=True)
class TakeOver:
    """A claim taken by a resource from the one it replaces in the same stack, not settled yet."""

    successor: Owner
    predecessor: Owner
    snapshot: str
    settled: bool = False  # the predecessor was deleted: the successor owns the thing as if it had made it


@dataclass(frozen=True)
class Claim:
    """A thing's claim as the ledger holds it: its owner (None: nobody's) and the take-over it records (if any)."""

    owner: Owner | None
    take_over: TakeOver | None


class Claims(Table):
    """The claims on things."""

    def claim_of(self, thing: Thing) -> Claim:
        """The thing's claim, one consistent read."""
        item = self._call("get_item", Key=thing_key(thing), ConsistentRead=True).get("Item") or {}
        return Claim(owner_from(item), _take_over(item))

    def owner_of(self, thing: Thing) -> Owner | None:
        return self.claim_of(thing).owner

    def claim(self, thing: Thing, owner: Owner, adopted: str = "") -> Owner | None:
        """Record `owner` as the thing's owner; what held the claim before (None when nobody did). With `adopted`
        (what the thing was like), the claim records that the thing existed before this resource took it over:
        see `adoption`.

        Succeeds when nobody holds the claim, or the same resource does (a replayed or a later request of it);
        raises OwnedByAnother, naming the owner, when another resource does."""
        extra = {"Adopted": adopted} if adopted else None
        for _ in range(3):  # a claim released between the two calls below is tried again
            try:
                response = self._setowner_from(thing, owner, FREE_OR_SAME_RESOURCE, owner_values(owner), extra)
            except ConditionFailed:
                holder = self.owner_of(thing)
                if holder is not None:
                    raise OwnedByAnother(thing, holder) from None
            else:
                return owner_from(response.get("Attributes"))
        raise ResourceFailure(f"Could not claim the {thing}: its claim kept changing")

    def adoption(self, thing: Thing) -> str | None:
        """What the thing was like when its claimant adopted it (it existed before; see `claim`); None when the
        claimant made it."""
        item = self._call("get_item", Key=thing_key(thing), ConsistentRead=True).get("Item") or {}
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
            response = self._setowner_from(thing, owner, condition, values, extra)
        except ConditionFailed:
            holder = self.owner_of(thing)
            if holder is None or holder.is_same_resource(owner):
                return self.claim(thing, owner)  # free, or already taken over: a replayed request
            raise OwnedByAnother(thing, holder) from None
        return owner_from(response.get("Attributes"))

    def take_over_of(self, thing: Thing) -> TakeOver | None:
        """The take-over the thing's claim records; None when there is none."""
        return self.claim_of(thing).take_over

    def name_predecessor(self, thing: Thing, owner: Owner, predecessor: str) -> None:
        """Record, on a claim `owner` made on a free thing, that it replaces `predecessor` (which held no claim):
        a take-over with nothing to hand back, settled from the start, so that the predecessor's Delete still
        knows the thing and what carries its settings are its successor's."""
        try:
            self._call(
                "update_item",
                Key=thing_key(thing),
                UpdateExpression="SET TakenOverFrom = :predecessor, PredecessorDeleted = :now",
                ConditionExpression=f"{SAME_RESOURCE} AND attribute_not_exists(TakenOverFrom)",
                ExpressionAttributeValues=owner_values(owner)
                | {
                    ":predecessor": {"S": predecessor},
                    ":now": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
                },
            )
        except ConditionFailed:
            logger.info("Take-over already recorded", extra={"thing": thing.key})

    def settle_take_over(self, thing: Thing, take_over: TakeOver) -> None:
        """The predecessor is deleted: the successor holds the claim as if it had made the thing. The take-over
        stays recorded, so that a repeated Delete of the predecessor still knows it was replaced. Nothing changes
        (a log line says so) when the claim no longer records this take-over."""
        try:
            self._call(
                "update_item",
                Key=thing_key(thing),
                UpdateExpression="SET PredecessorDeleted = :now",
                ConditionExpression="StackId = :stack AND TakenOverFrom = :predecessor",
                ExpressionAttributeValues={
                    ":stack": {"S": take_over.predecessor.stack_id},
                    ":predecessor": {"S": take_over.predecessor.logical_id},
                    ":now": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
                },
            )
        except ConditionFailed:
            logger.warning("Take-over not settled: the claim no longer records it", extra={"thing": thing.key})

    def hand_back(self, thing: Thing, take_over: TakeOver) -> None:
        """The successor is deleted before its predecessor (a rolled-back stack update): the claim goes back.
        Nothing changes (a log line says so) when the successor no longer holds it."""
        predecessor = take_over.predecessor
        try:
            self._call(
                "update_item",
                Key=thing_key(thing),
                UpdateExpression=(
                    f"SET LogicalResourceId = :predecessor, RequestId = :request "
                    f"REMOVE {', '.join(TAKE_OVER_ATTRIBUTES)}"
                ),
                ConditionExpression="StackId = :stack AND LogicalResourceId = :logical",
                ExpressionAttributeValues=owner_values(take_over.successor)
                | {":predecessor": {"S": predecessor.logical_id}, ":request": {"S": predecessor.request_id}},
            )
        except ConditionFailed:
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
                owner = owner_from(item)
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
                Key=thing_key(thing),
                ConditionExpression="StackId = :stack AND LogicalResourceId = :logical",
                ExpressionAttributeValues=owner_values(owner),
            )
        except ConditionFailed:
            logger.warning("Claim not released: it is not this resource's", extra={"thing": thing.key})
            return False
        return True


def _take_over(item: dict[str, Any]) -> TakeOver | None:
    if "TakenOverFrom" not in item:
        return None
    return TakeOver(
        successor=owner_from(item) or Owner("", "", ""),
        predecessor=Owner(
            item["StackId"]["S"], item["TakenOverFrom"]["S"], item.get("PredecessorRequestId", {}).get("S", "")
        ),
        snapshot=item.get("PredecessorSnapshot", {}).get("S", ""),
        settled="PredecessorDeleted" in item,
    )
