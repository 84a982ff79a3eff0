"""The provider's ownership table, as template.yaml's OwnershipTable makes it, on whichever AWS the caller's
boto3 reaches (moto in-process, or moto's server)."""

from __future__ import annotations

import functools
import threading
from typing import Any

import boto3

TABLE_NAME = "ecr-pull-through-cache-ownership"

_write_lock = threading.RLock()


def make_conditional_writes_atomic() -> None:
    """DynamoDB checks a write's condition and writes in one step; moto 5 checks, then writes, with nothing in
    between to stop another thread (a claim race could then have two winners). One lock around moto's writes makes
    them atomic as DynamoDB's are, for mock_aws and the threaded server alike. Idempotent."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_atomic", False):
            continue

        def atomic(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _write_lock:
                return _original(*args, **kwargs)

        functools.update_wrapper(atomic, original)
        atomic._atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, atomic)


def create_ownership_table(endpoint_url: str | None = None) -> str:
    make_conditional_writes_atomic()
    client: Any = boto3.client("dynamodb", endpoint_url=endpoint_url)
    client.create_table(
        TableName=TABLE_NAME,
        AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return TABLE_NAME
