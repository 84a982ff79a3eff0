"""The namespaces a provider stack lets its role manage (its caches and ConsumerRepositoryPrefixes): a resource of
another stack asking for one outside them is refused at once, with a Reason naming the parameter, before any call
to AWS; inside them it gets every setting; a Delete is never refused (it is the way out)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulation import iam, moto_ecr
from emulation.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint, make_event
from tests.handler.conftest import Invoke
from tests.unit.test_lifecycle_policy import policy

SETTINGS = "Custom::CachedRepositorySettings"
LIFECYCLE = "Custom::CacheLifecyclePolicy"
EXPIRY = "Custom::CacheImageExpiry"
REFUSED = "outside those this provider manages"
PARAMETER = "ConsumerRepositoryPrefixes"


def request(endpoint: ResponseEndpoint, resource_type: str, properties: dict[str, Any], **extra: Any) -> Any:
    return make_event(
        endpoint,
        extra.pop("request_type", "Create"),
        properties,
        resource_type=resource_type,
        logical_id="Team",
        **extra,
    )


def calls_to_aws() -> list[str]:
    """What the provider asked AWS (its role's evaluated calls), beyond Lambda writing its logs."""
    return [evaluation.call for evaluation in iam.evaluations() if not evaluation.call.startswith("Lambda")]


@pytest.fixture
def outsider(ecr: Any) -> str:
    """A repository of an application, in a namespace no cache and no consumer prefix names."""
    ecr.create_repository(repositoryName="payments/api")
    ecr.put_lifecycle_policy(repositoryName="payments/api", lifecyclePolicyText=json.dumps(policy(days=90)))
    return "payments/api"


@pytest.mark.parametrize(
    ("resource_type", "properties"),
    [
        (SETTINGS, {"RepositoryPrefix": "payments", "LifecyclePolicyText": json.dumps(policy())}),
        (LIFECYCLE, {"RepositoryPrefix": "payments/", "LifecyclePolicyText": json.dumps(policy())}),
        (EXPIRY, {"RepositoryPrefix": "payments", "ExpireAfterDaysWithoutPull": 30}),
        (
            SETTINGS,
            {
                "RepositoryPrefix": "ROOT",
                "ExistingRepositoryPrefixes": ["payments"],
                "LifecyclePolicyText": json.dumps(policy()),
            },
        ),
        (
            EXPIRY,
            {
                "RepositoryPrefix": "ROOT",
                "ExistingRepositoryPrefixes": ["quay", "payments"],
                "ExpireAfterDaysWithoutPull": 30,
            },
        ),
        (SETTINGS, {"RepositoryPrefix": "ROOT", "LifecyclePolicyText": json.dumps(policy())}),  # every later one
        (SETTINGS, {"RepositoryPrefix": "dockerhub", "LifecyclePolicyText": json.dumps(policy())}),  # not docker-hub
    ],
    ids=["settings", "lifecycle", "expiry", "root-backfill", "root-sweep", "root-template", "near-name"],
)
def test_a_namespace_outside_is_refused_before_any_call(
    invoke: Invoke,
    response_endpoint: ResponseEndpoint,
    ecr: Any,
    outsider: str,
    resource_type: str,
    properties: dict[str, Any],
) -> None:
    iam.clear()

    answer = invoke(request(response_endpoint, resource_type, properties))

    assert answer["Status"] == "FAILED"
    assert REFUSED in answer["Reason"]
    assert PARAMETER in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("failed-create:")
    assert calls_to_aws() == []  # refused before the ledger, ECR or the scheduler were asked anything
    assert json.loads(ecr.get_lifecycle_policy(repositoryName=outsider)["lifecyclePolicyText"]) == policy(days=90)
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []


def test_an_update_into_a_namespace_outside_is_refused(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, outsider: str
) -> None:
    inside = {"RepositoryPrefix": "team", "LifecyclePolicyText": json.dumps(policy())}
    created = invoke(request(response_endpoint, SETTINGS, inside))
    assert created["Status"] == "SUCCESS", created["Reason"]

    moved = invoke(
        request(
            response_endpoint,
            SETTINGS,
            inside | {"RepositoryPrefix": "payments"},
            request_type="Update",
            physical_id="team",
            old_properties=inside,
        )
    )

    assert moved["Status"] == "FAILED"
    assert PARAMETER in moved["Reason"]
    assert moved["PhysicalResourceId"] == "team"
    assert [
        template["prefix"] for template in ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    ] == ["team"]


def test_a_consumer_namespace_gets_every_setting(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any) -> None:
    """team-a is one of the test stack's ConsumerRepositoryPrefixes: a nested namespace under it is allowed."""
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="team-a/ghcr", upstreamRegistryUrl="public.ecr.aws")
    moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, "team-a/ghcr/org/app")
    properties = {
        "RepositoryPrefix": "team-a/ghcr",
        "LifecyclePolicyText": json.dumps(policy()),
        "RepositoryPolicyText": {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Team", "Effect": "Allow", "Principal": {"AWS": ACCOUNT_ID}, "Action": "ecr:BatchGetImage"}
            ],
        },
        "ImageTagMutability": "IMMUTABLE",
    }

    answer = invoke(request(response_endpoint, SETTINGS, properties))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "1"
    assert ecr.get_lifecycle_policy(repositoryName="team-a/ghcr/org/app")["lifecyclePolicyText"]
    assert ecr.get_repository_policy(repositoryName="team-a/ghcr/org/app")["policyText"]
    deleted = invoke(request(response_endpoint, SETTINGS, properties, request_type="Delete", physical_id="team-a/ghcr"))
    assert deleted["Status"] == "SUCCESS", deleted["Reason"]


def test_a_delete_is_never_refused(invoke: Invoke, response_endpoint: ResponseEndpoint, outsider: str) -> None:
    """The namespace may have been dropped from ConsumerRepositoryPrefixes since: the Delete still answers (its
    calls are the role's to allow), so that the stack is never stuck."""
    properties = {"RepositoryPrefix": "ghost", "LifecyclePolicyText": json.dumps(policy())}

    answer = invoke(request(response_endpoint, SETTINGS, properties, request_type="Delete", physical_id="ghost"))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
