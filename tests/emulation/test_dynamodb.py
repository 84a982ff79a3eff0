"""The emulation's DynamoDB applies each conditional write atomically, as DynamoDB does."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest


@pytest.fixture
def slow_conditions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the gap between moto reading the current item and writing the new one, where a race would strike."""
    from moto.dynamodb.models import table

    evaluate = table.get_filter_expression  # type: ignore[attr-defined]

    def slowly(*arguments: Any, **options: Any) -> Any:
        time.sleep(0.02)
        return evaluate(*arguments, **options)

    monkeypatch.setattr(table, "get_filter_expression", slowly)


@pytest.mark.usefixtures("slow_conditions")
def test_of_racing_conditional_puts_exactly_one_applies(aws: None) -> None:
    client: Any = boto3.client("dynamodb")
    client.create_table(
        TableName="race",
        AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    applied: list[int] = []
    start = threading.Barrier(16)

    def put(number: int) -> None:
        start.wait()
        try:
            client.put_item(
                TableName="race",
                Item={"Id": {"S": "thing"}, "Owner": {"N": str(number)}},
                ConditionExpression="attribute_not_exists(Id)",
            )
        except client.exceptions.ConditionalCheckFailedException:
            return
        applied.append(number)

    threads = [threading.Thread(target=put, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(applied) == 1
    assert client.get_item(TableName="race", Key={"Id": {"S": "thing"}})["Item"]["Owner"]["N"] == str(applied[0])
