"""Custom::RegistryPolicyStatements: statements of the registry policy, merged with everyone else's.

ECR has one registry policy per registry, and AWS::ECR::RegistryPolicy replaces it whole: replication permissions
or another stack's statements are lost. This resource puts exactly its own statements (each with a Sid) into the
registry policy and leaves every other statement as it was; Delete takes out only its own, and deletes the
registry policy only when nothing else is left in it.

Each statement's Sid is claimed in the ownership ledger before its statement is written; a Sid that is already in
the registry policy and is not this resource's fails the request. Changes are serialised across stacks by a lock
in the ledger and read back after writing (engine/registry_merge.py).

The physical id is registry-policy/<stack name>/<logical id>. Its properties: SCHEMA, and docs/.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ecr_cache_provider.contract import RequestContext, Result
from ecr_cache_provider.engine.declared_state import statements_state
from ecr_cache_provider.engine.registry_merge import delete_resource_parts, listed, put_resource_parts
from ecr_cache_provider.engine.registry_settings import RegistryPolicy
from ecr_cache_provider.failures import InvalidProperties
from ecr_cache_provider.properties import parse_properties

RESOURCE_TYPE = "Custom::RegistryPolicyStatements"
PHYSICAL_ID_PREFIX = "registry-policy/"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["Statements"],
    "properties": {
        "Statements": {
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "items": {
                "type": "object",
                "required": ["Sid", "Effect", "Principal", "Action"],
                "properties": {
                    "Sid": {"type": "string", "pattern": "^[A-Za-z0-9]{1,100}$"},
                    "Effect": {"enum": ["Allow", "Deny"]},
                    "Principal": {"type": ["string", "object"]},
                    "Action": {"type": ["string", "array"]},
                },
            },
            "description": "IAM statements, each with a Sid of letters and digits, Effect, Principal and Action",
        },
    },
}


def read_statements(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The statements by Sid, in their order."""
    statements = parse_properties(raw, SCHEMA)["Statements"]
    by_sid = {statement["Sid"]: statement for statement in statements}
    if len(by_sid) != len(statements):
        raise InvalidProperties("Invalid Statements: each statement needs its own Sid")
    return by_sid


def create(context: RequestContext) -> Result:
    wanted = read_statements(context.request.properties)
    result = put_resource_parts(context, RegistryPolicy(), wanted, (), id_prefix=PHYSICAL_ID_PREFIX, data=_data(wanted))
    return replace(result, declared=statements_state(wanted))


def update(context: RequestContext) -> Result:
    """Statements whose Sid is gone from the properties are taken out; the others are put in place."""
    wanted = read_statements(context.request.properties)
    previous = _sids(context.request.old_properties)
    result = put_resource_parts(
        context, RegistryPolicy(), wanted, previous, id_prefix=PHYSICAL_ID_PREFIX, data=_data(wanted)
    )
    return replace(result, declared=statements_state(wanted))


def delete(context: RequestContext) -> None:
    delete_resource_parts(context, RegistryPolicy(), _sids(context.request.properties), PHYSICAL_ID_PREFIX)


def _data(wanted: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {"StatementIds": ",".join(wanted)}


def _sids(properties: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(item["Sid"]) for item in listed(properties.get("Statements")) if isinstance(item, dict) and item.get("Sid")
    )
