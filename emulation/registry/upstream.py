"""A local upstream registry (the role Docker Hub, Quay or GHCR play for a cache), speaking the distribution HTTP
API v2 (OCI distribution spec) with token authentication as Docker Hub does it (distribution's token auth spec):

- `GET /v2/` and every API call without a valid bearer token answer 401 with
  `WWW-Authenticate: Bearer realm="<url>/token",service="registry.local"[,scope=...]`.
- `GET /token?service=...&scope=repository:<name>:pull` gives a token, anonymously or, when the registry has
  credentials, only with Basic authentication matching them; `fail_login` makes every login fail (401).
- Manifests by tag or digest, GET and HEAD, with `Content-Type` and `Docker-Content-Digest`; an unknown name
  answers 404 NAME_UNKNOWN, an unknown reference 404 MANIFEST_UNKNOWN.
- Blobs answer 307 to the registry's storage (`/storage/<digest>?expires=...`, as Docker Hub redirects to its CDN),
  which needs no token; an unknown blob answers 404 BLOB_UNKNOWN.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import fixtures
from .fixtures import Blob, Manifest
from .http import API_PATH, DIGEST, RegistryHandler, start


class UpstreamRegistry:
    def __init__(self, latency: float = 0.0, credentials: tuple[str, str] | None = None) -> None:
        self.latency = latency
        self.credentials = credentials
        self.fail_login = False
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.tags: dict[str, dict[str, str]] = {}  # repository -> tag -> digest
        self.manifests: dict[str, dict[str, Manifest]] = {}  # repository -> digest -> manifest
        self.blobs: dict[str, Blob] = {}
        self._tokens: set[str] = set()
        self.server, self.url = start(self)

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # Fixtures

    def add(self, repository: str, tag: str, manifest: Manifest) -> str:
        """Publish `manifest` (and an index's platform manifests) under `repository:tag`; its digest."""
        with self.lock:
            stored = self.manifests.setdefault(repository, {})
            for item in (manifest, *manifest.children):
                stored[item.digest] = item
                for blob in item.blobs:
                    self.blobs[blob.digest] = blob
            if tag:
                self.tags.setdefault(repository, {})[tag] = manifest.digest
        return manifest.digest

    def add_image(self, repository: str, tag: str, layer_sizes: tuple[int, ...] = (1024,), seed: str = "") -> str:
        return self.add(repository, tag, fixtures.image(seed or f"{repository}:{tag}", layer_sizes))

    def add_index(
        self,
        repository: str,
        tag: str,
        platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
        layer_sizes: tuple[int, ...] = (1024,),
        seed: str = "",
    ) -> Manifest:
        manifest = fixtures.index(seed or f"{repository}:{tag}", layer_sizes, platforms)
        self.add(repository, tag, manifest)
        return manifest

    def resolve(self, repository: str, reference: str) -> Manifest | None:
        with self.lock:
            digest = reference if DIGEST.match(reference) else self.tags.get(repository, {}).get(reference, "")
            return self.manifests.get(repository, {}).get(digest)

    def storage_url(self, digest: str) -> str:
        """Where a blob's download is redirected: no token needed (a CDN's signed URL)."""
        return f"{self.url}/storage/{digest}?expires={int(time.time()) + 600}"

    # Serving

    def serve(self, request: RegistryHandler, method: str) -> None:
        parts = urlsplit(request.path)
        if parts.path == "/token":
            self._token(request, parse_qs(parts.query))
            return
        if parts.path.startswith("/storage/"):
            self._storage(request, parts.path.removeprefix("/storage/"), method)
            return
        match = API_PATH.match(parts.path)
        scope = f',scope="repository:{match.group("name")}:pull"' if match else ""
        if not self._authorized(request.headers.get("Authorization", "")):
            challenge = f'Bearer realm="{self.url}/token",service="registry.local"{scope}'
            request.error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})
            return
        if parts.path in ("/v2/", "/v2"):
            request.answer(200, b"{}", {"Content-Type": "application/json"}, method)
            return
        if match is None:
            request.error(404, "NAME_INVALID", "invalid repository name or path")
            return
        name, kind, reference = match.group("name", "kind", "ref")
        if name not in self.manifests:
            request.error(404, "NAME_UNKNOWN", "repository name not known to registry")
        elif kind == "manifests":
            manifest = self.resolve(name, reference)
            if manifest is None:
                request.error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            else:
                request.manifest(manifest, method)
        elif reference not in self.blobs:
            request.error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        else:
            request.redirect(self.storage_url(reference))

    def _storage(self, request: RegistryHandler, digest: str, method: str) -> None:
        blob = self.blobs.get(digest)
        if blob is None:
            request.error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        else:
            request.blob(blob, method)

    def _token(self, request: RegistryHandler, query: dict[str, list[str]]) -> None:
        if self.fail_login or not self._login_accepted(request.headers.get("Authorization", "")):
            request.error(401, "UNAUTHORIZED", "incorrect username or password")
            return
        token = secrets.token_urlsafe(24)
        with self.lock:
            self._tokens.add(token)
        body: dict[str, Any] = {"token": token, "access_token": token, "expires_in": 300}
        request.answer(200, _json(body), {"Content-Type": "application/json"})

    def _login_accepted(self, header: str) -> bool:
        if self.credentials is None:
            return True
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == self.credentials

    def _authorized(self, header: str) -> bool:
        with self.lock:
            return header.startswith("Bearer ") and header[7:] in self._tokens


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()
