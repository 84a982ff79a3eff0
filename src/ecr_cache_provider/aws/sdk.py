"""The AWS SDK the provider runs on: the Lambda runtime's boto3, not a bundled copy (docs/internals.md says why).

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

# What the provider sends in every repository creation template call (all in the ECR model since before 1.37.11).
TEMPLATE_SETTINGS = (
    "prefix",
    "description",
    "lifecyclePolicy",
    "repositoryPolicy",
    "resourceTags",
    "imageTagMutability",
    "encryptionConfiguration",
    "customRoleArn",
)

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
    "DescribePullThroughCacheRules": ("ecrRepositoryPrefixes", "maxResults", "nextToken"),
    "DeletePullThroughCacheRule": ("ecrRepositoryPrefix",),
    "DeleteRepository": ("repositoryName", "force"),
    "DescribeImages": ("repositoryName", "imageIds", "maxResults", "nextToken", "filter"),
    "GetAuthorizationToken": (),
    "BatchCheckLayerAvailability": ("repositoryName", "layerDigests"),
    "BatchGetImage": ("repositoryName", "imageIds", "acceptedMediaTypes"),
    "BatchDeleteImage": ("repositoryName", "imageIds"),
    "GetLifecyclePolicy": ("repositoryName",),
    "PutLifecyclePolicy": ("repositoryName", "lifecyclePolicyText"),
    "DeleteLifecyclePolicy": ("repositoryName",),
    "DescribeRepositories": ("repositoryNames", "maxResults", "nextToken"),
    "GetRepositoryPolicy": ("repositoryName",),
    "SetRepositoryPolicy": ("repositoryName", "policyText"),
    "DeleteRepositoryPolicy": ("repositoryName",),
    "ListTagsForResource": ("resourceArn",),
    "TagResource": ("resourceArn", "tags"),
    "UntagResource": ("resourceArn", "tagKeys"),
    "PutImageTagMutability": ("repositoryName", "imageTagMutability"),
    "CreateRepositoryCreationTemplate": (*TEMPLATE_SETTINGS, "appliedFor"),
    "UpdateRepositoryCreationTemplate": TEMPLATE_SETTINGS,
    "DescribeRepositoryCreationTemplates": ("prefixes",),
    "DeleteRepositoryCreationTemplate": ("prefix",),
    "GetRegistryPolicy": (),
    "PutRegistryPolicy": ("policyText",),
    "DeleteRegistryPolicy": (),
    "GetRegistryScanningConfiguration": (),
    "PutRegistryScanningConfiguration": ("scanType", "rules"),
}

# Custom::CacheImageExpiry reads imageStatus from DescribeImages (ARCHIVED images are left alone) and asks for every
# status (filter.imageStatus ANY; without it ECR returns ACTIVE images only); botocore parses only what its model
# knows, so before 1.41.0 every archived image would look active, and the filter could not be sent.
IMAGE_EXPIRY_MINIMUM_BOTOCORE = "1.41.0"

# Custom::CachedRepositorySettings with ImageTagMutabilityExclusionFilters (IMMUTABLE_WITH_EXCLUSION or
# MUTABLE_WITH_EXCLUSION): botocore 1.39.11 added imageTagMutabilityExclusionFilters to PutImageTagMutability, the
# creation template operations and the Repository shape. Only that property needs it (1.39.10's model lacks it).
TAG_MUTABILITY_EXCLUSIONS_MINIMUM_BOTOCORE = "1.39.11"
TAG_MUTABILITY_EXCLUSIONS_API: dict[str, tuple[str, ...]] = dict.fromkeys(
    ("PutImageTagMutability", "CreateRepositoryCreationTemplate", "UpdateRepositoryCreationTemplate"),
    ("imageTagMutabilityExclusionFilters",),
)

_checked: list[str] | None = None  # the answer for this execution environment's botocore, found once


class SdkTooOld(ResourceFailure):
    """The runtime's botocore does not know an ECR operation or parameter the provider uses."""


def missing_from(service_model: Any, api: dict[str, tuple[str, ...]] = ECR_API) -> list[str]:
    """The operations and parameters of `api` that a botocore ECR service model does not have."""
    known = set(service_model.operation_names)
    missing: list[str] = []
    for operation, parameters in api.items():
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
    """Fail when the runtime's botocore cannot tell archived images from active ones, or cannot ask DescribeImages
    for every status (filter.imageStatus ANY): both arrived in botocore 1.41.0."""
    model = client.meta.service_model
    if not all("imageStatus" in model.shape_for(shape).members for shape in ("ImageDetail", "DescribeImagesFilter")):
        raise SdkTooOld(
            f"The Lambda runtime's botocore {botocore.__version__} does not report imageStatus, so archived images "
            f"cannot be told apart: Custom::CacheImageExpiry needs botocore {IMAGE_EXPIRY_MINIMUM_BOTOCORE} or newer"
        )


def require_tag_mutability_exclusions_api(client: Any) -> None:
    """Fail when the runtime's botocore cannot send image tag mutability exclusion filters."""
    if missing_from(client.meta.service_model, TAG_MUTABILITY_EXCLUSIONS_API):
        raise SdkTooOld(
            f"The Lambda runtime's botocore {botocore.__version__} cannot send ImageTagMutabilityExclusionFilters: "
            f"they need botocore {TAG_MUTABILITY_EXCLUSIONS_MINIMUM_BOTOCORE} or newer"
        )
