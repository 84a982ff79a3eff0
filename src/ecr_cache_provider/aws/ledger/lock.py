"""A lock in the ownership table: serialises a read-modify-write of a registry-wide setting across stacks."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ecr_cache_provider.aws.ledger.table import ConditionFailed, Owner, Table
from ecr_cache_provider.failures import ResourceFailure

logger = logging.getLogger(__name__)

# A lock is taken when nobody holds it or its holder's time ran out (a holder that stopped never releases it).
FREE_OR_EXPIRED = "attribute_not_exists(Id) OR ExpiresAt < :now"
# How long a lock holds after its holder last renewed it (every third of this, while the holder works): a holder
# that was stopped blocks the others for at most this long.
LOCK_SECONDS = 60
# Backoff while another request holds the lock, growing to the maximum, with jitter.
LOCK_RETRY_BASE_SECONDS = 0.05
LOCK_RETRY_MAX_SECONDS = 1.0


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


class Locks(Table):
    """Locks held while a block runs."""

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
            except ConditionFailed:
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
            except ConditionFailed:
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
            except (ConditionFailed, ResourceFailure) as error:
                logger.warning("Lock lost: it could not be renewed", extra={"lock": held.name, "error": str(error)})
                held.lost.set()
                return
