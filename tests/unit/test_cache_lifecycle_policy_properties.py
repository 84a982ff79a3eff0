"""Every bad lifecycle policy or property answers FAILED, names the rule and field, and changes nothing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from emulation.cloudformation import ResponseEndpoint, make_event
from emulation.moto_ecr import faults
from tests.unit.conftest import Invoke
from tests.unit.test_cache_lifecycle_policy import policy


def changed(change: Callable[[dict[str, Any]], Any]) -> str:
    """The test policy with one change made to it, as JSON text."""
    edited = copy.deepcopy(policy())
    change(edited)
    return json.dumps(edited)


def rule(index: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda document: document["rules"][index]


BAD_POLICIES: dict[str, tuple[str, str]] = {
    "not json": ("{rules: []", "LifecyclePolicyText is not valid JSON"),
    "not an object": ("[1, 2, 3]", 'must be an object with one key, "rules"'),
    "another top-level key": (changed(lambda p: p.update(version=1)), 'must be an object with one key, "rules"'),
    "no rules": ('{"rules": []}', "needs at least one rule"),
    "rule missing its action": (changed(lambda p: rule(0)(p).pop("action")), "rule 1: missing action"),
    "unknown rule field": (changed(lambda p: rule(0)(p).update(priority=3)), "rule 1: unknown field priority"),
    "priority zero": (
        changed(lambda p: rule(0)(p).update(rulePriority=0)),
        "rulePriority must be a whole number from 1",
    ),
    "priority as text": (
        changed(lambda p: rule(0)(p).update(rulePriority="1")),
        "rulePriority must be a whole number from 1",
    ),
    "duplicate priorities": (
        changed(lambda p: rule(1)(p).update(rulePriority=1)),
        "rulePriority 1 is used by more than one rule",
    ),
    "unknown tagStatus": (
        changed(lambda p: rule(0)(p)["selection"].update(tagStatus="some")),
        "rule 1: selection.tagStatus 'some' is not one of",
    ),
    "tagged without a tag list": (
        changed(lambda p: rule(0)(p)["selection"].update(tagStatus="tagged")),
        "rule 1: a tagged rule needs selection.tagPrefixList or selection.tagPatternList",
    ),
    "untagged with a tag list": (
        changed(lambda p: rule(0)(p)["selection"].update(tagPrefixList=["v"])),
        "rule 1: selection.tagPrefixList is only allowed with tagStatus 'tagged'",
    ),
    "empty tag list": (
        changed(lambda p: rule(0)(p)["selection"].update(tagStatus="tagged", tagPrefixList=[])),
        "rule 1: selection.tagPrefixList must be a non-empty list",
    ),
    "five wildcards in a pattern": (
        changed(lambda p: rule(0)(p)["selection"].update(tagStatus="tagged", tagPatternList=["*a*b*c*d*"])),
        "at most four '*'",
    ),
    "unknown countType": (
        changed(lambda p: rule(0)(p)["selection"].update(countType="sinceImageBuilt")),
        "rule 1: selection.countType 'sinceImageBuilt' is not one of",
    ),
    "sinceImagePushed without countUnit": (
        changed(lambda p: rule(0)(p)["selection"].pop("countUnit")),
        "rule 1: selection.countUnit must be 'days' with sinceImagePushed",
    ),
    "countUnit in hours": (
        changed(lambda p: rule(0)(p)["selection"].update(countUnit="hours")),
        "rule 1: selection.countUnit must be 'days'",
    ),
    "countUnit with imageCountMoreThan": (
        changed(lambda p: rule(1)(p)["selection"].update(countUnit="days")),
        "rule 2: selection.countUnit is not used with imageCountMoreThan",
    ),
    "countNumber zero": (
        changed(lambda p: rule(0)(p)["selection"].update(countNumber=0)),
        "rule 1: selection.countNumber must be a whole number from 1",
    ),
    "unknown selection field": (
        changed(lambda p: rule(0)(p)["selection"].update(olderThan=3)),
        "rule 1 selection: unknown field olderThan",
    ),
    "archive storage without sinceImageTransitioned": (
        changed(lambda p: rule(0)(p)["selection"].update(storageClass="archive")),
        "selection.storageClass must be 'archive' with sinceImageTransitioned",
    ),
    "unknown action": (
        changed(lambda p: rule(0)(p)["action"].update(type="delete")),
        "rule 1: action.type 'delete' is not one of expire, transition",
    ),
    "transition without a target": (
        changed(lambda p: rule(0)(p)["action"].update(type="transition")),
        "action.targetStorageClass 'archive' goes with, and only with, 'transition'",
    ),
    "an any rule that is not last": (
        changed(lambda p: (rule(0)(p).update(rulePriority=2), rule(1)(p).update(rulePriority=1))),
        "rule 1: a tagStatus 'any' rule must have the highest rulePriority",
    ),
    "longer than 30,720 characters": (
        changed(lambda p: rule(0)(p).update(description="x" * 31000)),
        "characters; ECR accepts at most 30720",
    ),
}

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
