"""Which image URIs a sweep counts as in use: this account's registry in this Region, by any of the hosts ECR
serves it under (IPv4, FIPS, dual-stack, China), by tag, digest or neither (then `latest`)."""

from __future__ import annotations

import pytest

from ecr_cache_provider.aws.workloads import ImageReference, ImagesInUse

ACCOUNT, REGION = "123456789012", "us-east-1"
DIGEST = "sha256:" + "a" * 64


BY_TAG = ImageReference("hub/nginx", tag="1.27")
BY_DIGEST = ImageReference("hub/nginx", DIGEST)


@pytest.mark.parametrize(
    ("uri", "region", "reference"),
    [
        (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/hub/nginx:1.27", REGION, BY_TAG),
        (f"{ACCOUNT}.dkr.ecr-fips.us-east-1.amazonaws.com/hub/nginx@{DIGEST}", REGION, BY_DIGEST),
        (f"{ACCOUNT}.dkr-ecr.us-east-1.on.aws/hub/nginx:1.27", REGION, BY_TAG),
        (f"{ACCOUNT}.dkr-ecr-fips.us-east-1.on.aws/hub/nginx:1.27@{DIGEST}", REGION, BY_DIGEST),
        (f"{ACCOUNT}.dkr-ecr.us-east-1.on.aws/hub/nginx", REGION, ImageReference("hub/nginx", tag="latest")),
        (f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn/hub/nginx:1.27", "cn-north-1", BY_TAG),
    ],
)
def test_this_registry_is_recognised_by_every_host_it_is_pulled_from(
    uri: str, region: str, reference: ImageReference
) -> None:
    found = ImagesInUse()
    found.add(uri, "ecs:service", ACCOUNT, region)
    assert found.references == {reference: {"ecs:service"}}


@pytest.mark.parametrize(
    "uri",
    [
        "210987654321.dkr-ecr.us-east-1.on.aws/hub/nginx:1.27",  # another account's registry
        f"{ACCOUNT}.dkr-ecr.eu-west-1.on.aws/hub/nginx:1.27",  # another Region's
        f"{ACCOUNT}.dkr.ecr.us-east-1.on.aws/hub/nginx:1.27",  # no such host
        "public.ecr.aws/nginx/nginx:1.27",
        "nginx:1.27",
    ],
)
def test_other_registries_are_not_this_one(uri: str) -> None:
    found = ImagesInUse()
    found.add(uri, "ecs:service", ACCOUNT, REGION)
    assert found.references == {}
