"""Full Create, Update and Delete sequences from events/, over HTTP against a moto server."""

from __future__ import annotations

from typing import Any

import pytest

from emulation.cloudformation import ResponseEndpoint, load_event
from emulation.moto_ecr import faults
from tests.integration.conftest import IN_PROCESS_ONLY

pytestmark = pytest.mark.integration

DOCKER_HUB = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
ROTATED = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-rotated-GhIjKl"
GHCR = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/ghcr-MnOpQr"
SECRET_VALUE = '{"username": "cache-user", "accessToken": "s3cr3t-t0ken-value"}'


def rules(ecr: Any) -> dict[str, dict[str, Any]]:
    return {
        rule["ecrRepositoryPrefix"]: rule for rule in ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    }


@pytest.fixture
def arns(secrets: Any) -> dict[str, str]:
    """The example ARNs in events/, mapped to secrets made on the moto server."""
    made = {}
    for example in (DOCKER_HUB, ROTATED, GHCR):
        name = example.split(":secret:")[1].rsplit("-", 1)[0]
        made[example] = secrets.create_secret(Name=name, SecretString=SECRET_VALUE)["ARN"]
    return made


def test_create_rotate_change_upstream_change_prefix_delete(
    invoke: Any, response_endpoint: ResponseEndpoint, ecr: Any, arns: dict[str, str]
) -> None:
    def play(name: str) -> dict[str, Any]:
        answer: dict[str, Any] = invoke(load_event(response_endpoint, name, arns))
        assert answer["Status"] == "SUCCESS", f"{name}: {answer['Reason']}"
        return answer

    created = play("pull-through-cache-rule-create.json")
    assert created["PhysicalResourceId"] == "hub"
    assert rules(ecr)["hub"]["credentialArn"] == arns[DOCKER_HUB]

    rotated = play("pull-through-cache-rule-rotate-credential.json")
    assert rotated["PhysicalResourceId"] == "hub"
    assert rules(ecr)["hub"]["credentialArn"] == arns[ROTATED]
    assert faults.count("DeletePullThroughCacheRule") == 0

    moved = play("pull-through-cache-rule-change-upstream.json")
    assert moved["PhysicalResourceId"] == "hub"
    assert rules(ecr)["hub"]["upstreamRegistryUrl"] == "ghcr.io"

    renamed = play("pull-through-cache-rule-change-prefix.json")
    assert renamed["PhysicalResourceId"] == "ghcr"
    assert set(rules(ecr)) == {"hub", "ghcr"}
    play("pull-through-cache-rule-delete.json")  # CloudFormation deletes the replaced resource by its old id
    assert set(rules(ecr)) == {"ghcr"}

    renamed_deleted = load_event(response_endpoint, "pull-through-cache-rule-change-prefix.json", arns)
    renamed_deleted.update(RequestType="Delete", PhysicalResourceId="ghcr")
    del renamed_deleted["OldResourceProperties"]
    assert invoke(renamed_deleted)["Status"] == "SUCCESS"
    assert rules(ecr) == {}
    play("pull-through-cache-rule-delete.json")  # a second Delete changes nothing and succeeds


def test_failed_create_and_its_rollback_leave_the_existing_rule(
    invoke: Any, response_endpoint: ResponseEndpoint, ecr: Any, arns: dict[str, str]
) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="hub", upstreamRegistryUrl="public.ecr.aws")

    failed = invoke(load_event(response_endpoint, "pull-through-cache-rule-create.json", arns))
    assert failed["Status"] == "FAILED"
    assert "public.ecr.aws" in failed["Reason"]

    rollback = load_event(response_endpoint, "pull-through-cache-rule-delete-after-failed-create.json", arns)
    rollback["PhysicalResourceId"] = failed["PhysicalResourceId"]
    assert invoke(rollback)["Status"] == "SUCCESS"
    assert rules(ecr)["hub"]["upstreamRegistryUrl"] == "public.ecr.aws"


def test_rejected_credentials_roll_back_cleanly(
    invoke: Any, response_endpoint: ResponseEndpoint, ecr: Any, arns: dict[str, str]
) -> None:
    faults.reject_upstream_credentials("hub", "Authentication failed for registry-1.docker.io")

    failed = invoke(load_event(response_endpoint, "pull-through-cache-rule-create.json", arns))

    assert failed["Status"] == "FAILED"
    assert "Authentication failed" in failed["Reason"]
    assert rules(ecr) == {}


@IN_PROCESS_ONLY
def test_throttling_over_http_is_retried(
    invoke: Any, response_endpoint: ResponseEndpoint, ecr: Any, arns: dict[str, str]
) -> None:
    faults.throttle("CreatePullThroughCacheRule", times=2)

    answer = invoke(load_event(response_endpoint, "pull-through-cache-rule-create.json", arns))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert faults.count("CreatePullThroughCacheRule") == 3


def test_another_stacks_rule_survives_a_colliding_create_and_its_rollback(
    invoke: Any, response_endpoint: ResponseEndpoint, ecr: Any, arns: dict[str, str]
) -> None:
    owner = invoke(load_event(response_endpoint, "pull-through-cache-rule-create.json", arns))
    before = rules(ecr)["hub"]
    other_stack = {"stack/ecr-pull-through-cache/": "stack/another-stack/"}

    failed = invoke(load_event(response_endpoint, "pull-through-cache-rule-create.json", arns | other_stack))
    rollback = load_event(response_endpoint, "pull-through-cache-rule-delete-after-failed-create.json", other_stack)
    rollback["PhysicalResourceId"] = failed["PhysicalResourceId"]
    cleanup = invoke(rollback)
    foreign_delete = load_event(response_endpoint, "pull-through-cache-rule-delete.json", arns | other_stack)
    foreign_delete["PhysicalResourceId"] = "hub"

    assert owner["Status"] == "SUCCESS", owner["Reason"]
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith(
        "The pull-through cache rule 'hub' belongs to HubCacheRule in stack ecr-pull-through-cache"
    )
    assert cleanup["Status"] == invoke(foreign_delete)["Status"] == "SUCCESS"
    assert rules(ecr) == {"hub": before}
