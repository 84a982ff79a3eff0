"""Images as a registry stores them, generated in code: layers of given sizes (their bytes made on demand from a
seed, so a large layer costs no memory), image configs, image manifests and image indexes of several platforms
(OCI image spec: manifest.md, image-index.md; descriptors carry mediaType, digest and size)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({IMAGE_INDEX, DOCKER_MANIFEST_LIST})
CHUNK = 64 * 1024


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """A layer or config: `size` bytes made from `seed` on demand (a 64 KiB pattern repeated)."""

    seed: str
    size: int
    media_type: str = LAYER
    content: bytes | None = None  # small blobs (configs) keep their bytes
    digest: str = field(default="", compare=False)

    @classmethod
    def layer(cls, seed: str, size: int) -> Blob:
        blob = cls(seed, size)
        digest = hashlib.sha256()
        for chunk in blob.chunks():
            digest.update(chunk)
        return cls(seed, size, digest="sha256:" + digest.hexdigest())

    @classmethod
    def config(cls, content: bytes) -> Blob:
        return cls("", len(content), IMAGE_CONFIG, content, digest_of(content))

    def chunks(self, chunk_size: int = CHUNK) -> Iterator[bytes]:
        if self.content is not None:
            yield self.content
            return
        pattern = (hashlib.sha256(self.seed.encode()).digest() * (CHUNK // 32 + 1))[:CHUNK]
        left = self.size
        while left > 0:
            piece = pattern[: min(chunk_size, CHUNK, left)]
            left -= len(piece)
            yield piece

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """A manifest as served: its media type, its exact bytes and their digest; the blobs an image manifest
    references, or the platform manifests an index references."""

    media_type: str
    body: bytes
    blobs: tuple[Blob, ...] = ()
    children: tuple[Manifest, ...] = ()
    platform: str = ""

    @property
    def digest(self) -> str:
        return digest_of(self.body)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def image(seed: str, layer_sizes: tuple[int, ...], platform: str = "linux/amd64") -> Manifest:
    """An image manifest with one layer per size, and its config."""
    os_name, _, architecture = platform.partition("/")
    architecture, _, variant = architecture.partition("/")
    layers = tuple(Blob.layer(f"{seed}/{platform}/layer-{index}", size) for index, size in enumerate(layer_sizes))
    config_body = {
        "architecture": architecture,
        "os": os_name,
        **({"variant": variant} if variant else {}),
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        "config": {"Labels": {"seed": seed}},
    }
    config = Blob.config(json.dumps(config_body, sort_keys=True).encode())
    body = {
        "schemaVersion": 2,
        "mediaType": IMAGE_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    return Manifest(IMAGE_MANIFEST, json.dumps(body, indent=2).encode(), (config, *layers), platform=platform)


def index(seed: str, layer_sizes: tuple[int, ...], platforms: tuple[str, ...]) -> Manifest:
    """An image index with one image manifest per platform (`os/architecture[/variant]`)."""
    children = tuple(image(seed, layer_sizes, platform) for platform in platforms)
    entries = []
    for child in children:
        os_name, _, architecture = child.platform.partition("/")
        architecture, _, variant = architecture.partition("/")
        described = {"architecture": architecture, "os": os_name, **({"variant": variant} if variant else {})}
        entries.append(
            {"mediaType": child.media_type, "digest": child.digest, "size": len(child.body), "platform": described}
        )
    body = {"schemaVersion": 2, "mediaType": IMAGE_INDEX, "manifests": entries}
    return Manifest(IMAGE_INDEX, json.dumps(body, indent=2).encode(), children=children)
