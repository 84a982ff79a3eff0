"""ECR's lifecycle policy grammar, called directly: what it accepts, what it converts, and the Reason for each
policy ECR would reject. tests/handler plays the same bad policies through the handler."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from ecr_cache_provider.failures import InvalidProperties
from ecr_cache_provider.grammar.lifecycle_policy import MAX_POLICY_LENGTH, read_policy
from ecr_cache_provider.properties import policy_text


def policy(days: int = 14, keep: int = 50) -> dict[str, Any]:
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Expire untagged images after {days} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": days,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep at most {keep} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
                "action": {"type": "expire"},
            },
        ]
    }


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


@pytest.mark.parametrize(("text", "reason"), list(BAD_POLICIES.values()), ids=list(BAD_POLICIES))
def test_bad_policy_is_rejected_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidProperties) as raised:
        read_policy(text)

    assert reason in str(raised.value)


def test_a_good_policy_reads_the_same_as_text_or_object() -> None:
    assert read_policy(json.dumps(policy())) == policy()
    assert read_policy(policy()) == policy()


def one_rule(selection: dict[str, Any], action: dict[str, Any], priority: Any = 1) -> dict[str, Any]:
    return {"rules": [{"rulePriority": priority, "selection": selection, "action": action}]}


def test_numbers_sent_as_strings_become_numbers_and_tags_stay_text() -> None:
    """CloudFormation sends the numbers of a YAML policy object as strings; a tag prefix "2024" is text."""
    selection = {"tagStatus": "tagged", "tagPrefixList": ["2024"], "countType": "imageCountMoreThan"}
    sent = one_rule({**selection, "countNumber": "5"}, {"type": "expire"}, priority="1")
    original = copy.deepcopy(sent)

    assert read_policy(sent) == one_rule({**selection, "countNumber": 5}, {"type": "expire"}, priority=1)
    assert sent == original  # the caller's value is not changed


def test_archive_transition_rules_are_accepted() -> None:
    selection = {"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90}
    archive = one_rule(selection, {"type": "transition", "targetStorageClass": "archive"})

    assert read_policy(archive) == archive


def test_policy_text_is_compact_json() -> None:
    text = policy_text(policy())

    assert '": ' not in text
    assert ', "' not in text
    assert json.loads(text) == policy()


def test_the_length_limit_is_counted_on_the_compact_text() -> None:
    """Whitespace in the property does not count: ECR receives the compact text."""
    padded = json.dumps(policy(), indent=MAX_POLICY_LENGTH // 20)

    assert len(padded) > MAX_POLICY_LENGTH
    assert read_policy(padded) == policy()
