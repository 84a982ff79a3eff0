"""Registry-wide settings in the whole stack: the registry policy and scanning configuration others made survive
deploying, updating and deleting the stack; the stack's own statement and filters come and go with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulation.test_moto_ecr_registry import REPLICATION, TEAM_RULE
from tests.stack.conftest import Play, organization_sid
from tools.stack_player import LocalAws, render

pytestmark = pytest.mark.stack

ACCOUNT = "123456789012"
ORGANIZATION = "o-abcdefghij"


def registry_statements(aws: LocalAws) -> dict[str, Any]:
    ecr = aws.client("ecr")
    try:
        statements = json.loads(ecr.get_registry_policy()["policyText"])["Statement"]
    except ecr.exceptions.RegistryPolicyNotFoundException:
        return {}
    return {statement["Sid"]: statement for statement in statements}


def scan_rules(aws: LocalAws) -> dict[str, list[str]]:
    configuration = aws.client("ecr").get_registry_scanning_configuration()["scanningConfiguration"]
    return {
        rule["scanFrequency"]: [item["filter"] for item in rule["repositoryFilters"]] for rule in configuration["rules"]
    }


@pytest.fixture
def others_settings(local_aws: LocalAws) -> LocalAws:
    """A registry whose policy lets a source account replicate into it, and where another team scans continuously."""
    ecr = local_aws.client("ecr")
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [REPLICATION]}))
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[TEAM_RULE])
    return local_aws


def test_others_registry_settings_survive_deploy_update_and_delete(
    play: Play, others_settings: LocalAws, tmp_path: Path
) -> None:
    aws = others_settings
    deployed = play(f"OrganizationId={ORGANIZATION}", "RegistryScanning=SCAN_ON_PUSH")
    assert deployed.succeeded, render(deployed.stack, deployed.registry)

    statements = registry_statements(aws)
    sid = organization_sid(tmp_path / "state")
    ours = statements.pop(sid)
    assert len(sid) <= 100
    assert statements == {"ReplicationFromSource": REPLICATION}
    assert ours["Action"] == ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"]
    assert ours["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION}}
    assert sorted(ours["Resource"]) == sorted(
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{prefix}/*" for prefix in ("ecr-public", "quay", "k8s")
    )
    assert scan_rules(aws) == {"CONTINUOUS_SCAN": ["team/*"], "SCAN_ON_PUSH": ["ecr-public/*", "quay/*", "k8s/*"]}
    report = render(deployed.stack, deployed.registry)  # what `make local` prints: the merged result
    assert "ReplicationFromSource" in report
    assert sid in report
    assert "Registry scanning: ENHANCED" in report
    assert "SCAN_ON_PUSH     ecr-public/* quay/* k8s/*" in report

    updated = play(f"OrganizationId={ORGANIZATION}", "RegistryScanning=CONTINUOUS_SCAN", "EnableK8sCache=false")
    assert updated.succeeded, render(updated.stack, updated.registry)
    statements = registry_statements(aws)
    assert statements.pop("ReplicationFromSource") == REPLICATION
    (ours,) = statements.values()
    assert len(ours["Resource"]) == 2
    assert scan_rules(aws) == {"CONTINUOUS_SCAN": ["team/*", "ecr-public/*", "quay/*"]}

    switched_off = play("RegistryScanning=off")  # both resources deleted by the update
    assert switched_off.succeeded, render(switched_off.stack, switched_off.registry)
    assert registry_statements(aws) == {"ReplicationFromSource": REPLICATION}
    assert scan_rules(aws) == {"CONTINUOUS_SCAN": ["team/*"]}

    play(f"OrganizationId={ORGANIZATION}", "RegistryScanning=SCAN_ON_PUSH")
    deleted = play(delete=True)
    assert deleted.succeeded, render(deleted.stack, deleted.registry)
    assert registry_statements(aws) == {"ReplicationFromSource": REPLICATION}
    assert scan_rules(aws) == {"CONTINUOUS_SCAN": ["team/*"]}
