"""Cache warm-up at scale: Custom::CacheWarmUp's engine warms N images of L layers each through the local ECR
registry endpoint (emulation/registry) from a local upstream, with a latency injected into every HTTP request of
both registries, against `docker pull`'s sequence made by a bare sequential loop in the same run (log in, then for
each image its manifest and each layer one after the other, following the redirect), which then polls DescribeImages
until ECR has imported everything, so that both end with the same cache.

    python bench/warm_up.py [--images 50] [--layers 5] [--layer-kib 256] [--latency 0.005]

Prints, for each: the wall time, images per second, and the ratio to the bare loop's; then the peak of Python
memory (tracemalloc) during the provider's warm-up with layers of the given size and with layers eight times
larger: streaming keeps it flat, whatever the layer size. Asserts nothing.

Both registries and moto run in this process (moto in-process, the registries on 127.0.0.1 threads), so the
figures include the emulation's own work; the ratio between the two runs, measured alike, is the point. Each run
warms its own cache prefix, so each starts cold.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import boto3
import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from emulation import moto_ecr  # noqa: E402
from emulation.cloudformation import ACCOUNT_ID, REGION  # noqa: E402
from emulation.moto_server import FAKE_AWS_ENVIRONMENT  # noqa: E402
from emulation.registry import EcrRegistryEndpoint, UpstreamRegistry  # noqa: E402

UPSTREAM_URL = "public.ecr.aws"  # needs no credentials


def publish(upstream: UpstreamRegistry, images: int, layers: int, layer_bytes: int, seed: str) -> list[str]:
    """`images` images of `layers` layers each, upstream; their references as the warm-up takes them."""
    references = []
    for number in range(images):
        name = f"bench/{seed}-image-{number:03d}"
        upstream.add_image(name, "1", tuple(layer_bytes for _ in range(layers)), seed=f"{seed}/{number}")
        references.append(f"{name}:1")
    return references


def provider_warm_up(prefix: str, references: list[str]) -> float:
    """The provider's engine: pull every image (layers in parallel), then wait until ECR reports each."""
    from ecr_cache_provider.aws.ecr import EcrGateway
    from ecr_cache_provider.deadline import Deadline
    from ecr_cache_provider.engine import warm_up
    from ecr_cache_provider.grammar.image_reference import parse

    deadline = Deadline(time.monotonic() + 3600, margin_seconds=0)
    settings = warm_up.WarmUpSettings(prefix, tuple(parse(text, prefix) for text in references))
    started = time.perf_counter()
    outcomes = warm_up.warm(EcrGateway(deadline), settings, deadline, None, "bench")
    elapsed = time.perf_counter() - started
    assert all(outcome.state == warm_up.WARMED for outcome in outcomes), [o.reason for o in outcomes]
    return elapsed


def bare_docker_pull(prefix: str, references: list[str]) -> float:
    """docker pull's sequence, one request at a time, then DescribeImages until ECR has every image."""
    ecr: Any = boto3.client("ecr", region_name=REGION)
    started = time.perf_counter()
    data = ecr.get_authorization_token()["authorizationData"][0]
    endpoint, headers = data["proxyEndpoint"], {"Authorization": f"Basic {data['authorizationToken']}"}
    http = urllib3.PoolManager()
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    for reference in references:
        name, _, tag = reference.partition(":")
        manifest = http.request("GET", f"{endpoint}/v2/{prefix}/{name}/manifests/{tag}", headers=headers | accept)
        document = manifest.json()
        for descriptor in [document["config"], *document["layers"]]:
            answer = http.request("GET", f"{endpoint}/v2/{prefix}/{name}/blobs/{descriptor['digest']}",
                                  headers=headers, redirect=False, preload_content=False)  # fmt: skip
            answer.release_conn()
            blob = http.request("GET", answer.headers["Location"], preload_content=False)
            checksum = hashlib.sha256()
            for chunk in blob.stream(256 * 1024):
                checksum.update(chunk)
            blob.release_conn()
    for reference in references:  # until ECR has imported each
        name, _, tag = reference.partition(":")
        while True:
            try:
                ecr.describe_images(repositoryName=f"{prefix}/{name}", imageIds=[{"imageTag": tag}])
                break
            except ecr.exceptions.ImageNotFoundException:
                time.sleep(0.01)
    return time.perf_counter() - started


def peak_memory(prefix: str, references: list[str]) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    provider_warm_up(prefix, references)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--layer-kib", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.005, help="seconds added to every registry request")
    options = parser.parse_args()

    import os

    os.environ.update(FAKE_AWS_ENVIRONMENT)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_PROFILE"):
        os.environ.pop(name, None)
    from moto import mock_aws

    moto_ecr.install()
    upstream = UpstreamRegistry(latency=options.latency)
    layer_bytes = options.layer_kib * 1024
    with mock_aws():
        registry = EcrRegistryEndpoint(ACCOUNT_ID, REGION, latency=options.latency)
        registry.serve_upstream(UPSTREAM_URL, upstream)
        ecr: Any = boto3.client("ecr", region_name=REGION)
        for prefix in ("bare", "provider", "small", "large"):
            ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl=UPSTREAM_URL)
        references = publish(upstream, options.images, options.layers, layer_bytes, "main")
        print(f"{options.images} images of {options.layers} layers of {options.layer_kib} KiB, "
              f"{options.latency * 1000:.0f} ms latency per registry request")  # fmt: skip

        bare = bare_docker_pull("bare", references)
        provider = provider_warm_up("provider", references)
        print(f"  bare docker pull loop: {bare:6.2f} s, {options.images / bare:6.1f} images/s (baseline)")
        print(f"  Custom::CacheWarmUp:   {provider:6.2f} s, {options.images / provider:6.1f} images/s, "
              f"{bare / provider:.2f}x the baseline")  # fmt: skip

        few = max(2, options.images // 10)
        small = peak_memory("small", publish(upstream, few, options.layers, layer_bytes, "small"))
        large = peak_memory("large", publish(upstream, few, options.layers, layer_bytes * 8, "large"))
        print(f"  peak Python memory warming {few} images: {small / 2**20:.1f} MiB with {options.layer_kib} KiB "
              f"layers, {large / 2**20:.1f} MiB with {options.layer_kib * 8} KiB layers "
              f"({large / small:.2f}x for 8x the bytes)")  # fmt: skip
        registry.close()
    upstream.close()


if __name__ == "__main__":
    main()
