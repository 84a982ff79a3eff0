"""DynamoDB as the ownership ledger relies on it: each write, conditions included, applied atomically.

moto serves a conditional write in several steps (read the item, check the condition, write; ReturnValues reads
it again), and its threaded server runs requests side by side, so two racing claims could both pass the
condition, which DynamoDB never allows. Here moto's writes run one at a time, as DynamoDB's do per item."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.responses import DynamoHandler

WRITES = ("put_item", "delete_item", "update_item", "batch_write_item", "transact_write_items")
_lock = threading.RLock()


def install() -> None:
    """Make moto's DynamoDB writes atomic. Safe to call repeatedly."""
    with _lock:
        for name in WRITES:
            original = getattr(DynamoHandler, name)
            if not getattr(original, "atomic", False):
                setattr(DynamoHandler, name, _atomic(original))


def _atomic(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def one_at_a_time(self: DynamoHandler, *arguments: Any, **options: Any) -> Any:
        with _lock:
            return write(self, *arguments, **options)

    one_at_a_time.atomic = True  # type: ignore[attr-defined]
    return one_at_a_time
