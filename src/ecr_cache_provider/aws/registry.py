"""The registry's HTTP API (OCI distribution spec v2), as `docker pull` speaks it to ECR: Basic authentication with
the token of GetAuthorizationToken (`AWS:<password>`, base64) at the `proxyEndpoint` it names (ECR user guide,
registry_auth.html), manifests by tag or digest, and layers streamed and discarded.

urllib3 is the Lambda runtime's own (botocore depends on it), so this adds nothing to the package. A layer download
answers 307: to the upstream while ECR imports the image (containers-roadmap issue 2304), to S3 once it is cached;
the redirect is followed without the Authorization header (a pre-signed URL refuses a second credential). Each
layer is read in chunks, its sha256 checked against its digest, and nothing kept: memory stays flat whatever the
size. Neither URLs nor the token reach a log or an error message.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import urllib3

if TYPE_CHECKING:
    from ecr_cache_provider.deadline import Deadline

# What `docker pull` accepts: both image manifest kinds and both index kinds.
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
CHUNK_BYTES = 256 * 1024
REDIRECTS = 3
# Connection errors, throttling and server errors are retried, briefly; redirects are followed by hand.
RETRIES = urllib3.Retry(
    total=3, redirect=False, backoff_factor=0.2, status_forcelist=(429, 500, 502, 503, 504), raise_on_status=False
)
TIMEOUT = urllib3.Timeout(connect=5.0, read=30.0)


class RegistryError(Exception):
    """The registry answered an error (`status`, and the distribution API's error `code`), or none at all."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}" if message else f"{status} {code}")
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Fetched:
    media_type: str
    body: bytes
    digest: str

    def json(self) -> dict[str, Any]:
        document = json.loads(self.body)
        return document if isinstance(document, dict) else {}


class RegistryClient:
    """One registry endpoint, as one principal; safe to share between threads (urllib3's pool)."""

    def __init__(self, endpoint: str, token: str, deadline: Deadline, connections: int = 4) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.deadline = deadline
        self._authorization = f"Basic {token}"
        self._pool = urllib3.PoolManager(num_pools=4, maxsize=connections, retries=RETRIES, timeout=TIMEOUT)

    def manifest(self, repository: str, reference: str) -> Fetched:
        """The manifest by tag or digest; its digest is checked against the one asked for, or the one the registry
        reports (Docker-Content-Digest)."""
        response = self._get(f"/v2/{repository}/manifests/{reference}", {"Accept": ", ".join(MANIFEST_TYPES)})
        body = response.data
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = reference if reference.startswith("sha256:") else response.headers.get("Docker-Content-Digest")
        if expected and expected != digest:
            raise RegistryError(response.status, "DIGEST_INVALID", f"the manifest's content is not {expected}")
        return Fetched(response.headers.get("Content-Type", ""), body, digest)

    def download_layer(self, repository: str, digest: str) -> int:
        """Download a layer (or config) through the registry, following its redirect; the bytes read."""
        self.deadline.check("downloading a layer")
        response = self._request(self.endpoint + f"/v2/{repository}/blobs/{digest}", self._headers(), stream=True)
        for _ in range(REDIRECTS):
            if response.status not in (301, 302, 303, 307, 308):
                break
            location = response.headers.get("Location", "")
            response.drain_conn()  # a connection handed back with its answer unread breaks its next request
            response.release_conn()
            response = self._request(location, {}, stream=True)  # a pre-signed URL: no second credential
        if response.status != 200:
            raise _error(response)
        checksum = hashlib.sha256()
        size = 0
        try:
            for chunk in response.stream(CHUNK_BYTES):
                checksum.update(chunk)
                size += len(chunk)
        finally:
            response.release_conn()
        if "sha256:" + checksum.hexdigest() != digest:
            raise RegistryError(200, "DIGEST_INVALID", "the layer's content does not match its digest")
        return size

    def close(self) -> None:
        self._pool.clear()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": self._authorization, **(extra or {})}

    def _get(self, path: str, extra: dict[str, str]) -> urllib3.BaseHTTPResponse:
        self.deadline.check("calling the registry")
        response = self._request(self.endpoint + path, self._headers(extra), stream=False)
        if response.status != 200:
            raise _error(response)
        return response

    def _request(self, url: str, headers: dict[str, str], stream: bool) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.request(
                "GET", url, headers=headers, redirect=False, preload_content=not stream, decode_content=False
            )
        except urllib3.exceptions.HTTPError as error:
            raise RegistryError(0, type(error).__name__, "no answer from the registry") from None


def _error(response: urllib3.BaseHTTPResponse) -> RegistryError:
    """The distribution API's error body (`{"errors": [{"code", "message"}]}`), or the status alone."""
    try:
        first = json.loads(response.data or b"{}").get("errors", [{}])[0]
        code, message = str(first.get("code", "")), str(first.get("message", ""))
    except (ValueError, AttributeError, IndexError, TypeError):
        code, message = "", ""
    finally:
        response.release_conn()
    return RegistryError(response.status, code or "HTTP_ERROR", message[:300])
