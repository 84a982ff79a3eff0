"""ECR's lifecycle policy grammar, checked the way ECR checks it, with Reasons that name the rule and field at fault.

Used by Custom::CacheLifecyclePolicy for its LifecyclePolicyText property.
"""

from __future__ import annotations

from typing import Any

from ecr_cache_provider.failures import InvalidProperties
from ecr_cache_provider.properties import compact_json, json_document

# ECR accepts 100 to 30,720 characters; every policy with a valid rule is longer than 100.
MAX_POLICY_LENGTH = 30720
TAG_STATUSES = ("tagged", "untagged", "any")
COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")
STORAGE_CLASSES = ("standard", "archive")
ACTION_TYPES = ("expire", "transition")


def read_policy(value: str | dict[str, Any]) -> dict[str, Any]:
    """Check an ECR lifecycle policy the way ECR would, naming the rule and field at fault."""
    policy = json_document("LifecyclePolicyText", value)
    if not isinstance(value, str):
        policy = _integers_from_strings(policy)  # CloudFormation sent the numbers as strings
    if not isinstance(policy, dict) or set(policy) != {"rules"}:
        raise InvalidProperties('LifecyclePolicyText must be an object with one key, "rules"')
    rules = policy["rules"]
    if not isinstance(rules, list) or not rules:
        raise InvalidProperties("LifecyclePolicyText needs at least one rule in rules")
    priorities = [_check_rule(index, rule) for index, rule in enumerate(rules, start=1)]
    duplicates = sorted({priority for priority in priorities if priorities.count(priority) > 1})
    if duplicates:
        raise InvalidProperties(f"LifecyclePolicyText: rulePriority {duplicates[0]} is used by more than one rule")
    for rule in rules:
        if rule["selection"]["tagStatus"] == "any" and rule["rulePriority"] != max(priorities):
            raise InvalidProperties(
                f"LifecyclePolicyText rule {rule['rulePriority']}: a tagStatus 'any' rule must have the highest "
                "rulePriority"
            )
    compact_json("LifecyclePolicyText", policy, MAX_POLICY_LENGTH)
    return policy


def _check_rule(index: int, rule: Any) -> int:
    where = f"LifecyclePolicyText rule {index}"
    if not isinstance(rule, dict):
        raise InvalidProperties(f"{where} must be an object")
    _only(where, rule, required={"rulePriority", "selection", "action"}, optional={"description"})
    priority = rule["rulePriority"]
    where = f"LifecyclePolicyText rule {priority}"
    if not isinstance(priority, int) or isinstance(priority, bool) or priority < 1:
        raise InvalidProperties(f"LifecyclePolicyText rule {index}: rulePriority must be a whole number from 1")
    selection, action = rule["selection"], rule["action"]
    if not isinstance(selection, dict) or not isinstance(action, dict):
        raise InvalidProperties(f"{where}: selection and action must be objects")
    _check_selection(where, selection)
    _check_action(where, action)
    return priority


def _check_selection(where: str, selection: dict[str, Any]) -> None:
    _only(
        f"{where} selection",
        selection,
        required={"tagStatus", "countType", "countNumber"},
        optional={"tagPrefixList", "tagPatternList", "countUnit", "storageClass"},
    )
    status, count_type = selection["tagStatus"], selection["countType"]
    _one_of(where, "selection.tagStatus", status, TAG_STATUSES)
    _one_of(where, "selection.countType", count_type, COUNT_TYPES)
    tag_lists = [key for key in ("tagPrefixList", "tagPatternList") if key in selection]
    if status == "tagged" and not tag_lists:
        raise InvalidProperties(f"{where}: a tagged rule needs selection.tagPrefixList or selection.tagPatternList")
    if status != "tagged" and tag_lists:
        raise InvalidProperties(f"{where}: selection.{tag_lists[0]} is only allowed with tagStatus 'tagged'")
    for key in tag_lists:
        tags = selection[key]
        if not isinstance(tags, list) or not tags or not all(isinstance(tag, str) and tag for tag in tags):
            raise InvalidProperties(f"{where}: selection.{key} must be a non-empty list of tags")
        if key == "tagPatternList" and any(tag.count("*") > 4 for tag in tags):
            raise InvalidProperties(f"{where}: selection.tagPatternList allows at most four '*' in each pattern")
    if count_type == "imageCountMoreThan":
        if "countUnit" in selection:
            raise InvalidProperties(f"{where}: selection.countUnit is not used with imageCountMoreThan")
    elif selection.get("countUnit") != "days":
        raise InvalidProperties(f"{where}: selection.countUnit must be 'days' with {count_type}")
    number = selection["countNumber"]
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise InvalidProperties(f"{where}: selection.countNumber must be a whole number from 1")
    storage = selection.get("storageClass", "standard")
    _one_of(where, "selection.storageClass", storage, STORAGE_CLASSES)
    if (count_type == "sinceImageTransitioned") != (storage == "archive"):
        raise InvalidProperties(
            f"{where}: selection.storageClass must be 'archive' with sinceImageTransitioned and 'standard' otherwise"
        )


def _check_action(where: str, action: dict[str, Any]) -> None:
    _only(f"{where} action", action, required={"type"}, optional={"targetStorageClass"})
    _one_of(where, "action.type", action["type"], ACTION_TYPES)
    if (action["type"] == "transition") != (action.get("targetStorageClass") == "archive"):
        raise InvalidProperties(f"{where}: action.targetStorageClass 'archive' goes with, and only with, 'transition'")


def _only(where: str, value: dict[str, Any], required: set[str], optional: set[str]) -> None:
    missing = sorted(required - set(value))
    unknown = sorted(set(value) - required - optional)
    if missing:
        raise InvalidProperties(f"{where}: missing {', '.join(missing)}")
    if unknown:
        raise InvalidProperties(f"{where}: unknown field {', '.join(unknown)}")


def _one_of(where: str, field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidProperties(f"{where}: {field} {value!r} is not one of {', '.join(allowed)}")


def _integers_from_strings(policy: Any) -> Any:
    """rulePriority and countNumber back to numbers; nothing else (a tag prefix "2024" stays text)."""
    if not isinstance(policy, dict) or not isinstance(policy.get("rules"), list):
        return policy
    for rule in policy["rules"]:
        if not isinstance(rule, dict):
            continue
        if _digits(rule.get("rulePriority")):
            rule["rulePriority"] = int(rule["rulePriority"])
        selection = rule.get("selection")
        if isinstance(selection, dict) and _digits(selection.get("countNumber")):
            selection["countNumber"] = int(selection["countNumber"])
    return policy


def _digits(value: Any) -> bool:
    return isinstance(value, str) and value.isdigit()
