"""Every bad lifecycle policy or property answers FAILED, names the rule and field, and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulation.cloudformation import ResponseEndpoint, make_event
from emulation.moto_ecr import faults
from tests.handler.conftest import Invoke
from tests.unit.test_lifecycle_policy import BAD_POLICIES, policy

BAD_PROPERTIES: dict[str, tuple[dict[str, Any], str]] = {
    "prefix missing": ({"LifecyclePolicyText": json.dumps(policy())}, "Missing required property: RepositoryPrefix"),
    "policy missing": ({"RepositoryPrefix": "quay"}, "Missing required property: LifecyclePolicyText"),
    "prefix uppercase": (
        {"RepositoryPrefix": "Quay", "LifecyclePolicyText": json.dumps(policy())},
        "Invalid RepositoryPrefix 'Quay'",
    ),
    "prefix too long": (
        {"RepositoryPrefix": "a" * 257, "LifecyclePolicyText": json.dumps(policy())},
        "must be shorter than or equal to 256 characters",
    ),
    "unknown property": (
        {"RepositoryPrefix": "quay", "LifecyclePolicyText": json.dumps(policy()), "Policy": "x"},
        "Unknown property Policy",
    ),
    "boolean not a boolean": (
        {"RepositoryPrefix": "quay", "LifecyclePolicyText": json.dumps(policy()), "OverwriteExistingPolicies": "yes"},
        "Invalid OverwriteExistingPolicies 'yes': must be boolean",
    ),
    "existing prefixes without ROOT": (
        {"RepositoryPrefix": "quay", "LifecyclePolicyText": json.dumps(policy()), "ExistingRepositoryPrefixes": ["a"]},
        "ExistingRepositoryPrefixes applies only with RepositoryPrefix ROOT",
    ),
    "existing prefixes while not applying to existing": (
        {
            "RepositoryPrefix": "ROOT",
            "LifecyclePolicyText": json.dumps(policy()),
            "ApplyToExistingRepositories": "false",
            "ExistingRepositoryPrefixes": ["quay"],
        },
        "ExistingRepositoryPrefixes names repositories to backfill, but ApplyToExistingRepositories is false",
    ),
    "existing prefix uppercase": (
        {"RepositoryPrefix": "ROOT", "LifecyclePolicyText": json.dumps(policy()), "ExistingRepositoryPrefixes": ["Q"]},
        "Invalid ExistingRepositoryPrefixes.0 'Q': does not match the allowed pattern",
    ),
    "existing prefix empty": (
        {
            "RepositoryPrefix": "ROOT",
            "LifecyclePolicyText": json.dumps(policy()),
            "ExistingRepositoryPrefixes": ["quay", ""],
        },
        "Invalid ExistingRepositoryPrefixes.1 ''",
    ),
    "existing prefixes not a list": (
        {"RepositoryPrefix": "ROOT", "LifecyclePolicyText": json.dumps(policy()), "ExistingRepositoryPrefixes": "q"},
        "Invalid ExistingRepositoryPrefixes 'q': must be array",
    ),
}


def assert_failed_and_unchanged(answer: dict[str, Any], reason: str, ecr: Any) -> None:
    assert answer["Status"] == "FAILED"
    assert reason in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("failed-create:")
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []
    assert faults.count("PutLifecyclePolicy") == faults.count("CreateRepositoryCreationTemplate") == 0


@pytest.mark.parametrize(("text", "reason"), list(BAD_POLICIES.values()), ids=list(BAD_POLICIES))
def test_bad_policy(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, text: str, reason: str) -> None:
    properties = {"RepositoryPrefix": "quay", "LifecyclePolicyText": text}

    answer = invoke(make_event(response_endpoint, "Create", properties, resource_type="Custom::CacheLifecyclePolicy"))

    assert_failed_and_unchanged(answer, reason, ecr)


@pytest.mark.parametrize(("properties", "reason"), list(BAD_PROPERTIES.values()), ids=list(BAD_PROPERTIES))
def test_bad_property(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any, properties: dict[str, Any], reason: str
) -> None:
    answer = invoke(make_event(response_endpoint, "Create", properties, resource_type="Custom::CacheLifecyclePolicy"))

    assert_failed_and_unchanged(answer, reason, ecr)
