"""The defaults and filters the botocore models document for each operation the provider calls, as our emulation
serves them: never kinder than AWS.

The audit, operation by operation (what the model documents, and where it is tested):
- ECR DescribeImages: only ACTIVE images without filter.imageStatus, every status with ANY; 100 a page without
  maxResults; filter.tagStatus. Here.
- ECR DescribeRepositories: 100 a page without maxResults, no paging with repositoryNames
  (tests/emulation/test_moto_ecr.py, test_describe_repositories_*).
- ECR DescribePullThroughCacheRules and DescribeRepositoryCreationTemplates: 100 a page without maxResults, which
  the registry's quotas (50 rules; templates as emulated, 100) keep from ever being reached; paging with maxResults
  (test_moto_ecr.py, test_describe_rules_pagination, test_template_pagination); unknown template prefixes are no
  error (test_template_describe_unknown_prefix_is_empty).
- ECR BatchDeleteImage: per-image failures in the answer (tests/emulation/test_images.py).
- ECR DeleteRepository: force defaults to false, so a repository with images is refused. Here.
- ECR GetRegistryScanningConfiguration: BASIC until configured (test_moto_ecr_registry.py).
- DynamoDB BatchWriteItem: 1 to 25 requests; what is not written comes back as UnprocessedItems. Here (moto accepts
  any number: emulation/dynamodb.py adds the limit).
- DynamoDB BatchGetItem: at most 100 keys (moto); Scan: pages of at most 1 MB read (moto); GetItem and Scan are
  eventually consistent unless ConsistentRead is set: the provider sets it on every read it decides on, and moto
  (one copy of each item) cannot be less consistent. Here.
- CloudFormation DescribeStacks: a deleted stack is found by its StackId, never by its name (emulation/stacks.py).
  Here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulation import dynamodb
from emulation.cloudformation import ACCOUNT_ID, REGION, STACK_ID
from emulation.moto_ecr import seed_image
from emulation.stacks import set_stack_status

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def ecr(aws: None) -> Any:
    return boto3.client("ecr")


@pytest.fixture
def table(aws: None) -> Iterator[str]:
    client: Any = boto3.client("dynamodb")
    client.create_table(
        TableName="audit",
        AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield "audit"
    dynamodb.reset()


def digests(details: list[dict[str, Any]]) -> set[str]:
    return {detail["imageDigest"] for detail in details}


def test_describe_images_returns_only_active_images_unless_asked_for_any(ecr: Any) -> None:
    by_status = {
        status: seed_image(ACCOUNT_ID, REGION, "quay/app", pushed_at=NOW, status=status, name=status)
        for status in ("ACTIVE", "ARCHIVED", "ACTIVATING")
    }

    unfiltered = ecr.describe_images(repositoryName="quay/app")["imageDetails"]
    every = ecr.describe_images(repositoryName="quay/app", filter={"imageStatus": "ANY"})["imageDetails"]
    archived = ecr.describe_images(repositoryName="quay/app", filter={"imageStatus": "ARCHIVED"})["imageDetails"]
    by_id = ecr.describe_images(repositoryName="quay/app", imageIds=[{"imageDigest": by_status["ARCHIVED"]}])

    assert digests(unfiltered) == {by_status["ACTIVE"]}
    assert digests(every) == set(by_status.values())
    assert digests(archived) == {by_status["ARCHIVED"]}
    assert by_id["imageDetails"] == []  # the default status filter applies to images named by id too


def test_describe_images_returns_100_a_page_by_default_and_filters_by_tag_status(ecr: Any) -> None:
    for number in range(120):
        seed_image(ACCOUNT_ID, REGION, "quay/app", pushed_at=NOW, name=str(number), tags=(f"t{number}",) * (number % 2))

    first = ecr.describe_images(repositoryName="quay/app")
    tagged = ecr.get_paginator("describe_images").paginate(repositoryName="quay/app", filter={"tagStatus": "TAGGED"})
    every = ecr.get_paginator("describe_images").paginate(repositoryName="quay/app", filter={"tagStatus": "ANY"})

    assert len(first["imageDetails"]) == 100
    assert "nextToken" in first
    assert sum(len(page["imageDetails"]) for page in tagged) == 60
    assert sum(len(page["imageDetails"]) for page in every) == 120


def test_delete_repository_refuses_a_repository_with_images_unless_forced(ecr: Any) -> None:
    seed_image(ACCOUNT_ID, REGION, "quay/app", pushed_at=NOW)

    with pytest.raises(ClientError, match="RepositoryNotEmpty"):
        ecr.delete_repository(repositoryName="quay/app")


def test_batch_write_item_takes_at_most_25_requests(table: str) -> None:
    client: Any = boto3.client("dynamodb")
    requests = [{"PutRequest": {"Item": {"Id": {"S": f"item-{number}"}}}} for number in range(26)]

    with pytest.raises(ClientError, match="less than or equal to 25"):
        client.batch_write_item(RequestItems={table: requests})
    answer = client.batch_write_item(RequestItems={table: requests[:25]})

    assert answer["UnprocessedItems"] == {}
    assert client.scan(TableName=table)["Count"] == 25


def test_batch_write_item_returns_what_it_could_not_write(table: str) -> None:
    client: Any = boto3.client("dynamodb")
    requests = [{"PutRequest": {"Item": {"Id": {"S": f"item-{number}"}}}} for number in range(3)]
    dynamodb.leave_unprocessed(1)

    answer = client.batch_write_item(RequestItems={table: requests})

    assert answer["UnprocessedItems"] == {table: requests[1:]}
    assert client.scan(TableName=table)["Count"] == 1


def test_batch_get_item_takes_at_most_100_keys(table: str) -> None:
    client: Any = boto3.client("dynamodb")
    keys = [{"Id": {"S": f"item-{number}"}} for number in range(101)]

    with pytest.raises(ClientError, match="100"):
        client.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})


def test_scan_reads_at_most_1_mb_a_page(table: str) -> None:
    client: Any = boto3.client("dynamodb")
    for number in range(150):
        client.put_item(TableName=table, Item={"Id": {"S": f"item-{number:03d}"}, "Pad": {"S": "x" * 10_000}})

    first = client.scan(TableName=table, ConsistentRead=True)

    assert 0 < first["Count"] < 150
    assert "LastEvaluatedKey" in first


def test_describe_stacks_finds_a_deleted_stack_by_its_id_only(aws: None) -> None:
    cloudformation: Any = boto3.client("cloudformation")
    set_stack_status(STACK_ID, "ROLLBACK_IN_PROGRESS")
    (rolling_back,) = cloudformation.describe_stacks(StackName=STACK_ID)["Stacks"]
    set_stack_status(STACK_ID, "DELETE_COMPLETE")

    (deleted,) = cloudformation.describe_stacks(StackName=STACK_ID)["Stacks"]
    with pytest.raises(ClientError, match="does not exist"):
        cloudformation.describe_stacks(StackName="cache-stack")

    assert (rolling_back["StackStatus"], deleted["StackStatus"]) == ("ROLLBACK_IN_PROGRESS", "DELETE_COMPLETE")
    assert deleted["StackId"] == STACK_ID
