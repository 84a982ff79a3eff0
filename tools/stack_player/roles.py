"""The IAM roles of the played stacks as they stand at each moment of a stack operation, so that emulation/iam
evaluates every call of the provider (and of the schedules invoking it) with the policies IAM would hold then.

The player tells this model about each native IAM resource when it plays it (created or updated in the update
phase, deleted in the cleanup phase), so an update that replaces or removes a policy takes the old one's rights away
exactly when CloudFormation would: not before the resources that depend on it are gone.

A role's policies: its own `Policies`, and every AWS::IAM::RolePolicy (RoleName), AWS::IAM::Policy and
AWS::IAM::ManagedPolicy (Roles) attached to it. Managed policies named in a role's ManagedPolicyArns that no played
stack defines (AWS managed policies) are not known here and grant nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from emulation import iam

ROLE = "AWS::IAM::Role"
POLICY_TYPES = ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
TYPES = (ROLE, *POLICY_TYPES)


@dataclass
class Roles:
    """Native IAM resources by physical id: (type, evaluated properties). JSON-friendly, for the state folder."""

    resources: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def apply(self, resource_type: str, physical_id: str, properties: dict[str, Any]) -> None:
        """A native IAM resource was created or updated (its properties as they are now)."""
        if resource_type in TYPES:
            self.resources[physical_id] = (resource_type, properties)

    def remove(self, resource_type: str, physical_id: str) -> None:
        """A native IAM resource was deleted."""
        if resource_type in TYPES:
            self.resources.pop(physical_id, None)

    def policies(self, role_name: str) -> list[dict[str, Any]]:
        """The identity-based policies the role has now."""
        documents: list[dict[str, Any]] = []
        for physical_id, (resource_type, properties) in self.resources.items():
            if resource_type == ROLE and physical_id == role_name:  # a role's physical id is its name
                documents += [dict(policy["PolicyDocument"]) for policy in properties.get("Policies", [])]
            elif (resource_type == "AWS::IAM::RolePolicy" and properties.get("RoleName") == role_name) or (
                resource_type in POLICY_TYPES and role_name in properties.get("Roles", [])
            ):
                documents.append(dict(properties["PolicyDocument"]))
        return documents

    def principal(self, role_arn: str, session: str) -> iam.Principal:
        """The role's temporary credentials' principal, with the policies the role has now."""
        role_name = role_arn.rsplit("/", 1)[-1]
        access_key = "ASIA" + hashlib.sha256(role_arn.encode()).hexdigest()[:16].upper()
        return iam.Principal(iam.role_session_arn(role_name, session), self.policies(role_name), access_key=access_key)

    def to_saved(self) -> dict[str, Any]:
        return {physical_id: [kind, properties] for physical_id, (kind, properties) in self.resources.items()}

    @classmethod
    def from_saved(cls, saved: dict[str, Any] | None) -> Roles:
        return cls(
            {physical_id: (str(kind), dict(properties)) for physical_id, (kind, properties) in (saved or {}).items()}
        )
