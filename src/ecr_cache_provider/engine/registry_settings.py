"""The two registry-wide settings several resources share, as MergedSettings (registry_merge.py): the registry
policy, whose parts are statements by Sid (Custom::RegistryPolicyStatements), and the scanning configuration, whose
parts are repository filters by scan frequency (Custom::RegistryScanningFilters). The resource types and the health
check's repair merge them the same way."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ecr_cache_provider.aws.ecr import EcrGateway, ScanningConfiguration
from ecr_cache_provider.failures import ResourceFailure

POLICY_VERSION = "2012-10-17"


class RegistryPolicy:
    """The registry policy as a MergedSetting: its statements by Sid; None when the registry has no policy."""

    part_kind = "registry policy statement"
    lock_name = "registry policy"

    def read(self, ecr: EcrGateway) -> dict[str, Any] | None:
        text = ecr.registry_policy()
        return json.loads(text) if text else None

    def parts(self, state: dict[str, Any] | None) -> set[str]:
        return {str(statement["Sid"]) for statement in policy_statements(state) if "Sid" in statement}

    def merged(self, state: dict[str, Any] | None, put: dict[str, Any], remove: set[str]) -> dict[str, Any] | None:
        kept = [statement for statement in policy_statements(state) if statement.get("Sid") not in remove]
        replaced = [put.get(str(statement.get("Sid")), statement) for statement in kept]
        added = [statement for sid, statement in put.items() if sid not in self.parts(state)]
        statements = replaced + added
        if not statements:
            return None  # nothing left: the registry has no policy
        # Every other top-level element of the policy (its Id, say) is someone else's and stays as it is.
        return {**(state or {}), "Version": (state or {}).get("Version", POLICY_VERSION), "Statement": statements}

    def write(self, ecr: EcrGateway, state: dict[str, Any] | None) -> None:
        if state is None:
            ecr.delete_registry_policy()
        else:
            ecr.put_registry_policy(json.dumps(state))


@dataclass(frozen=True)
class RegistryScanning:
    """The scanning configuration as a MergedSetting: its filters keyed <frequency>/<filter>."""

    allow_enhanced: bool
    part_kind = "registry scanning filter"
    lock_name = "registry scanning configuration"

    def read(self, ecr: EcrGateway) -> ScanningConfiguration:
        return ecr.scanning_configuration()

    def parts(self, state: ScanningConfiguration) -> set[str]:
        return {scanning_key(frequency, name) for frequency, names in state.rules.items() for name in names}

    def merged(self, state: ScanningConfiguration, put: dict[str, Any], remove: set[str]) -> ScanningConfiguration:
        scan_type = state.scan_type
        if put and scan_type != "ENHANCED":
            if not self.allow_enhanced:
                raise ResourceFailure(
                    f"The registry uses {scan_type} scanning; these filters need ENHANCED scanning, which changes "
                    "scanning for the whole registry and starts Amazon Inspector billing. Set AllowEnhancedScanning "
                    "to true to switch"
                )
            scan_type = "ENHANCED"
        rules: dict[str, tuple[str, ...]] = {}
        for frequency, names in state.rules.items():
            rules[frequency] = tuple(name for name in names if scanning_key(frequency, name) not in remove)
        for key, name in put.items():
            frequency = key.split("/", 1)[0]
            if name not in rules.get(frequency, ()):
                rules[frequency] = (*rules.get(frequency, ()), name)
        return ScanningConfiguration(scan_type, {frequency: names for frequency, names in rules.items() if names})

    def write(self, ecr: EcrGateway, state: ScanningConfiguration) -> None:
        ecr.put_scanning_configuration(state)


def scanning_key(frequency: str, name: str) -> str:
    return f"{frequency}/{name}"


def policy_statements(state: dict[str, Any] | None) -> list[dict[str, Any]]:
    statements = (state or {}).get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)
