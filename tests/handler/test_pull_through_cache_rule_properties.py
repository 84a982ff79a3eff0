"""Every bad input to Custom::PullThroughCacheRule answers FAILED, names the property, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from emulation.cloudformation import ResponseEndpoint, make_event
from emulation.moto_ecr import faults
from tests.handler.conftest import Invoke

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
OTHER_REGION_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
ROLE = "arn:aws:iam::123456789012:role/ecr-pull-through-cache"
ECR_URL = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
QUAY = {"EcrRepositoryPrefix": "quay", "UpstreamRegistryUrl": "quay.io"}


def needs_credential(registry: str, url: str) -> tuple[dict[str, str], str]:
    return {"EcrRepositoryPrefix": "cache", "UpstreamRegistryUrl": url, "UpstreamRegistry": registry}, (
        f"CredentialArn is required for the {registry} upstream"
    )


BAD_INPUTS: dict[str, tuple[dict[str, Any], str]] = {
    "prefix missing": ({"UpstreamRegistryUrl": "quay.io"}, "Missing required property: EcrRepositoryPrefix"),
    "url missing": ({"EcrRepositoryPrefix": "quay"}, "Missing required property: UpstreamRegistryUrl"),
    "prefix too short": (
        {**QUAY, "EcrRepositoryPrefix": "q"},
        "EcrRepositoryPrefix 'q': must be longer than or equal to 2 characters",
    ),
    "prefix too long": ({**QUAY, "EcrRepositoryPrefix": "q" * 31}, "must be shorter than or equal to 30 characters"),
    "prefix uppercase": ({**QUAY, "EcrRepositoryPrefix": "Quay"}, "EcrRepositoryPrefix 'Quay': does not match"),
    "prefix leading dash": ({**QUAY, "EcrRepositoryPrefix": "-quay"}, "EcrRepositoryPrefix '-quay'"),
    "prefix double slash": ({**QUAY, "EcrRepositoryPrefix": "a//b"}, "EcrRepositoryPrefix 'a//b'"),
    "prefix with newline": ({**QUAY, "EcrRepositoryPrefix": "quay\n"}, "EcrRepositoryPrefix"),
    "unknown property": ({**QUAY, "Upstream": "quay"}, "Unknown property Upstream"),
    "registry not in enum": ({**QUAY, "UpstreamRegistry": "harbor"}, "UpstreamRegistry 'harbor': must be one of"),
    "url for another registry": (
        {**QUAY, "UpstreamRegistry": "docker-hub", "CredentialArn": SECRET},
        "not a registry URL for docker-hub",
    ),
    "unsupported url": ({**QUAY, "UpstreamRegistryUrl": "registry.example.com"}, "Unsupported UpstreamRegistryUrl"),
    "docker hub without credential": needs_credential("docker-hub", "registry-1.docker.io"),
    "github without credential": needs_credential("github-container-registry", "ghcr.io"),
    "gitlab without credential": needs_credential("gitlab-container-registry", "registry.gitlab.com"),
    "azure without credential": needs_credential("azure-container-registry", "myteam.azurecr.io"),
    "chainguard without credential": needs_credential("chainguard", "cgr.dev"),
    "docker hub with an empty credential": (
        {**needs_credential("docker-hub", "registry-1.docker.io")[0], "CredentialArn": ""},
        "CredentialArn is required for the docker-hub upstream",
    ),
    "credential not an ecr-pullthroughcache secret": (
        {**QUAY, "CredentialArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:quay-credentials-AbCdEf"},
        "CredentialArn",
    ),
    "credential too short": (
        {**QUAY, "CredentialArn": "arn:aws:secretsmanager"},
        "must be longer than or equal to 50 characters",
    ),
    "credential in another region": (
        {**QUAY, "CredentialArn": OTHER_REGION_SECRET},
        "CredentialArn must name a secret in us-east-1",
    ),
    "credential with the ecr upstream": (
        {"EcrRepositoryPrefix": "mine", "UpstreamRegistryUrl": ECR_URL, "CredentialArn": SECRET},
        "CredentialArn is not used with the ecr upstream",
    ),
    "role with a non-ecr upstream": ({**QUAY, "CustomRoleArn": ROLE}, "CustomRoleArn is only used with the ecr"),
    "role not a role arn": (
        {"EcrRepositoryPrefix": "mine", "UpstreamRegistryUrl": ECR_URL, "CustomRoleArn": "arn:aws:iam::1:user/x"},
        "CustomRoleArn",
    ),
    "upstream prefix with a non-ecr upstream": (
        {**QUAY, "UpstreamRepositoryPrefix": "library"},
        "UpstreamRepositoryPrefix is only used with the ecr upstream",
    ),
    "upstream prefix under ROOT": (
        {"EcrRepositoryPrefix": "ROOT", "UpstreamRegistryUrl": ECR_URL, "UpstreamRepositoryPrefix": "team"},
        "only when EcrRepositoryPrefix is not ROOT",
    ),
    "upstream prefix pattern": (
        {"EcrRepositoryPrefix": "mine", "UpstreamRegistryUrl": ECR_URL, "UpstreamRepositoryPrefix": "Team"},
        "UpstreamRepositoryPrefix 'Team'",
    ),
    "another account's ecr without a role": (
        {"EcrRepositoryPrefix": "mine", "UpstreamRegistryUrl": "210987654321.dkr.ecr.us-east-1.amazonaws.com"},
        "CustomRoleArn is required to cache from another account",
    ),
    "validate not a boolean": ({**QUAY, "Validate": "yes"}, "Validate 'yes': must be boolean"),
    "prefix given as a list": ({**QUAY, "EcrRepositoryPrefix": ["quay"]}, "EcrRepositoryPrefix"),
}


@pytest.mark.parametrize(("properties", "reason"), list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input_fails_naming_the_property_and_changes_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, properties: dict[str, Any], reason: str
) -> None:
    answer = invoke(make_event(response_endpoint, "Create", properties))

    assert answer["Status"] == "FAILED"
    assert reason in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("failed-create:")
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []
    assert faults.count("CreatePullThroughCacheRule") == 0


@pytest.mark.parametrize("validate", ["False", "false", " FALSE "])
def test_false_in_any_case_is_false(invoke: Invoke, response_endpoint: ResponseEndpoint, validate: str) -> None:
    answer = invoke(make_event(response_endpoint, "Create", {**QUAY, "Validate": validate}))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert faults.count("ValidatePullThroughCacheRule") == 0
