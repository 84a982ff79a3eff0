"""Custom::CacheLifecyclePolicy: one lifecycle policy on every repository of a cache namespace, existing and future.

ECR creates a cached repository on its first pull, outside any stack; a repository creation template reaches only
repositories created after it. This resource does both: it owns a creation template for the prefix (future
repositories) and puts the policy on the repositories already there (existing ones).

The physical id is the prefix. Its properties: SCHEMA, and docs/.

ROOT covers every repository of the registry, and a repository ECR cached cannot be told from one an application
pushes to: a ROOT resource owns only the creation template unless ExistingRepositoryPrefixes names the prefixes
whose existing repositories get the policy too.

The same code as Custom::CachedRepositorySettings (engine/backfill.py), with only the lifecycle setting.
"""

from __future__ import annotations

from typing import Any

from ecr_cache_provider.contract import RequestContext, Result
from ecr_cache_provider.engine.backfill import put_in_place, remove
from ecr_cache_provider.engine.setting_kinds import Settings
from ecr_cache_provider.engine.settings_request import NAMESPACE_PROPERTIES, NamespaceSettings, readable, result
from ecr_cache_provider.grammar.lifecycle_policy import read_policy
from ecr_cache_provider.grammar.prefix import without_trailing_slash
from ecr_cache_provider.properties import parse_properties

RESOURCE_TYPE = "Custom::CacheLifecyclePolicy"
PURPOSE = "Lifecycle policy"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["RepositoryPrefix", "LifecyclePolicyText"],
    "properties": NAMESPACE_PROPERTIES
    | {
        "LifecyclePolicyText": {"type": ["string", "object"]},
        "OverwriteExistingPolicies": {"type": "boolean", "default": False},
    },
}


def read_properties(raw: dict[str, Any]) -> NamespaceSettings:
    values = parse_properties(raw, SCHEMA)
    return NamespaceSettings(
        prefix=without_trailing_slash(values["RepositoryPrefix"]),
        settings=Settings(lifecycle_policy=read_policy(values["LifecyclePolicyText"])),
        apply_to_existing=values["ApplyToExistingRepositories"],
        apply_to_new=values["ApplyToNewRepositories"],
        overwrite=values["OverwriteExistingPolicies"],
        existing_prefixes=tuple(without_trailing_slash(prefix) for prefix in values["ExistingRepositoryPrefixes"]),
    ).check("the policy")


def create(context: RequestContext) -> Result:
    """Claim the creation template first, so nothing cached meanwhile is missed, then the existing repositories."""
    wanted = read_properties(context.request.properties)
    return result(wanted, put_in_place(wanted, None, context, PURPOSE))


def update(context: RequestContext) -> Result:
    """A new policy reaches the template and every repository carrying the policy this resource set (or none), or
    every repository with OverwriteExistingPolicies. A new RepositoryPrefix is a replacement."""
    request = context.request
    wanted = read_properties(request.properties)
    if wanted.prefix != request.physical_id:
        return create(context)
    return result(wanted, put_in_place(wanted, readable(read_properties, request.old_properties), context, PURPOSE))


def delete(context: RequestContext) -> None:
    """Delete the template this resource made, then put back what each repository had before this resource set
    its policy, where the repository still carries it (the ledger records which). Repositories someone changed
    since, and those this resource never changed, are left alone."""
    remove(context.request.physical_id, readable(read_properties, context.request.properties), context)
