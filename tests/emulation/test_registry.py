"""The registry HTTP API emulation: the local upstream registry, and the local ECR endpoint's pull-through cache
semantics (a miss creates the repository from its creation template and imports; layers are redirected to the
upstream until the import finished; a pull by digest alone does not populate the cache)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from emulation.registry import EcrRegistryEndpoint, UpstreamRegistry
from emulation.registry.fixtures import IMAGE_INDEX, IMAGE_MANIFEST
from tests.conftest import create_secret, secret_value
from tests.emulation.test_moto_ecr import ACCOUNT, REGION, client, moto_mock

__all__ = ["moto_mock"]

TEMPLATE_LIFECYCLE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5},
                "action": {"type": "expire"},
            }
        ]
    }
)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def call(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One HTTP request, redirects not followed: the status, headers and body."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with OPENER.open(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def error_code(body: bytes) -> str:
    return str(json.loads(body)["errors"][0]["code"])


@pytest.fixture
def upstream() -> Iterator[UpstreamRegistry]:
    registry = UpstreamRegistry()
    yield registry
    registry.close()


@pytest.fixture
def endpoint(moto_mock: None, upstream: UpstreamRegistry) -> Iterator[EcrRegistryEndpoint]:
    registry = EcrRegistryEndpoint(ACCOUNT, REGION)
    registry.serve_upstream("public.ecr.aws", upstream)
    registry.serve_upstream("registry-1.docker.io", upstream)
    yield registry
    registry.close()


def login(ecr: Any) -> tuple[str, dict[str, str]]:
    data = ecr.get_authorization_token()["authorizationData"][0]
    return data["proxyEndpoint"], {"Authorization": f"Basic {data['authorizationToken']}"}


def cache_rule(prefix: str = "ecr-public", url: str = "public.ecr.aws", template: bool = True) -> Any:
    ecr = client("ecr")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl=url)
    if template:
        ecr.create_repository_creation_template(
            prefix=prefix, appliedFor=["PULL_THROUGH_CACHE"], lifecyclePolicy=TEMPLATE_LIFECYCLE
        )
    return ecr


# The upstream registry


def test_upstream_token_auth_manifests_blobs_and_errors(upstream: UpstreamRegistry) -> None:
    digest = upstream.add_image("library/nginx", "1.27", layer_sizes=(3000, 70000))
    status, headers, _ = call(f"{upstream.url}/v2/")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith(f'Bearer realm="{upstream.url}/token"')
    status, headers, body = call(f"{upstream.url}/v2/library/nginx/manifests/1.27")
    assert status == 401
    assert 'scope="repository:library/nginx:pull"' in headers["WWW-Authenticate"]
    assert error_code(body) == "UNAUTHORIZED"

    _, _, token = call(f"{upstream.url}/token?service=registry.local&scope=repository:library/nginx:pull")
    bearer = {"Authorization": "Bearer " + json.loads(token)["token"]}
    status, headers, body = call(f"{upstream.url}/v2/library/nginx/manifests/1.27", bearer, "HEAD")
    assert (status, headers["Docker-Content-Digest"], headers["Content-Type"], body) == (
        200,
        digest,
        IMAGE_MANIFEST,
        b"",
    )
    status, headers, body = call(f"{upstream.url}/v2/library/nginx/manifests/{digest}", bearer)
    assert status == 200
    assert "sha256:" + __import__("hashlib").sha256(body).hexdigest() == digest
    layer = json.loads(body)["layers"][1]
    assert layer["size"] == 70000
    status, headers, _ = call(f"{upstream.url}/v2/library/nginx/blobs/{layer['digest']}", bearer)
    assert status == 307
    status, _, content = call(headers["Location"])  # the storage needs no token
    assert status == 200
    assert len(content) == 70000
    assert "sha256:" + __import__("hashlib").sha256(content).hexdigest() == layer["digest"]

    assert error_code(call(f"{upstream.url}/v2/library/nginx/manifests/2.0", bearer)[2]) == "MANIFEST_UNKNOWN"
    assert error_code(call(f"{upstream.url}/v2/library/redis/manifests/1", bearer)[2]) == "NAME_UNKNOWN"
    assert error_code(call(f"{upstream.url}/v2/library/nginx/blobs/sha256:{'0' * 64}", bearer)[2]) == "BLOB_UNKNOWN"


def test_upstream_login_can_fail_and_checks_credentials(upstream: UpstreamRegistry) -> None:
    upstream.credentials = ("user", "pass")
    token_url = f"{upstream.url}/token?service=registry.local"
    assert call(token_url)[0] == 401
    good = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}
    assert call(token_url, good)[0] == 200
    upstream.fail_login = True
    status, _, body = call(token_url, good)
    assert status == 401
    assert error_code(body) == "UNAUTHORIZED"


def test_upstream_index_of_several_platforms(upstream: UpstreamRegistry) -> None:
    index = upstream.add_index("library/redis", "7", platforms=("linux/amd64", "linux/arm64", "linux/arm/v7"))
    body = json.loads(index.body)
    assert body["mediaType"] == IMAGE_INDEX
    assert [entry["platform"]["architecture"] for entry in body["manifests"]] == ["amd64", "arm64", "arm"]
    assert body["manifests"][2]["platform"]["variant"] == "v7"
    assert upstream.resolve("library/redis", body["manifests"][1]["digest"]) is not None


# The ECR endpoint


def test_authorization_token_names_the_local_endpoint_and_is_required(endpoint: EcrRegistryEndpoint) -> None:
    data = client("ecr").get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == endpoint.url
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert user == "AWS"
    assert len(password) > 20
    status, headers, _body = call(f"{endpoint.url}/v2/")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic realm=")
    bad = {"Authorization": "Basic " + base64.b64encode(b"AWS:forged").decode()}
    assert call(f"{endpoint.url}/v2/", bad)[0] == 401
    assert call(f"{endpoint.url}/v2/", {"Authorization": f"Basic {data['authorizationToken']}"})[0] == 200


def test_without_a_local_endpoint_the_token_names_ecr(moto_mock: None) -> None:
    data = client("ecr").get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


def test_a_miss_creates_the_repository_imports_and_redirects_layers_until_imported(
    endpoint: EcrRegistryEndpoint, upstream: UpstreamRegistry
) -> None:
    digest = upstream.add_image("library/nginx", "1.27", layer_sizes=(5000, 6000))
    ecr = cache_rule()
    url, auth = login(ecr)
    endpoint.hold_imports()
    status, headers, body = call(f"{url}/v2/ecr-public/library/nginx/manifests/1.27", auth)
    assert (status, headers["Docker-Content-Digest"]) == (200, digest)
    repository = "ecr-public/library/nginx"
    assert ecr.get_lifecycle_policy(repositoryName=repository)["lifecyclePolicyText"] == TEMPLATE_LIFECYCLE
    layers = [layer["digest"] for layer in json.loads(body)["layers"]]
    # While importing: not described, layers missing, downloads sent to the upstream.
    assert ecr.describe_images(repositoryName=repository)["imageDetails"] == []
    check = ecr.batch_check_layer_availability(repositoryName=repository, layerDigests=layers)
    assert [failure["failureCode"] for failure in check["failures"]] == ["MissingLayerDigest"] * 2
    status, headers, _ = call(f"{url}/v2/{repository}/blobs/{layers[0]}", auth)
    assert status == 307
    assert headers["Location"].startswith(upstream.url + "/storage/")

    endpoint.release_imports()
    endpoint.wait_for_imports()
    details = ecr.describe_images(repositoryName=repository)["imageDetails"]
    assert [(detail["imageDigest"], detail["imageTags"]) for detail in details] == [(digest, ["1.27"])]
    check = ecr.batch_check_layer_availability(repositoryName=repository, layerDigests=layers)
    assert [layer["layerAvailability"] for layer in check["layers"]] == ["AVAILABLE"] * 2
    status, headers, _ = call(f"{url}/v2/{repository}/blobs/{layers[1]}", auth)
    assert status == 307
    assert headers["Location"].startswith(endpoint.url + "/layer-bucket/")
    assert call(headers["Location"], auth)[0] == 400  # S3: one auth mechanism only
    status, _, content = call(headers["Location"])
    assert status == 200
    assert len(content) == 6000
    upstream.requests.clear()
    assert call(f"{url}/v2/{repository}/manifests/1.27", auth)[0] == 200
    assert upstream.requests == []  # served from the cache


def test_a_pull_by_digest_alone_does_not_populate_the_cache(
    endpoint: EcrRegistryEndpoint, upstream: UpstreamRegistry
) -> None:
    digest = upstream.add_image("library/nginx", "1.27")
    ecr = cache_rule()
    url, auth = login(ecr)
    status, _, body = call(f"{url}/v2/ecr-public/library/nginx/manifests/{digest}", auth)
    assert (status, error_code(body)) == (404, "MANIFEST_UNKNOWN")
    assert ecr.describe_repositories()["repositories"] == []
    # Through its tag, then by digest: cached.
    assert call(f"{url}/v2/ecr-public/library/nginx/manifests/1.27", auth)[0] == 200
    endpoint.wait_for_imports()
    assert call(f"{url}/v2/ecr-public/library/nginx/manifests/{digest}", auth)[0] == 200


def test_an_index_then_its_platform_manifests_by_digest(
    endpoint: EcrRegistryEndpoint, upstream: UpstreamRegistry
) -> None:
    index = upstream.add_index("library/redis", "7")
    ecr = cache_rule()
    url, auth = login(ecr)
    status, headers, _ = call(f"{url}/v2/ecr-public/library/redis/manifests/7", auth)
    assert (status, headers["Content-Type"]) == (200, IMAGE_INDEX)
    arm = index.children[1]
    assert call(f"{url}/v2/ecr-public/library/redis/manifests/{arm.digest}", auth)[0] == 200
    endpoint.wait_for_imports()
    details = ecr.describe_images(repositoryName="ecr-public/library/redis")["imageDetails"]
    assert sorted(detail["imageDigest"] for detail in details) == sorted([index.digest, arm.digest])


def test_upstream_login_failure_and_missing_images(endpoint: EcrRegistryEndpoint, upstream: UpstreamRegistry) -> None:
    upstream.add_image("library/nginx", "1.27")
    upstream.credentials = ("cache-user", "s3cr3t-t0ken-value")
    ecr = client("ecr")
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub",
        upstreamRegistryUrl="registry-1.docker.io",
        credentialArn=create_secret("ecr-pullthroughcache/hub", secret_value()),
    )
    url, auth = login(ecr)
    status, _, body = call(f"{url}/v2/docker-hub/library/nginx/manifests/9.9", auth)
    assert (status, error_code(body)) == (404, "MANIFEST_UNKNOWN")
    upstream.fail_login = True
    status, _, body = call(f"{url}/v2/docker-hub/library/nginx/manifests/1.27", auth)
    assert (status, error_code(body)) == (403, "DENIED")
    assert "authentication to the upstream registry failed" in json.loads(body)["errors"][0]["message"]
    assert ecr.describe_repositories()["repositories"] == []
    upstream.fail_login = False
    assert call(f"{url}/v2/docker-hub/library/nginx/manifests/1.27", auth)[0] == 200
    status, _, body = call(f"{url}/v2/team/app/manifests/1", auth)  # no rule covers it
    assert (status, error_code(body)) == (404, "NAME_UNKNOWN")


def test_served_beside_moto_server(moto_endpoint: str, upstream: UpstreamRegistry) -> None:
    endpoint = EcrRegistryEndpoint(ACCOUNT, REGION)
    endpoint.serve_upstream("public.ecr.aws", upstream)
    try:
        digest = upstream.add_image("library/busybox", "1")
        ecr = client("ecr", endpoint_url=moto_endpoint)
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="mirror-x", upstreamRegistryUrl="public.ecr.aws")
        url, auth = login(ecr)
        assert url == endpoint.url
        assert call(f"{url}/v2/mirror-x/library/busybox/manifests/1", auth)[1]["Docker-Content-Digest"] == digest
        endpoint.wait_for_imports()
        details = ecr.describe_images(repositoryName="mirror-x/library/busybox")["imageDetails"]
        assert [detail["imageDigest"] for detail in details] == [digest]
    finally:
        endpoint.close()
        ecr = client("ecr", endpoint_url=moto_endpoint)
        ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="mirror-x")
        ecr.delete_repository(repositoryName="mirror-x/library/busybox", force=True)


def test_a_cached_tag_is_checked_upstream_again_after_24_hours(
    endpoint: EcrRegistryEndpoint, upstream: UpstreamRegistry
) -> None:
    from datetime import UTC, datetime, timedelta

    from moto.ecr.models import ecr_backends

    first = upstream.add_image("library/nginx", "1.27")
    ecr = cache_rule()
    url, auth = login(ecr)
    assert call(f"{url}/v2/ecr-public/library/nginx/manifests/1.27", auth)[1]["Docker-Content-Digest"] == first
    endpoint.wait_for_imports()
    moved = upstream.add_image("library/nginx", "1.27", seed="moved")
    assert call(f"{url}/v2/ecr-public/library/nginx/manifests/1.27", auth)[1]["Docker-Content-Digest"] == first

    for image in ecr_backends[ACCOUNT][REGION].repositories["ecr-public/library/nginx"].images:
        image.ext_upstream_checked_at = datetime.now(UTC) - timedelta(hours=24)  # type: ignore[attr-defined]
    assert call(f"{url}/v2/ecr-public/library/nginx/manifests/1.27", auth)[1]["Docker-Content-Digest"] == moved
    endpoint.wait_for_imports()
    tags = {
        d["imageDigest"]: d.get("imageTags", [])
        for d in ecr.describe_images(repositoryName="ecr-public/library/nginx")["imageDetails"]
    }
    assert tags == {first: [], moved: ["1.27"]}
