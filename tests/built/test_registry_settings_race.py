"""Two stacks changing the registry policy and the scanning configuration at once, each request in its own Lambda
execution environment (a process of the built package) against one moto server: neither loses the other's parts,
and what others put there before is intact after both have created and deleted theirs."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from emulation.cloudformation import STACK_ID, ResponseEndpoint, make_event
from tests.emulation.test_moto_ecr_registry import REPLICATION, TEAM_RULE, registry_statement
from tests.integration.conftest import built_environment
from tools import lambda_runtime

pytestmark = [pytest.mark.integration, pytest.mark.built]

STACKS = {name: STACK_ID.replace("stack/cache-stack/", f"stack/{name}/") for name in ("dev-stack", "prod-stack")}


def statement(stack: str) -> dict[str, Any]:
    actions = ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"]
    resource = f"arn:aws:ecr:us-east-1:123456789012:repository/{stack}/*"
    return registry_statement("FillsCache" + stack.replace("-", ""), "*", actions, resource)


def statements_of(stack: str) -> dict[str, Any]:
    return {"Statements": [statement(stack)]}


def filters_of(stack: str) -> dict[str, Any]:
    return {"ScanFrequency": "SCAN_ON_PUSH", "Filters": [f"{stack}/*"]}


def events(endpoint: ResponseEndpoint, request_type: str) -> list[dict[str, Any]]:
    """Each stack's two resources, as CloudFormation would send the request."""
    resources: dict[str, tuple[str, str, Callable[[str], dict[str, Any]]]] = {
        "Statements": ("Custom::RegistryPolicyStatements", "registry-policy", statements_of),
        "Scanning": ("Custom::RegistryScanningFilters", "registry-scanning", filters_of),
    }
    made = []
    for name, stack_id in STACKS.items():
        for logical_id, (resource_type, id_prefix, properties) in resources.items():
            physical_id = None if request_type == "Create" else f"{id_prefix}/{name}/{logical_id}"
            event = make_event(
                endpoint,
                request_type,
                properties(name),
                resource_type=resource_type,
                logical_id=logical_id,
                physical_id=physical_id,
            )
            made.append(event | {"StackId": stack_id})
    return made


def play_at_once(
    built_function: Path, environment: dict[str, str], endpoint: ResponseEndpoint, request_type: str
) -> None:
    requests = events(endpoint, request_type)
    with ThreadPoolExecutor(len(requests)) as pool:
        list(pool.map(lambda event: lambda_runtime.invoke(built_function, event, environment), requests))
    for event in requests:
        answer = endpoint.wait_for(event["RequestId"])
        assert answer["Status"] == "SUCCESS", answer


def test_two_stacks_at_once_keep_each_others_and_everyone_elses_parts(
    built_function: Path, aws_endpoint: str, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [REPLICATION]}))
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[TEAM_RULE])
    environment = built_environment(aws_endpoint, response_endpoint)

    def registry() -> tuple[list[str], dict[str, list[str]]]:
        sids = sorted(s["Sid"] for s in json.loads(ecr.get_registry_policy()["policyText"])["Statement"])
        rules = ecr.get_registry_scanning_configuration()["scanningConfiguration"]["rules"]
        return sids, {r["scanFrequency"]: sorted(f["filter"] for f in r["repositoryFilters"]) for r in rules}

    play_at_once(built_function, environment, response_endpoint, "Create")
    assert registry() == (
        ["FillsCachedevstack", "FillsCacheprodstack", "ReplicationFromSource"],
        {"CONTINUOUS_SCAN": ["team/*"], "SCAN_ON_PUSH": ["dev-stack/*", "prod-stack/*"]},
    )

    play_at_once(built_function, environment, response_endpoint, "Delete")
    assert registry() == (["ReplicationFromSource"], {"CONTINUOUS_SCAN": ["team/*"]})
