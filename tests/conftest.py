"""Shared fixtures: fake AWS credentials, moto with our ECR extension, and CloudFormation's response endpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint, start_response_endpoint

# Before anything creates a boto3 client: no real credentials, no real endpoints.
for name, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "MOTO_ACCOUNT_ID": ACCOUNT_ID,
    "POWERTOOLS_SERVICE_NAME": "ecr-pull-through-cache",
    "POWERTOOLS_METRICS_NAMESPACE": "EcrPullThroughCache",
}.items():
    os.environ[name] = value
for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR"):
    os.environ.pop(name, None)


@pytest.fixture(scope="session")
def response_endpoint() -> Iterator[ResponseEndpoint]:
    endpoint = start_response_endpoint()
    os.environ["SSL_CERT_FILE"] = endpoint.ca_file  # crhelper's HTTPS PUT trusts our local CA
    yield endpoint
    endpoint.close()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the provider's own backoff (not botocore's) so retry tests take milliseconds."""
    from ecr_cache_provider import ecr

    monkeypatch.setattr(ecr, "SECRET_RETRY_BASE_SECONDS", 0.01)
    monkeypatch.setattr(ecr, "SECRET_RETRY_MAX_SECONDS", 0.02)


def secret_value(username: str = "cache-user", token: str = "s3cr3t-t0ken-value") -> str:
    return '{"username": "%s", "accessToken": "%s"}' % (username, token)


def create_secret(name: str, value: str | None = None, region: str = REGION) -> str:
    import boto3

    client: Any = boto3.client("secretsmanager", region_name=region)
    return str(client.create_secret(Name=name, SecretString=value or secret_value())["ARN"])
