"""A local ECR registry endpoint (`<account>.dkr.ecr.<region>.amazonaws.com`) with pull-through cache semantics,
over moto's ECR backend (the same repositories, images and rules the API sees, in-process or in moto's server):

- Basic authentication with a token of GetAuthorizationToken (tokens.py), which names this endpoint as its
  `proxyEndpoint`; without one, 401 with `WWW-Authenticate: Basic realm=...`. The registry's HTTP API is
  authorized as the token's principal (emulation/iam: ecr:BatchGetImage for a manifest,
  ecr:GetDownloadUrlForLayer for a layer, and for a pull that imports ecr:BatchImportUpstreamImage and, when the
  repository does not exist yet, ecr:CreateRepository: ECR user guide, pull-through-cache-iam.html).
- A manifest the repository holds is served (and its pull time recorded). A miss under a pull-through cache rule's
  prefix fetches the manifest from the rule's upstream (served locally: `serve_upstream`), with the rule's
  credentials when it has a secret; creates the repository with the matching repository creation template
  (moto_ecr.simulate_cached_pull) and imports the image in the background, answering the manifest at once.
- Until an import has finished, the image's layers are downloaded from the upstream: 307 to the upstream's
  storage (containers-roadmap issue 2304: nodes without internet fail a first pull); afterwards 307 to the layer
  bucket (ECR redirects layer downloads to S3), which refuses an Authorization header, as S3 does with a pre-signed
  URL. DescribeImages lists the image, and BatchCheckLayerAvailability each layer, once imported.
- A manifest asked for by digest alone is not fetched (containers-roadmap issue 2837: "an uncached image returns
  as missing"), unless an index the repository holds, or is importing, references it (a platform manifest).
- An upstream that refuses the login answers 403 DENIED ("The authentication to the upstream registry failed",
  ECR's words, as quoted in containers-roadmap issue 2354); an image missing upstream 404 MANIFEST_UNKNOWN.

`hold_imports()` keeps imports from finishing until `release_imports()`: a test of a warm-up that must wait.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from emulation.iam import Authorization, Denied, check, principal_for
from emulation.iam.authorizations import Account

from . import tokens
from .fixtures import Blob, Manifest
from .http import API_PATH, DIGEST, RegistryHandler, start
from .upstream import UpstreamRegistry

UPSTREAM_CHECK_INTERVAL = timedelta(hours=24)
AUTHENTICATION_FAILED = (
    "The authentication to the upstream registry failed. Verify that the credentials in the secret are valid."
)


@dataclass
class Import:
    """One manifest being imported into a repository: done once each of its blobs is copied."""

    repository: str
    manifest: Manifest
    tag: str
    done: threading.Event = field(default_factory=threading.Event)


class UpstreamLoginFailed(Exception):
    pass


class EcrRegistryEndpoint:
    def __init__(self, account_id: str, region: str, latency: float = 0.0) -> None:
        self.account_id = account_id
        self.region = region
        self.latency = latency
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.upstreams: dict[str, UpstreamRegistry] = {}
        self.imports: dict[tuple[str, str], Import] = {}
        self.bucket: dict[str, Blob] = {}  # the layers imported, by digest
        self._allowed = threading.Event()
        self._allowed.set()
        self._threads: list[threading.Thread] = []
        self.server, self.url = start(self)
        tokens.register_endpoint(account_id, region, self.url)

    def close(self) -> None:
        tokens.register_endpoint(self.account_id, self.region, None)
        self.release_imports()
        self.server.shutdown()
        self.server.server_close()

    def serve_upstream(self, upstream_registry_url: str, upstream: UpstreamRegistry) -> None:
        """Rules whose upstreamRegistryUrl is `upstream_registry_url` reach `upstream`."""
        self.upstreams[upstream_registry_url] = upstream

    def hold_imports(self) -> None:
        self._allowed.clear()

    def release_imports(self) -> None:
        self._allowed.set()

    def wait_for_imports(self, timeout: float = 30.0) -> None:
        for thread in list(self._threads):
            thread.join(timeout)

    # Serving

    def serve(self, request: RegistryHandler, method: str) -> None:
        path = urlsplit(request.path).path
        if path.startswith("/layer-bucket/"):
            self._bucket(request, path.removeprefix("/layer-bucket/"), method)
            return
        token = tokens.holder(request.headers.get("Authorization", ""))
        if token is None or (token.account, token.region) != (self.account_id, self.region):
            challenge = f'Basic realm="{self.url}/",service="ecr.amazonaws.com"'
            request.error(401, "DENIED", "Not Authorized", {"WWW-Authenticate": challenge})
            return
        if path in ("/v2/", "/v2"):
            request.answer(200, b"", {}, method)
            return
        match = API_PATH.match(path)
        if match is None:
            request.error(404, "NAME_INVALID", "invalid repository name")
            return
        name, kind, reference = match.group("name", "kind", "ref")
        try:
            if kind == "manifests":
                self._manifest(request, method, token.access_key, name, reference)
            else:
                self._layer(request, method, token.access_key, name, reference)
        except Denied as denied:
            request.error(403, "DENIED", str(denied))

    def _authorize(self, access_key: str, repository: str, *actions: str) -> None:
        principal = principal_for(access_key)
        if principal is None:
            return  # the test harness
        account = Account(self.account_id, self.region)
        arn = f"arn:aws:ecr:{self.region}:{self.account_id}:repository/{repository}"
        needed = []
        for action in actions:
            policy = account.repository_policy(repository) if action in ("ecr:BatchGetImage",
                     "ecr:GetDownloadUrlForLayer") else account.registry_policy()  # fmt: skip
            needed.append(Authorization(action, arn, resource_policy=policy))
        check(principal, "docker pull", needed, self.region)

    def _manifest(self, request: RegistryHandler, method: str, access_key: str, name: str, reference: str) -> None:
        cached = self._cached(name, reference)
        if cached is not None and not DIGEST.match(reference) and self._stale(cached):
            cached = None  # a tag whose upstream was last checked a day ago or more: checked again
        if cached is not None:
            self._authorize(access_key, name, "ecr:BatchGetImage")
            cached.ext_last_pulled_at = datetime.now(UTC)
            body = cached.image_manifest.encode()
            headers = {"Content-Type": cached.image_manifest_media_type, "Docker-Content-Digest": cached.image_digest}
            request.answer(200, body, headers, method)
            return
        with self.lock:
            importing = self._importing(name, reference)
        if importing is not None:
            self._authorize(access_key, name, "ecr:BatchGetImage")
            request.manifest(importing, method)
            return
        self._miss(request, method, access_key, name, reference)

    def _miss(self, request: RegistryHandler, method: str, access_key: str, name: str, reference: str) -> None:
        """A manifest the repository does not hold: fetched and imported under a cache rule's prefix."""
        repository = self._backend().repositories.get(name)
        rule = self._rule_for(name)
        if rule is None:
            if repository is None:
                request.error(404, "NAME_UNKNOWN", f"The repository with name '{name}' does not exist")
            else:
                request.error(404, "MANIFEST_UNKNOWN", f"Requested image not found: {reference}")
            return
        if DIGEST.match(reference) and not self._referenced(name, reference):
            # containers-roadmap issue 2837: a first pull by digest does not reach the upstream.
            request.error(404, "MANIFEST_UNKNOWN", f"Requested image not found: {reference}")
            return
        upstream = self.upstreams.get(rule.upstream_registry_url)
        if upstream is None:
            reason = f"The upstream registry {rule.upstream_registry_url} is not reachable"
            request.error(404, "MANIFEST_UNKNOWN", reason)
            return
        upstream_name = name[len(rule.ecr_repository_prefix) + 1 :] if rule.ecr_repository_prefix != "ROOT" else name
        if rule.upstream_repository_prefix:
            upstream_name = f"{rule.upstream_repository_prefix}/{upstream_name}"
        try:
            manifest = self._fetch(upstream, rule, upstream_name, reference)
        except UpstreamLoginFailed:
            request.error(403, "DENIED", AUTHENTICATION_FAILED)
            return
        if manifest is None:
            request.error(404, "MANIFEST_UNKNOWN", f"Requested image not found: {reference}")
            return
        needed = ("ecr:CreateRepository", "ecr:BatchImportUpstreamImage") if repository is None else ()
        self._authorize(access_key, name, *needed, "ecr:BatchImportUpstreamImage", "ecr:BatchGetImage")
        if repository is None:
            from emulation.moto_ecr import simulate_cached_pull

            simulate_cached_pull(self.account_id, self.region, name)
        self._start_import(Import(name, manifest, "" if DIGEST.match(reference) else reference), upstream)
        request.manifest(manifest, method)

    def _layer(self, request: RegistryHandler, method: str, access_key: str, name: str, digest: str) -> None:
        repository = self._backend().repositories.get(name)
        if repository is None:
            request.error(404, "NAME_UNKNOWN", f"The repository with name '{name}' does not exist")
            return
        self._authorize(access_key, name, "ecr:GetDownloadUrlForLayer")
        if digest in repository.layers and digest in self.bucket:
            request.redirect(f"{self.url}/layer-bucket/{digest}?X-Amz-Expires=600")
            return
        with self.lock:
            pending = [item for item in self.imports.values() if item.repository == name and not item.done.is_set()]
        for item in pending:
            if any(blob.digest == digest for blob in item.manifest.blobs):
                upstream = self._upstream_of(name)
                if upstream is not None:
                    request.redirect(upstream.storage_url(digest))  # containers-roadmap issue 2304
                    return
        request.error(404, "BLOB_UNKNOWN", f"Layer {digest} not found")

    def _bucket(self, request: RegistryHandler, digest: str, method: str) -> None:
        if request.headers.get("Authorization"):
            request.error(400, "InvalidArgument", "Only one auth mechanism allowed")
            return
        blob = self.bucket.get(digest)
        if blob is None:
            request.error(404, "NoSuchKey", "The specified key does not exist.")
            return
        request.blob(blob, method)

    # The cache

    def _backend(self) -> Any:
        from moto.ecr.models import ecr_backends

        return ecr_backends[self.account_id][self.region]

    def _cached(self, name: str, reference: str) -> Any:
        repository = self._backend().repositories.get(name)
        if repository is None:
            return None
        for image in list(repository.images):
            if getattr(image, "ext_status", "ACTIVE") != "ACTIVE":
                continue
            if image.image_digest == reference or reference in (image.image_tags or []):
                return image
        return None

    @staticmethod
    def _stale(image: Any) -> bool:
        """ECR checks the upstream for a new version of a cached tag up to once per 24 hours, timed from the last
        pull (ECR user guide, pull-through-cache.html)."""
        checked = getattr(image, "ext_upstream_checked_at", None)
        return checked is not None and datetime.now(UTC) - checked >= UPSTREAM_CHECK_INTERVAL

    def _importing(self, name: str, reference: str) -> Manifest | None:
        for item in self.imports.values():
            if item.repository == name and not item.done.is_set() and reference in (item.manifest.digest, item.tag):
                return item.manifest
        return None

    def _referenced(self, name: str, digest: str) -> bool:
        """Whether an index the repository holds, or is importing, names this platform manifest."""
        repository = self._backend().repositories.get(name)
        images = repository.images if repository is not None else []
        if any(digest in getattr(image, "ext_references", ()) for image in images):
            return True
        with self.lock:
            return any(
                item.repository == name and any(child.digest == digest for child in item.manifest.children)
                for item in self.imports.values()
            )

    def _rule_for(self, name: str) -> Any:
        from emulation.moto_ecr.models import _longest_match, state_of

        state = state_of(self._backend())
        with state.lock:
            prefix = _longest_match(list(state.rules), name)
            return state.rules.get(prefix) if prefix else None

    def _upstream_of(self, name: str) -> UpstreamRegistry | None:
        rule = self._rule_for(name)
        return self.upstreams.get(rule.upstream_registry_url) if rule else None

    def _fetch(self, upstream: UpstreamRegistry, rule: Any, name: str, reference: str) -> Manifest | None:
        """The manifest, from the upstream over HTTP, logged in as a client would (its bearer token)."""
        scope = f"repository:{name}:pull"
        login = urllib.request.Request(f"{upstream.url}/token?service=registry.local&scope={scope}")  # noqa: S310
        credentials = self._credentials(rule)
        if credentials:
            login.add_header("Authorization", "Basic " + base64.b64encode(":".join(credentials).encode()).decode())
        try:
            with urllib.request.urlopen(login, timeout=30) as answer:  # noqa: S310 (our own http:// upstream)
                bearer = json.loads(answer.read())["token"]
        except urllib.error.HTTPError as error:
            raise UpstreamLoginFailed(str(error.code)) from None
        asked = urllib.request.Request(f"{upstream.url}/v2/{name}/manifests/{reference}")  # noqa: S310
        asked.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(asked, timeout=30) as answer:  # noqa: S310
                digest = answer.headers["Docker-Content-Digest"]
                answer.read()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise UpstreamLoginFailed(str(error.code)) from None
        return upstream.resolve(name, digest)

    def _credentials(self, rule: Any) -> tuple[str, str] | None:
        if not rule.credential_arn:
            return None
        from moto.secretsmanager.models import secretsmanager_backends

        secrets: Any = secretsmanager_backends[self.account_id][self.region]
        value = secrets.get_secret_value(rule.credential_arn, None, None)
        data = json.loads(value.get("SecretString") or "{}")
        return str(data.get("username", "")), str(data.get("accessToken", ""))

    def _start_import(self, item: Import, upstream: UpstreamRegistry) -> None:
        with self.lock:
            key = (item.repository, item.manifest.digest)
            if key in self.imports and not self.imports[key].done.is_set():
                return
            self.imports[key] = item
        thread = threading.Thread(target=self._import, args=(item, upstream), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _import(self, item: Import, upstream: UpstreamRegistry) -> None:
        """Copy each blob from the upstream's storage, recording it as ECR's layer; then the image."""
        self._allowed.wait()
        repository = self._backend().repositories[item.repository]
        for blob in item.manifest.blobs:
            with urllib.request.urlopen(upstream.storage_url(blob.digest), timeout=60) as answer:  # noqa: S310
                while answer.read(1 << 16):
                    pass
            self.bucket[blob.digest] = blob
            repository.layers[blob.digest] = blob.size
        self._add_image(repository, item)
        item.done.set()

    def _add_image(self, repository: Any, item: Import) -> None:
        from moto.ecr.models import Image

        manifest = item.manifest
        for image in list(repository.images):
            if image.image_digest == manifest.digest:
                repository.images.remove(image)
                item_tags = set(image.image_tags or [])
                break
        else:
            item_tags = set()
        if item.tag:
            for image in repository.images:
                if item.tag in (image.image_tags or []):
                    image.image_tags.remove(item.tag)
            item_tags.add(item.tag)
        tags = sorted(item_tags)
        make_image: Any = Image
        image = make_image(self.account_id, tags[0] if tags else None, manifest.body.decode(), item.repository,
                           manifest.media_type, manifest.digest)  # fmt: skip
        now = datetime.now(UTC)
        image.image_tags = tags
        image.ext_pushed_at = now
        image.ext_last_pulled_at = now
        image.ext_upstream_checked_at = now
        image.ext_status = "ACTIVE"
        image.ext_references = tuple(child.digest for child in manifest.children)
        image.ext_size = sum(blob.size for blob in manifest.blobs) or 1
        repository.images.append(image)
