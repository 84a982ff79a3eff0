"""`make local --warm IMAGE[,IMAGE...]`: the registries a warm-up pulls through, and the warm-up itself.

The local upstream registry (emulation/registry/upstream.py) serves a few fixture images, in the role of every
upstream of the default stack's caches (public.ecr.aws, quay.io, registry.k8s.io, and the credentialed ones); the
local ECR registry endpoint (emulation/registry/ecr.py), with pull-through-cache semantics, is what
GetAuthorizationToken's `proxyEndpoint` names. Once the provider stack is played, tools/stack_player/warm_up.yaml is
played as a consumer stack (`<stack>-warm-up`) with one Custom::CacheWarmUp, through the provider exactly as other
custom resources are, then deleted again (its Delete removes no image). Each image is then reported as ECR has it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulation.cloudformation import ACCOUNT_ID, REGION
from emulation.registry import EcrRegistryEndpoint, UpstreamRegistry
from tools.stack_player.config import ConfigError

WARM_UP_TEMPLATE = Path(__file__).with_name("warm_up.yaml")
# The default stack's upstreams (template.yaml, Mappings: Upstreams): the local upstream stands in for each.
UPSTREAM_URLS = ("public.ecr.aws", "quay.io", "registry.k8s.io", "registry-1.docker.io", "ghcr.io",
                 "registry.gitlab.com")  # fmt: skip
# The fixture images every local upstream serves: (repository, tag, platforms or None for one image, layer sizes).
FIXTURES: tuple[tuple[str, str, tuple[str, ...] | None, tuple[int, ...]], ...] = (
    ("docker/library/nginx", "1.27", None, (2048, 65_536, 300_000)),
    ("docker/library/redis", "7.4", ("linux/amd64", "linux/arm64"), (4096, 120_000)),
    ("docker/library/alpine", "3.20", None, (80_000,)),
)
MAX_IMAGES = 100  # Custom::CacheWarmUp's Images (docs/CacheWarmUp.md)


@dataclass
class Registries:
    """The local upstream registry and the local ECR registry endpoint, running."""

    upstream: UpstreamRegistry
    endpoint: EcrRegistryEndpoint

    @classmethod
    def start(cls) -> Registries:
        upstream = UpstreamRegistry()
        for repository, tag, platforms, layers in FIXTURES:
            if platforms is None:
                upstream.add_image(repository, tag, layers)
            else:
                upstream.add_index(repository, tag, platforms, layers)
        endpoint = EcrRegistryEndpoint(ACCOUNT_ID, REGION)
        for url in UPSTREAM_URLS:
            endpoint.serve_upstream(url, upstream)
        return cls(upstream, endpoint)

    def close(self) -> None:
        self.endpoint.close()
        self.upstream.close()


def check_images(images: list[str], prefix: str) -> None:
    """Raise ConfigError naming each image reference the warm-up would refuse (the provider's own grammar)."""
    from ecr_cache_provider.grammar.image_reference import BadReference, parse  # noqa: PLC0415 - src/ is on the path by now

    if len(images) > MAX_IMAGES:
        raise ConfigError(f"--warm: {len(images)} images, Custom::CacheWarmUp takes at most {MAX_IMAGES}")
    problems = []
    for image in images:
        try:
            parse(image, prefix)
        except BadReference as bad:
            problems.append(f"--warm: {image!r}: {bad}")
    if problems:
        raise ConfigError("\n".join(problems))


def split_images(values: list[str]) -> list[str]:
    """`--warm a,b --warm c` as [a, b, c]; an empty item is kept, so that it is refused by name."""
    return [item.strip() for value in values for item in value.split(",")]


@dataclass
class ImageLine:
    image: str
    ok: bool
    text: str


@dataclass
class WarmUpReport:
    prefix: str
    images: list[str]
    status: str  # the warm-up resource's Create: SUCCEEDED or FAILED
    lines: list[ImageLine] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def render(self) -> str:
        head = f"Warm-up of {len(self.images)} images through {self.prefix} (Custom::CacheWarmUp): {self.status}"
        width = max(len(line.image) for line in self.lines) if self.lines else 0
        return "\n".join([head, *(f"  {line.image.ljust(width)}  {line.text}" for line in self.lines)]) + "\n"


def failure_reasons(reason: str) -> dict[str, str]:
    """Image -> reason, from the warm-up's Reason ("N of M images could not be warmed: IMAGE: REASON; ...")."""
    _, found, listed = reason.partition(" images could not be warmed: ")
    if not found:
        return {}
    reasons = {}
    for part in re.split(r"; (?=\S+: )", listed):
        image, separator, why = part.partition(": ")
        if separator:
            reasons[image] = why
    return reasons


def describe(ecr: Any, prefix: str, image: str, reason: str | None) -> ImageLine:
    """One image as ECR now has it: the manifest (an index's platforms), its layers available out of those its
    manifests name, and its digest; or why it was not warmed."""
    from ecr_cache_provider.grammar.image_reference import parse  # noqa: PLC0415 - as above

    reference = parse(image, prefix)
    repository = reference.cached_repository(prefix)
    image_id = {"imageTag": reference.tag} if reference.tag else {"imageDigest": reference.digest}
    try:
        found = ecr.batch_get_image(repositoryName=repository, imageIds=[image_id])["images"]
    except ecr.exceptions.RepositoryNotFoundException:
        found = []
    if reason is not None or not found:
        return ImageLine(image, False, f"FAILED: {reason or 'not in ECR after the warm-up (see provider.log)'}")
    manifest, digest = _json(found[0]["imageManifest"]), found[0]["imageId"]["imageDigest"]
    kind = "manifest pulled"
    manifests = [manifest]
    if "manifests" in manifest:  # an index: each platform's manifest the cache holds
        children = [{"imageDigest": entry["digest"]} for entry in manifest["manifests"]]
        held = ecr.batch_get_image(repositoryName=repository, imageIds=children)["images"]
        manifests = [_json(child["imageManifest"]) for child in held]
        kind = f"index pulled, {len(held)}/{len(children)} platform manifests"
    layers = [layer["digest"] for child in manifests for layer in child.get("layers", [])]
    available = 0
    if layers:
        checked = ecr.batch_check_layer_availability(repositoryName=repository, layerDigests=layers)["layers"]
        available = sum(layer.get("layerAvailability") == "AVAILABLE" for layer in checked)
    state = "available in ECR" if available == len(layers) else "NOT all available in ECR"
    return ImageLine(image, available == len(layers), f"{kind}; layers {available}/{len(layers)} {state}; {digest}")


def report(ecr: Any, prefix: str, images: list[str], status: str, reason: str) -> WarmUpReport:
    reasons = failure_reasons(reason)
    if status != "SUCCEEDED" and not reasons:  # refused as a whole (no such cache, say): the Reason for each
        reasons = dict.fromkeys(images, reason or status)
    lines = [describe(ecr, prefix, image, reasons.get(image)) for image in images]
    return WarmUpReport(prefix, images, status, lines)


def _json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
