"""The provider's ownership table, as template.yaml's OwnershipTable makes it, on whichever AWS the caller's
boto3 reaches (moto in-process, or moto's server)."""

from __future__ import annotations

from typing import Any

from emulation import iam

TABLE_NAME = "ecr-pull-through-cache-ownership"


def create_ownership_table(endpoint_url: str | None = None) -> str:
    client: Any = iam.admin_client("dynamodb", endpoint_url=endpoint_url)
    client.create_table(
        TableName=TABLE_NAME,
        AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return TABLE_NAME
