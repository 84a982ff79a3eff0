"""template.yaml's stack through CloudFormation's unhappy paths, as the stack player plays them: a sibling fails
while a Create or an Update runs (CloudFormation cancels it, and rolls back while its work goes on), then the
stack is deleted. Nothing the provider made is left: no claim or record in its ledger, no template, no schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.stack.conftest import Play
from tools.stack_player import LocalAws, RunResult, render
from tools.stack_player.state import load_state


def actions(result: RunResult) -> list[tuple[str, str, str]]:
    return [(outcome.logical_id, outcome.action, outcome.status) for outcome in result.stack.outcomes]


def held(result: RunResult) -> tuple[list[Any], list[str]]:
    """What the provider holds after the run: its ledger's claims and records, and its schedules."""
    return result.registry.ledger, result.registry.schedules


def test_a_stack_whose_create_is_cancelled_leaves_nothing(play: Play, local_aws: LocalAws) -> None:
    cancelled = play(
        "ExpireImagesNotPulledForDays=30",
        cancel_during="QuayCachedRepositorySettings",
        cancel_after=0.0,
        seed_repositories=30,
    )

    report = render(cancelled.stack, cancelled.registry)
    assert cancelled.stack.stack_status == "ROLLBACK_COMPLETE", report
    failed = next(outcome for outcome in cancelled.stack.outcomes if outcome.status == "FAILED")
    assert (failed.logical_id, failed.reason) == (
        "QuayCachedRepositorySettings",
        "Resource creation cancelled (a sibling failed)",
    )
    rollback = next(
        outcome
        for outcome in cancelled.stack.outcomes
        if outcome.logical_id == "QuayCachedRepositorySettings" and outcome.action == "Rollback delete"
    )
    assert rollback.status == "SUCCEEDED"
    assert rollback.physical_id.startswith("ecr-pull-through-cache-QuayCachedRepositorySettings-")  # CloudFormation's
    assert held(cancelled) == ([], []), report
    assert (cancelled.registry.rules, cancelled.registry.templates) == ([], [])
    assert not any(repository["lifecyclePolicy"] for repository in cancelled.registry.repositories)


def test_a_rename_rolled_back_after_a_cancelled_update_leaves_nothing_of_the_new_name(
    play: Play, local_aws: LocalAws, tmp_path: Path
) -> None:
    assert play(seed_repositories=30).succeeded

    rolled_back = play("QuayPrefix=quay-mirror", cancel_during="QuayCachedRepositorySettings", cancel_after=0.0)

    report = render(rolled_back.stack, rolled_back.registry)
    assert rolled_back.stack.stack_status == "UPDATE_ROLLBACK_COMPLETE", report
    played = actions(rolled_back)
    assert ("QuayCachedRepositorySettings", "Update", "FAILED") in played
    assert ("QuayCachedRepositorySettings", "Rollback update", "SUCCEEDED") in played
    assert ("QuayCacheRule", "Rollback cleanup delete", "SUCCEEDED") in played
    assert sorted(rule["ecrRepositoryPrefix"] for rule in rolled_back.registry.rules) == ["ecr-public", "k8s", "quay"]
    assert sorted(template["prefix"] for template in rolled_back.registry.templates) == ["ecr-public", "k8s", "quay"]
    assert not any("quay-mirror" in item["name"] for item in rolled_back.registry.ledger), report
    stack_id = load_state(tmp_path / "state", "ecr-pull-through-cache").stack_id
    (described,) = local_aws.client("cloudformation").describe_stacks(StackName=stack_id)["Stacks"]
    assert described["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"  # what the provider read, over HTTP

    deleted = play(delete=True)

    assert deleted.succeeded, render(deleted.stack, deleted.registry)
    assert held(deleted) == ([], [])
    assert "(nothing)" in render(deleted.stack, deleted.registry)


def ownership_table(local_aws: LocalAws, result: RunResult) -> str:
    """The table the stack's provider function keeps its ledger in (its OWNERSHIP_TABLE)."""
    function = str(result.stack.outputs["ServiceToken"]).rsplit(":", 1)[1]
    return local_aws.function_environment(function)["OWNERSHIP_TABLE"]


def test_a_deleted_provider_stack_retains_its_ledger_and_a_new_stack_starts_its_own(
    play: Play, local_aws: LocalAws
) -> None:
    """What the retention is for (template.yaml, OwnershipTable): the table outlives the stack as a record for
    people. Everything the stack's own resources held in it is gone by then (their Deletes ran first); only each
    resource's record of its last request is left, and DynamoDB expires it. A stack deployed again under the same
    name gets a new table of its own, as CloudFormation names one anew (it never reads the retained one)."""
    ecr, dynamodb = local_aws.client("ecr"), local_aws.client("dynamodb")
    ecr.create_repository(repositoryName="quay/coreos/etcd")  # cached before the stack: its settings are recorded
    first = play()
    assert first.succeeded, render(first.stack, first.registry)
    retained = ownership_table(local_aws, first)
    assert any(item["kind"] == "repository settings" for item in first.registry.ledger)

    deleted = play(delete=True)

    assert deleted.succeeded, render(deleted.stack, deleted.registry)
    assert retained in dynamodb.list_tables()["TableNames"]
    items = dynamodb.scan(TableName=retained, ConsistentRead=True)["Items"]
    assert {item["Kind"]["S"] for item in items} == {"resource"}  # each resource's last request, and nothing else
    assert all("ExpiresAt" in item for item in items)

    again = play()

    assert again.succeeded, render(again.stack, again.registry)
    assert ownership_table(local_aws, again) not in (retained, "")
    assert dynamodb.scan(TableName=retained, ConsistentRead=True)["Items"] == items  # never read, never written
