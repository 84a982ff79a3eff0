"""What the warm-up tests of the handler and integration tiers share: a local upstream holding an image and a
two-platform index, and the local ECR endpoint with a Docker Hub cache of it (its credentials in a secret)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from emulation.cloudformation import ACCOUNT_ID, REGION
from emulation.registry import EcrRegistryEndpoint, UpstreamRegistry
from tests.conftest import create_secret, secret_value


@contextmanager
def nginx_and_redis(layer_sizes: tuple[int, ...]) -> Iterator[UpstreamRegistry]:
    """An upstream with library/nginx:1.27 (one image) and library/redis:7 (an index of linux/amd64 and arm64)."""
    upstream = UpstreamRegistry()
    upstream.add_image("library/nginx", "1.27", layer_sizes)
    upstream.add_index("library/redis", "7", ("linux/amd64", "linux/arm64"), layer_sizes)
    try:
        yield upstream
    finally:
        upstream.close()


@contextmanager
def docker_hub_cache(ecr: Any, upstream: UpstreamRegistry) -> Iterator[EcrRegistryEndpoint]:
    """The local ECR endpoint, and a cache rule `docker-hub` of `upstream` whose credentials are in a secret."""
    endpoint = EcrRegistryEndpoint(ACCOUNT_ID, REGION)
    endpoint.serve_upstream("registry-1.docker.io", upstream)
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub",
        upstreamRegistryUrl="registry-1.docker.io",
        credentialArn=create_secret("ecr-pullthroughcache/hub", secret_value()),
    )
    try:
        yield endpoint
    finally:
        endpoint.close()
