"""DynamoDB as the ownership ledger relies on it: each write, conditions included, applied atomically; batches
limited as the model says; throughput that runs out, as UnprocessedItems.

moto serves a conditional write in several steps (read the item, check the condition, write; ReturnValues reads
it again), and its threaded server runs requests side by side, so two racing claims could both pass the
condition, which DynamoDB never allows. Here moto's writes run one at a time, as DynamoDB's do per item.

moto takes a BatchWriteItem of any size; DynamoDB refuses more than 25 put or delete requests in one call (botocore
model, BatchWriteItemInput.RequestItems: 1 to 25), and botocore does not check that maximum on the client. And a
batch DynamoDB cannot fully serve comes back in part as UnprocessedItems, which the caller must send again:
`leave_unprocessed` makes the next batches do that."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.responses import DynamoHandler

WRITES = ("put_item", "delete_item", "update_item", "batch_write_item", "transact_write_items")
# BatchWriteItemInput.RequestItems in the botocore model: 1 to 25 requests.
BATCH_WRITE_LIMIT = 25
_lock = threading.RLock()
_unprocessed = {"batches": 0}


def install() -> None:
    """Make moto's DynamoDB writes atomic and its batches as limited as DynamoDB's. Safe to call repeatedly."""
    with _lock:
        for name in WRITES:
            original = getattr(DynamoHandler, name)
            if not getattr(original, "atomic", False):
                setattr(DynamoHandler, name, _atomic(_limited(original) if name == "batch_write_item" else original))


def leave_unprocessed(batches: int = 1) -> None:
    """The next `batches` BatchWriteItem calls write only their first request and return the others as
    UnprocessedItems, as DynamoDB does when throughput runs out mid-batch."""
    with _lock:
        _unprocessed["batches"] = batches


def reset() -> None:
    with _lock:
        _unprocessed["batches"] = 0


def _atomic(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def one_at_a_time(self: DynamoHandler, *arguments: Any, **options: Any) -> Any:
        with _lock:
            return write(self, *arguments, **options)

    one_at_a_time.atomic = True  # type: ignore[attr-defined]
    return one_at_a_time


def _limited(batch_write_item: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(batch_write_item)
    def limited(self: DynamoHandler) -> Any:
        requests = [(table, request) for table, listed in self.body["RequestItems"].items() for request in listed]
        if len(requests) > BATCH_WRITE_LIMIT:
            raise MockValidationException(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must "
                f"satisfy constraint: [Member must have length less than or equal to {BATCH_WRITE_LIMIT}]"
            )
        if _unprocessed["batches"] <= 0 or len(requests) < 2:
            return batch_write_item(self)
        _unprocessed["batches"] -= 1
        first_table, first = requests[0]
        left: dict[str, list[Any]] = {}
        for table, request in requests[1:]:
            left.setdefault(table, []).append(request)
        self.body = {**self.body, "RequestItems": {first_table: [first]}}
        answer = batch_write_item(self)
        return ActionResult({**answer.result, "UnprocessedItems": left})

    return limited
