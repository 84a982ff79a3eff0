"""The resource types this provider serves, one module each: its properties (SCHEMA), then create, update and
delete, each handed a RequestContext (contract.py). A type module imports the engines, grammars and gateways it
needs, never another type. A new type is one module here and one line below."""

from __future__ import annotations

from ecr_cache_provider.contract import ResourceType
from ecr_cache_provider.types import (
    cache_image_expiry,
    cache_lifecycle_policy,
    cache_warm_up,
    cached_repository_settings,
    pull_through_cache_rule,
    registry_policy_statements,
    registry_scanning_filters,
)


def _by_name(*resource_types: ResourceType) -> dict[str, ResourceType]:
    """mypy checks each module against ResourceType here."""
    return {resource_type.RESOURCE_TYPE: resource_type for resource_type in resource_types}


# The resource types by their CloudFormation name: one line each.
RESOURCE_TYPES = _by_name(
    pull_through_cache_rule,
    cache_lifecycle_policy,
    cached_repository_settings,
    cache_image_expiry,
    registry_policy_statements,
    registry_scanning_filters,
    cache_warm_up,
)
