"""Custom::RegistryScanningFilters: repository filters in the registry's enhanced scanning, merged with others'.

ECR has one scanning configuration per registry (BASIC or ENHANCED, at most one rule per scan frequency), and
AWS::ECR::RegistryScanningConfiguration replaces it whole: another team's rules, or an Inspector administrator's,
are lost. This resource adds its filters to the rule of its ScanFrequency and keeps every other rule and filter;
Delete takes out only its own filters (and a rule left with none). The scan type stays ENHANCED after a Delete:
switching back would change scanning for everyone.

A registry on BASIC scanning is switched to ENHANCED only when the properties allow it, since that changes
scanning for the whole registry and starts Amazon Inspector billing; otherwise the request fails and says so. Each
filter is claimed in the ownership ledger (as <frequency>/<filter>) before it is written; a filter already in the
rule that is not this resource's fails the request. Changes are serialised across stacks by a lock in the ledger
and read back after writing (engine/registry_merge.py).

The physical id is registry-scanning/<stack name>/<logical id>. Its properties: SCHEMA, and docs/.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ecr_cache_provider.contract import RequestContext, Result
from ecr_cache_provider.engine.declared_state import scanning_state
from ecr_cache_provider.engine.registry_merge import delete_resource_parts, listed, put_resource_parts
from ecr_cache_provider.engine.registry_settings import RegistryScanning, scanning_key
from ecr_cache_provider.properties import parse_properties

RESOURCE_TYPE = "Custom::RegistryScanningFilters"
PHYSICAL_ID_PREFIX = "registry-scanning/"
# ScanningRepositoryFilter.filter in the botocore ECR model.
FILTER_PATTERN = r"^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["ScanFrequency", "Filters"],
    "properties": {
        "ScanFrequency": {"enum": ["SCAN_ON_PUSH", "CONTINUOUS_SCAN"]},
        "Filters": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": FILTER_PATTERN},
            "description": "wildcard repository filters: lowercase letters, digits, '.', '_', '-', '/' and '*'",
        },
        "AllowEnhancedScanning": {"type": "boolean", "default": False},
    },
}


@dataclass(frozen=True)
class ScanningFilters:
    frequency: str
    filters: tuple[str, ...]
    allow_enhanced: bool

    @property
    def keys(self) -> dict[str, Any]:
        return {scanning_key(self.frequency, name): name for name in self.filters}


def read_properties(raw: dict[str, Any]) -> ScanningFilters:
    values = parse_properties(raw, SCHEMA)
    return ScanningFilters(values["ScanFrequency"], tuple(values["Filters"]), values["AllowEnhancedScanning"])


def create(context: RequestContext) -> Result:
    return _put(context, read_properties(context.request.properties), previous=())


def update(context: RequestContext) -> Result:
    """Filters gone from the properties (or from a previous ScanFrequency) are taken out; the others put in."""
    wanted = read_properties(context.request.properties)
    return _put(context, wanted, previous=_keys(context.request.old_properties))


def delete(context: RequestContext) -> None:
    keys = _keys(context.request.properties)
    delete_resource_parts(context, RegistryScanning(allow_enhanced=False), keys, PHYSICAL_ID_PREFIX)


def _put(context: RequestContext, wanted: ScanningFilters, previous: tuple[str, ...]) -> Result:
    data = {"ScanFrequency": wanted.frequency, "ScanType": "ENHANCED"}
    setting = RegistryScanning(wanted.allow_enhanced)
    result = put_resource_parts(context, setting, wanted.keys, previous, id_prefix=PHYSICAL_ID_PREFIX, data=data)
    return replace(result, declared=scanning_state(wanted.frequency, wanted.filters, wanted.allow_enhanced))


def _keys(properties: dict[str, Any]) -> tuple[str, ...]:
    frequency = properties.get("ScanFrequency")
    if not isinstance(frequency, str):
        return ()
    return tuple(scanning_key(frequency, str(name)) for name in listed(properties.get("Filters")))
