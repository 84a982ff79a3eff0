"""What a resource declared, in the form its ledger record keeps it (see ResourceRecords.keep_declared) and the
health check compares with what ECR holds: a pull-through cache rule's settings, a creation template's, registry
policy statements, scanning filters, an image expiry schedule, and the settings of a namespace's repositories."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

from ecr_cache_provider.aws.ecr import CreationTemplate, RuleSettings
from ecr_cache_provider.aws.scheduler import Schedule
from ecr_cache_provider.grammar.prefix import ROOT

RULE = "Rule"
TEMPLATE = "Template"
STATEMENTS = "RegistryPolicyStatements"  # {Sid: statement}
SCANNING = "ScanningFilters"  # {"frequency", "filters", "allow_enhanced"}
SCHEDULE = "Schedule"  # {"name", "expression", "target_arn", "payload", "description"}
REPOSITORIES = "Repositories"  # {"namespaces": [...], "settings": {key: value as the ledger records it}}
# Properties that are no part of the resource's state: where CloudFormation sends the request.
NOT_DECLARED = frozenset({"ServiceToken"})


def declared_properties(resource_type: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The resource's validated properties, as kept. None of the provider's types takes a secret value (a
    credential is named by its Secrets Manager ARN, CredentialArn), so nothing here is secret."""
    kept = {name: value for name, value in properties.items() if name not in NOT_DECLARED}
    return {"ResourceType": resource_type, "Properties": kept}


def rule_state(rule: RuleSettings) -> dict[str, Any]:
    """A rule's settings: those CreatePullThroughCacheRule takes (not how the resource treats them)."""
    return {RULE: {item.name: getattr(rule, item.name) for item in fields(RuleSettings)}}


def template_state(template: CreationTemplate) -> dict[str, Any]:
    """A template's settings. The description is left out: it names the request that wrote it, and a later
    request of the same resource writes its own."""
    settings = asdict(template)
    del settings["description"]
    return {TEMPLATE: settings}


def statements_state(statements: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {STATEMENTS: statements}


def scanning_state(frequency: str, filters: tuple[str, ...], allow_enhanced: bool) -> dict[str, Any]:
    return {SCANNING: {"frequency": frequency, "filters": list(filters), "allow_enhanced": allow_enhanced}}


def schedule_state(schedule: Schedule) -> dict[str, Any]:
    return {SCHEDULE: asdict(schedule)}


def repositories_state(namespaces: tuple[str, ...], values: dict[str, Any]) -> dict[str, Any]:
    """The settings every existing repository of `namespaces` should carry (keys and values as the ledger's
    repository records hold them); nothing when the resource brings no existing repository to them."""
    return {REPOSITORIES: {"namespaces": list(namespaces), "settings": values}} if namespaces and values else {}


def declared_schedule(declared: dict[str, Any]) -> Schedule | None:
    state = declared.get(SCHEDULE)
    return Schedule(**state) if isinstance(state, dict) else None


def declared_rule(declared: dict[str, Any]) -> RuleSettings | None:
    state = declared.get(RULE)
    return RuleSettings(**state) if isinstance(state, dict) else None


def declared_template(declared: dict[str, Any]) -> CreationTemplate | None:
    state = declared.get(TEMPLATE)
    if not isinstance(state, dict):
        return None
    return CreationTemplate(
        prefix=state["prefix"],
        lifecycle_policy=state["lifecycle_policy"],
        repository_policy=state["repository_policy"],
        resource_tags=tuple(tuple(tag) for tag in state["resource_tags"]),
        tag_mutability=(state["tag_mutability"][0], tuple(state["tag_mutability"][1])),
        encryption=tuple(tuple(pair) for pair in state["encryption"]),
        custom_role_arn=state["custom_role_arn"],
        applied_for=tuple(state["applied_for"]),
    )


RULE_SETTINGS = {
    "upstream_registry_url": "UpstreamRegistryUrl",
    "upstream_registry": "UpstreamRegistry",
    "credential_arn": "CredentialArn",
    "custom_role_arn": "CustomRoleArn",
    "upstream_repository_prefix": "UpstreamRepositoryPrefix",
}


def rule_drift(declared: RuleSettings, live: RuleSettings) -> list[str]:
    """The settings of a rule that differ from those declared, by property name. The upstream registry is compared
    only when both say it (ECR may leave it out of its description)."""
    drifted = []
    for field_name, property_name in RULE_SETTINGS.items():
        wanted, found = getattr(declared, field_name) or "", getattr(live, field_name) or ""
        if field_name == "upstream_registry" and not (wanted and found):
            continue
        if field_name == "upstream_repository_prefix":  # none is ROOT: the upstream's whole registry
            wanted, found = wanted or ROOT, found or ROOT
        if wanted != found:
            drifted.append(property_name)
    return drifted


def template_drift(declared: CreationTemplate, live: CreationTemplate) -> list[str]:
    """The settings of a creation template that differ from those declared (policies compared as JSON documents,
    tags as sets)."""
    drifted = []
    if _document(declared.lifecycle_policy) != _document(live.lifecycle_policy):
        drifted.append("LifecyclePolicy")
    if _document(declared.repository_policy) != _document(live.repository_policy):
        drifted.append("RepositoryPolicy")
    if sorted(declared.resource_tags) != sorted(live.resource_tags):
        drifted.append("ResourceTags")
    if declared.tag_mutability[0] != live.tag_mutability[0] or sorted(declared.tag_mutability[1]) != sorted(
        live.tag_mutability[1]
    ):
        drifted.append("ImageTagMutability")
    if (dict(declared.encryption) or {"encryptionType": "AES256"}) != (
        dict(live.encryption) or {"encryptionType": "AES256"}
    ):
        drifted.append("EncryptionConfiguration")
    if declared.custom_role_arn != live.custom_role_arn:
        drifted.append("CustomRoleArn")
    if sorted(declared.applied_for) != sorted(live.applied_for):
        drifted.append("AppliedFor")
    return drifted


def _document(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
