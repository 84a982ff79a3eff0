"""The image part of the ECR emulation, against botocore's ECR model: DescribeImages paging, filters and fields,
BatchGetImage as a pull, BatchDeleteImage's per-image failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from emulation.cloudformation import ACCOUNT_ID, REGION
from emulation.moto_ecr import seed_image

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def ecr(aws: None) -> Any:
    return boto3.client("ecr")


def test_describe_images_pages_and_reports_pull_times_and_status(ecr: Any) -> None:
    for number in range(250):
        seed_image(ACCOUNT_ID, REGION, "quay/app", pushed_at=NOW - timedelta(days=number), name=str(number))
    seed_image(ACCOUNT_ID, REGION, "quay/app", pushed_at=NOW, last_pulled_at=NOW, status="ARCHIVED", name="archived")
    pages = list(
        ecr.get_paginator("describe_images").paginate(
            repositoryName="quay/app", filter={"imageStatus": "ANY"}, PaginationConfig={"PageSize": 100}
        )
    )
    assert [len(page["imageDetails"]) for page in pages] == [100, 100, 51]
    archived = ecr.describe_images(repositoryName="quay/app", filter={"imageStatus": "ARCHIVED"})["imageDetails"]
    assert [(d["imageStatus"], d["lastRecordedPullTime"]) for d in archived] == [("ARCHIVED", NOW)]
    with pytest.raises(ClientError, match=r"maxResults|1000"):
        ecr.describe_images(repositoryName="quay/app", maxResults=1001)
    with pytest.raises(ClientError, match="RepositoryNotFound"):
        ecr.describe_images(repositoryName="quay/none")


def test_index_size_pull_on_get_and_referenced_manifest_refused(ecr: Any) -> None:
    child = seed_image(ACCOUNT_ID, REGION, "quay/app", pushed_at=NOW, size=300, name="amd64")
    index = seed_image(ACCOUNT_ID, REGION, "quay/app", pushed_at=NOW, references=(child,), tags=("1",))
    (detail,) = ecr.describe_images(repositoryName="quay/app", imageIds=[{"imageDigest": index}])["imageDetails"]
    assert detail["imageSizeInBytes"] == 300
    assert "lastRecordedPullTime" not in detail
    ecr.batch_get_image(repositoryName="quay/app", imageIds=[{"imageDigest": index}])
    (detail,) = ecr.describe_images(repositoryName="quay/app", imageIds=[{"imageDigest": index}])["imageDetails"]
    assert "lastRecordedPullTime" in detail  # a manifest read is a pull
    missing = "sha256:" + "0" * 64
    answer = ecr.batch_delete_image(
        repositoryName="quay/app", imageIds=[{"imageDigest": child}, {"imageDigest": missing}]
    )
    assert answer["imageIds"] == []
    assert [f["failureCode"] for f in answer["failures"]] == ["ImageReferencedByManifestList", "ImageNotFound"]
    answer = ecr.batch_delete_image(repositoryName="quay/app", imageIds=[{"imageDigest": index}])
    assert answer["imageIds"] == [{"imageDigest": index, "imageTag": "1"}]
    assert ecr.batch_delete_image(repositoryName="quay/app", imageIds=[{"imageDigest": child}])["failures"] == []
    with pytest.raises(ParamValidationError):
        ecr.batch_delete_image(repositoryName="quay/app", imageIds=[])


def test_image_records_seed_the_same_images_again(ecr: Any) -> None:
    """What the registry snapshot of `make local` keeps: digests, times, tags, sizes, status and index references."""
    from emulation.moto_ecr import image_records, seed_image_record

    amd64 = seed_image(ACCOUNT_ID, REGION, "quay/app", pushed_at=NOW, last_pulled_at=NOW, size=7, name="amd64")
    arm64 = seed_image(ACCOUNT_ID, REGION, "quay/app", pushed_at=NOW, status="ARCHIVED", name="arm64")
    seed_image(ACCOUNT_ID, REGION, "quay/app", pushed_at=NOW, tags=("1", "latest"), references=(amd64, arm64))
    described = ecr.describe_images(repositoryName="quay/app", filter={"imageStatus": "ANY"})["imageDetails"]
    records = image_records(ACCOUNT_ID, REGION, "quay/app")
    ecr.delete_repository(repositoryName="quay/app", force=True)

    for record in records:
        seed_image_record(ACCOUNT_ID, REGION, "quay/app", record)

    assert ecr.describe_images(repositoryName="quay/app", filter={"imageStatus": "ANY"})["imageDetails"] == described
    assert [bool(record["references"]) for record in records] == [False, False, True]  # manifests first
