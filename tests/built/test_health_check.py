"""The health check as it ships: its event invoked on the `sam build` output in a clean interpreter, as the
provider's role, against the moto server. Resources are made by the built package too; then a credential is swapped
by hand, a registry statement dropped and an upstream login refused. The run without RepairDrift reports each and
writes nothing; with it, puts back what the resource owns (never the refused login). The summary is what the
function returns, serialised as Lambda does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecr_cache_provider.engine.health_check import health_check_event
from emulation import iam
from emulation.cloudformation import ResponseEndpoint, make_event
from emulation.moto_ecr import faults
from tests.emulation.test_moto_ecr_registry import REPLICATION, registry_statement
from tests.integration.conftest import built_environment
from tools import lambda_runtime

pytestmark = [pytest.mark.integration, pytest.mark.built]

STATEMENT = registry_statement(
    "FillsTheCache", "*", ["ecr:CreateRepository"], "arn:aws:ecr:us-east-1:123456789012:repository/hub/*"
)


def secret(endpoint: str, name: str) -> str:
    client: Any = iam.admin_client("secretsmanager", endpoint_url=endpoint)
    value = json.dumps({"username": "user", "accessToken": "token"})
    return str(client.create_secret(Name=name, SecretString=value)["ARN"])


def test_the_built_health_check_reports_then_repairs_only_what_is_owned(
    built_function: Path, aws_endpoint: str, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    environment = built_environment(aws_endpoint, response_endpoint)
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [REPLICATION]}))
    ours = secret(aws_endpoint, "ecr-pullthroughcache/hub")
    resources: list[tuple[str, str, dict[str, Any]]] = [
        ("Hub", "Custom::PullThroughCacheRule", {"EcrRepositoryPrefix": "hub", "UpstreamRegistryUrl":
         "registry-1.docker.io", "UpstreamRegistry": "docker-hub", "CredentialArn": ours}),
        ("Mirror", "Custom::PullThroughCacheRule", {"EcrRepositoryPrefix": "mirror", "UpstreamRegistryUrl": "quay.io"}),
        ("Statements", "Custom::RegistryPolicyStatements", {"Statements": [STATEMENT]}),
    ]  # fmt: skip
    for logical_id, resource_type, properties in resources:
        event = make_event(response_endpoint, "Create", properties, resource_type=resource_type, logical_id=logical_id)
        assert lambda_runtime.invoke(built_function, event, environment).outcome == "returned"
        assert response_endpoint.wait_for(event["RequestId"])["Status"] == "SUCCESS"
    ecr.update_pull_through_cache_rule(
        ecrRepositoryPrefix="hub", credentialArn=secret(aws_endpoint, "ecr-pullthroughcache/x")
    )
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [REPLICATION]}))
    faults.reject_upstream_credentials("mirror")

    def check(repair: str) -> dict[str, Any]:
        variables = environment | {"HEALTH_CHECK_REPAIR_DRIFT": repair}
        invocation = lambda_runtime.invoke(built_function, health_check_event("built"), variables)
        assert invocation.outcome == "returned", invocation.output
        assert "Health check finished" in invocation.output
        summary: dict[str, Any] = invocation.returned
        return summary

    writes = ("PutRegistryPolicy", "UpdatePullThroughCacheRule", "CreatePullThroughCacheRule")
    before = {name: faults.count(name) for name in writes}
    reported = check("false")  # a string, as CloudFormation passes the parameter: "false" is false
    assert {name: faults.count(name) for name in writes} == before
    found = {(item["checked"], item["prefix"], item["metric"]) for item in reported["findings"]}
    assert found == {
        ("pull-through cache rule", "hub", "DriftedSettings"),
        ("pull-through cache rule", "mirror", "UpstreamLoginFailed"),
        ("registry policy statements", "registry", "DriftedSettings"),
    }
    assert reported["repaired"] == []
    assert reported["checked"] == 3
    assert reported["continued"] is False

    repaired = check("true")
    assert {(item["checked"], item["prefix"]) for item in repaired["repaired"]} == {
        ("pull-through cache rule", "hub"),
        ("registry policy statements", "registry"),
    }
    rule = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["hub"])["pullThroughCacheRules"][0]
    assert rule["credentialArn"] == ours
    assert json.loads(ecr.get_registry_policy()["policyText"])["Statement"] == [REPLICATION, STATEMENT]
    assert [item["metric"] for item in check("false")["findings"]] == ["UpstreamLoginFailed"]  # not repairable
