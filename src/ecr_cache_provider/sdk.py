"""The AWS SDK the provider runs on: the Lambda runtime's boto3, not a bundled copy (see the README's "AWS SDK").

The runtime's botocore lags behind the newest and changes when AWS updates the runtime, so the provider checks the
ECR API it is about to use against the model of the botocore it was given, and fails a Create or Update with a
Reason naming the version it needs, rather than with a parameter error halfway through a change.
"""

from __future__ import annotations

from typing import Any

import botocore

from ecr_cache_provider.failures import ResourceFailure

# The oldest botocore whose ECR model has every operation and parameter below: 1.37.11 added customRoleArn and
# upstreamRepositoryPrefix (pull-through cache from another ECR registry). The built package is tested on exactly
# this version and on the newest (tests/built). botocore does not check enum values on the client, so newer
# upstream registries (such as chainguard) need no newer SDK.
MINIMUM_BOTOCORE = "1.37.11"

# Every ECR operation the provider calls, with every parameter it sends.
ECR_API: dict[str, tuple[str, ...]] = {
    "CreatePullThroughCacheRule": (
        "ecrRepositoryPrefix",
        "upstreamRegistryUrl",
        "upstreamRegistry",
        "credentialArn",
        "customRoleArn",
        "upstreamRepositoryPrefix",
    ),
    "UpdatePullThroughCacheRule": ("ecrRepositoryPrefix", "credentialArn", "customRoleArn"),
    "ValidatePullThroughCacheRule": ("ecrRepositoryPrefix",),
    "DescribePullThroughCacheRules": ("ecrRepositoryPrefixes",),
    "DeletePullThroughCacheRule": ("ecrRepositoryPrefix",),
    "DescribeRepositories": ("maxResults", "nextToken"),
    "DeleteRepository": ("repositoryName",),
    "DescribeImages": ("repositoryName", "maxResults", "nextToken"),
    "BatchGetImage": ("repositoryName", "imageIds", "acceptedMediaTypes"),
    "BatchDeleteImage": ("repositoryName", "imageIds"),
    "GetLifecyclePolicy": ("repositoryName",),
    "PutLifecyclePolicy": ("repositoryName", "lifecyclePolicyText"),
    "DeleteLifecyclePolicy": ("repositoryName",),
    "CreateRepositoryCreationTemplate": ("prefix", "description", "lifecyclePolicy", "appliedFor"),
    "UpdateRepositoryCreationTemplate": ("prefix", "description", "lifecyclePolicy", "appliedFor"),
    "DescribeRepositoryCreationTemplates": ("prefixes",),
    "DeleteRepositoryCreationTemplate": ("prefix",),
    "GetRegistryPolicy": (),
    "PutRegistryPolicy": ("policyText",),
    "DeleteRegistryPolicy": (),
    "GetRegistryScanningConfiguration": (),
    "PutRegistryScanningConfiguration": ("scanType", "rules"),
}

# Custom::CacheImageExpiry reads imageStatus from DescribeImages (ARCHIVED images are left alone); botocore parses
# only what its model knows, so before 1.41.0 every archived image would look active.
IMAGE_EXPIRY_MINIMUM_BOTOCORE = "1.41.0"

_checked: list[str] | None = None  # the answer for this execution environment's botocore, found once


class SdkTooOld(ResourceFailure):
    """The runtime's botocore does not know an ECR operation or parameter the provider uses."""


def missing_from(service_model: Any) -> list[str]:
    """The operations and parameters of ECR_API that a botocore ECR service model does not have."""
    known = set(service_model.operation_names)
    missing: list[str] = []
    for operation, parameters in ECR_API.items():
        if operation not in known:
            missing.append(operation)
            continue
        members = service_model.operation_model(operation).input_shape.members
        missing += [f"{operation}.{parameter}" for parameter in parameters if parameter not in members]
    return missing


def require_ecr_api(client: Any) -> None:
    """Fail when the botocore behind `client` lacks part of the ECR API this provider calls."""
    global _checked  # noqa: PLW0603 - the botocore of an execution environment never changes
    if _checked is None:
        _checked = missing_from(client.meta.service_model)
    if _checked:
        raise SdkTooOld(
            f"The Lambda runtime's botocore {botocore.__version__} lacks {', '.join(_checked[:3])}"
            f"{' and more' if len(_checked) > 3 else ''}: this provider needs botocore {MINIMUM_BOTOCORE} or newer"
        )


def require_image_expiry_api(client: Any) -> None:
    """Fail when the runtime's botocore cannot tell archived images from active ones."""
    if "imageStatus" not in client.meta.service_model.shape_for("ImageDetail").members:
        raise SdkTooOld(
            f"The Lambda runtime's botocore {botocore.__version__} does not report imageStatus, so archived images "
            f"cannot be told apart: Custom::CacheImageExpiry needs botocore {IMAGE_EXPIRY_MINIMUM_BOTOCORE} or newer"
        )
