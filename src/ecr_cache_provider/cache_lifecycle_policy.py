"""Custom::CacheLifecyclePolicy: one lifecycle policy on every repository of a cache namespace, existing and future.

ECR creates a cached repository on its first pull, outside any stack; a repository creation template reaches only
repositories created after it. This resource does both: it owns a creation template for the prefix (future
repositories) and puts the policy on the repositories already there (existing ones).

Properties: RepositoryPrefix (required), LifecyclePolicyText (required; JSON text or an object),
ApplyToExistingRepositories (default true), ApplyToNewRepositories (default true), OverwriteExistingPolicies
(default false). The physical id is the prefix. Attributes: RepositoryPrefix, RepositoriesUpdated,
RepositoriesSkipped (as of the last Create or Update).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.ecr import EcrGateway
from ecr_cache_provider.namespace import Outcome, work_through
from ecr_cache_provider.resource import (
    PREFIX_PATTERN,
    InvalidProperties,
    Request,
    ResourceFailure,
    Result,
    parse_properties,
    without_trailing_slash,
)

logger = logging.getLogger(__name__)

RESOURCE_TYPE = "Custom::CacheLifecyclePolicy"


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["RepositoryPrefix", "LifecyclePolicyText"],
    "properties": {
        "RepositoryPrefix": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "pattern": PREFIX_PATTERN,
            "description": "a repository namespace such as docker-hub or team/cache, or ROOT",
        },
        "LifecyclePolicyText": {"type": ["string", "object"]},
        "ApplyToExistingRepositories": {"type": "boolean", "default": True},
        "ApplyToNewRepositories": {"type": "boolean", "default": True},
        "OverwriteExistingPolicies": {"type": "boolean", "default": False},
    },
}

# ECR accepts 100 to 30,720 characters; every policy with a valid rule is longer than 100.
MAX_POLICY_LENGTH = 30720
TAG_STATUSES = ("tagged", "untagged", "any")
COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")
STORAGE_CLASSES = ("standard", "archive")
ACTION_TYPES = ("expire", "transition")


@dataclass(frozen=True)
class LifecycleProperties:
    prefix: str
    policy: dict[str, Any]
    apply_to_existing: bool
    apply_to_new: bool
    overwrite: bool

    @property
    def policy_text(self) -> str:
        return policy_text(self.policy)


def read_properties(raw: dict[str, Any]) -> LifecycleProperties:
    values = parse_properties(raw, SCHEMA)
    return LifecycleProperties(
        prefix=without_trailing_slash(values["RepositoryPrefix"]),
        policy=read_policy(values["LifecyclePolicyText"]),
        apply_to_existing=values["ApplyToExistingRepositories"],
        apply_to_new=values["ApplyToNewRepositories"],
        overwrite=values["OverwriteExistingPolicies"],
    )


def read_policy(value: str | dict[str, Any]) -> dict[str, Any]:
    """Check an ECR lifecycle policy the way ECR would, naming the rule and field at fault."""
    if isinstance(value, str):
        try:
            policy = json.loads(value)
        except ValueError as error:
            raise InvalidProperties(f"LifecyclePolicyText is not valid JSON: {error}") from None
    else:
        policy = _integers_from_strings(copy.deepcopy(value))  # CloudFormation sent the numbers as strings
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
    length = len(policy_text(policy))
    if length > MAX_POLICY_LENGTH:
        raise InvalidProperties(f"LifecyclePolicyText is {length} characters; ECR accepts at most {MAX_POLICY_LENGTH}")
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


def policy_text(policy: dict[str, Any]) -> str:
    """The text sent to ECR: compact JSON, so that length checks and comparisons are stable."""
    return json.dumps(policy, separators=(",", ":"))


def create(request: Request, ecr: EcrGateway) -> Result:
    """Claim the creation template first, so nothing cached meanwhile is missed, then the existing repositories."""
    wanted = read_properties(request.properties)
    progress = request.progress
    if progress is None:
        _claim_template(wanted, request, ecr)
        progress = Progress(phase="apply")
    if wanted.apply_to_existing:
        progress = _apply_to_existing(wanted, None, progress, ecr)
    return _result(wanted, progress)


def update(request: Request, ecr: EcrGateway) -> Result:
    """A new policy reaches the template and every repository carrying the old policy (or none), or every
    repository with OverwriteExistingPolicies. A new RepositoryPrefix is a replacement."""
    wanted = read_properties(request.properties)
    if wanted.prefix != request.physical_id:
        return create(request, ecr)
    progress = request.progress
    if progress is None:
        _claim_template(wanted, request, ecr)
        progress = Progress(phase="apply")
    if wanted.apply_to_existing:
        old_policy = _policy_or_none(request.old_properties.get("LifecyclePolicyText"))
        progress = _apply_to_existing(wanted, old_policy, progress, ecr)
    return _result(wanted, progress)


def delete(request: Request, ecr: EcrGateway) -> None:
    """Delete the template this resource made, then remove the policy from every repository of the namespace
    that still carries it. Repositories someone changed since are left alone."""
    prefix = request.physical_id
    if not re.match(PREFIX_PATTERN, prefix):
        logger.info("Nothing to delete: the physical id names no namespace this resource managed")
        return
    progress = request.progress
    if progress is None:
        template = ecr.find_template(prefix)
        if template and _owned(template, request):
            ecr.delete_template(prefix)
        progress = Progress(phase="remove")
    policy = _policy_or_none(request.properties.get("LifecyclePolicyText"))
    if policy is None:
        logger.warning("The policy this resource applied cannot be read; repositories are left as they are")
        return

    def remove_if_ours(repository: str) -> Outcome:
        if _parsed(ecr.lifecycle_policy(repository)) != policy:
            return "skipped"
        ecr.delete_lifecycle_policy(repository)
        return "updated"

    work_through(ecr, prefix, remove_if_ours, progress, physical_id=prefix)


# How each part is done


def _claim_template(wanted: LifecycleProperties, request: Request, ecr: EcrGateway) -> None:
    """Own the repository creation template for the prefix, carrying the policy; none when not wanted."""
    template = ecr.find_template(wanted.prefix)
    if template and not _owned(template, request):
        if not wanted.apply_to_new:
            return
        raise ResourceFailure(
            f"A repository creation template for prefix {wanted.prefix!r} already exists and was not made by this "
            "resource; delete it, or set ApplyToNewRepositories to false"
        )
    if not wanted.apply_to_new:
        if template:
            ecr.delete_template(wanted.prefix)
        return
    settings = {"description": _owner_description(request), "lifecyclePolicy": wanted.policy_text}
    if template:
        ecr.update_template(wanted.prefix, **settings)
    else:
        ecr.create_template(wanted.prefix, appliedFor=["PULL_THROUGH_CACHE"], **settings)


def _apply_to_existing(
    wanted: LifecycleProperties,
    old_policy: dict[str, Any] | None,
    progress: Progress,
    ecr: EcrGateway,
) -> Progress:
    def apply(repository: str) -> Outcome:
        current = _parsed(ecr.lifecycle_policy(repository))
        if current == wanted.policy:
            return "unchanged"
        if current is not None and current != old_policy and not wanted.overwrite:
            return "skipped"
        ecr.put_lifecycle_policy(repository, wanted.policy_text)
        return "updated"

    try:
        return work_through(ecr, wanted.prefix, apply, progress, physical_id=wanted.prefix)
    except ContinueLater:
        raise
    except Exception as error:
        # The template and some repositories may already carry the policy: the rollback's Delete must find them.
        if not isinstance(error, ResourceFailure):
            raise ResourceFailure(f"Unexpected {type(error).__name__}: {error}", wanted.prefix) from error
        error.physical_id = wanted.prefix
        raise


def _result(wanted: LifecycleProperties, progress: Progress) -> Result:
    data = {
        "RepositoryPrefix": wanted.prefix,
        "RepositoriesUpdated": str(progress.updated),
        "RepositoriesSkipped": str(progress.skipped),
    }
    return Result(physical_id=wanted.prefix, data=data)


def _owner_description(request: Request) -> str:
    """The template's description says which resource owns it; the token at its end is what is checked."""
    stack_name = request.stack_id.split("/")[1] if "/" in request.stack_id else request.stack_id
    text = f"Lifecycle policy for cached repositories, managed by {request.logical_id} in stack {stack_name}"
    token = _owner_token(request)
    return f"{text[: 256 - len(token) - 1]} {token}"


def _owner_token(request: Request) -> str:
    digest = hashlib.sha256(f"{request.stack_id}/{request.logical_id}".encode()).hexdigest()[:16]
    return f"[owner:{digest}]"


def _owned(template: dict[str, Any], request: Request) -> bool:
    return str(template.get("description", "")).endswith(_owner_token(request))


def _parsed(text: str | None) -> Any:
    """A repository's current policy as a comparable value: None when it has none. Never validated: a policy
    this provider would reject is still someone's policy, and differs from ours."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _policy_or_none(text: Any) -> dict[str, Any] | None:
    """The policy a resource's properties named, as a comparable value; None when there is none or it is invalid."""
    if text is None:
        return None
    try:
        return read_policy(text)
    except InvalidProperties:
        return None
