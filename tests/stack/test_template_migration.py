"""A stack deployed from template.yaml as it was before each cache was written once (commit 2f3a17d, vendored in
fixtures/) updated to today's template.yaml: Fn::ForEach gives every resource the logical id it had, so no cache
rule is replaced and every setting stays as it was (docs/template.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulation import iam
from tests.conftest import create_secret
from tests.stack.conftest import Play
from tests.stack.test_registry_settings import ORGANIZATION
from tools.stack_player import RunResult, render
from tools.stack_player.report import Registry

pytestmark = pytest.mark.stack

TEMPLATE_BEFORE = Path(__file__).parent / "fixtures" / "template-2f3a17d.yaml"
CACHES = ("EcrPublic", "Quay", "K8s", "DockerHub", "GitHub", "GitLab")
# What the role before lacks of today's (template.yaml's ImagesInUse* statements).
IMAGES_IN_USE_ACTIONS = {
    *("lambda:ListFunctions", "lambda:GetFunction"),
    *("ecs:ListClusters", "ecs:ListServices", "ecs:ListTasks"),
    *("ecs:DescribeServices", "ecs:DescribeTasks", "ecs:DescribeTaskDefinition"),
}
# What ECR stamps on a rule or template each time it writes one: compared apart.
TIMESTAMPS = ("createdAt", "updatedAt")


def without_timestamps(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({key: value for key, value in item.items() if key not in TIMESTAMPS} for item in items), key=str)


def settings(registry: Registry) -> dict[str, Any]:
    """Everything the stack set up in the registry, as ECR describes it."""
    return {
        "rules": without_timestamps(registry.rules),
        "templates": without_timestamps(registry.templates),
        "repositories": sorted(registry.repositories, key=str),
        "policy statements": sorted(registry.policy_statements, key=str),
        "scanning": registry.scanning,
        "ledger": sorted(registry.ledger, key=str),
        "schedules": sorted(registry.schedules),
    }


def custom_actions(result: RunResult) -> dict[str, tuple[str, str]]:
    return {
        outcome.logical_id: (outcome.action, outcome.physical_id)
        for outcome in result.stack.outcomes
        if outcome.resource_type.startswith("Custom::")
    }


@pytest.mark.denials_expected  # the stack before runs today's code under yesterday's role: inspected below
@pytest.mark.parametrize(
    "credentials",
    [False, True],
    ids=["the default caches (Quay without a credential)", "every cache, with credentials"],
)
def test_an_update_to_the_loop_replaces_nothing_and_keeps_every_setting(play: Play, credentials: bool) -> None:
    overrides = [
        f"OrganizationId={ORGANIZATION}",
        "RegistryScanning=SCAN_ON_PUSH",
        "ExpireImagesNotPulledForDays=30",
    ]
    if credentials:
        overrides += [
            f"{cache}CredentialArn={create_secret(f'ecr-pullthroughcache/{cache.lower()}')}"
            for cache in ("Quay", "DockerHub", "GitHub", "GitLab")
        ]
    before = play(*overrides, template=TEMPLATE_BEFORE, seed_repositories=2)
    assert before.succeeded, render(before.stack, before.registry)
    # Today's sweep reads the workloads that run images (ProtectImagesInUse, issue 21), which the role before did
    # not allow: it is denied, and the sweep deletes nothing. A real stack never runs that pair (the role is
    # updated before the function's code); after the update, nothing at all is denied.
    assert {denial.action for denial in iam.denials()} <= IMAGES_IN_USE_ACTIONS
    iam.clear()
    created = custom_actions(before)
    enabled = CACHES if credentials else CACHES[:3]
    for cache in enabled:  # the stack before has every part of each cache
        for part in ("CacheRule", "CachedRepositorySettings", "CacheImageExpiry"):
            assert created[f"{cache}{part}"][0] == "Create", (cache, part)

    after = play(*overrides)

    assert after.succeeded, render(after.stack, after.registry)
    assert iam.denials() == []
    assert after.stack.stack_status in ("UPDATE_COMPLETE", "NO_CHANGES")
    updated = custom_actions(after)
    assert set(updated) == set(created)  # the same logical ids: nothing added, nothing removed
    for logical_id, (action, physical_id) in updated.items():
        assert action in ("Unchanged", "Update"), (logical_id, action)
        assert physical_id == created[logical_id][1], logical_id  # a new physical id would be a replacement
    changed = {logical_id for logical_id, (action, _) in updated.items() if action == "Update"}
    # The one property that differs: Quay's CredentialArn is sent as '' where it was left out (the provider takes
    # '' as none). With a credential, it is the same ARN as before.
    assert changed == (set() if credentials else {"QuayCacheRule"})
    assert not [outcome for outcome in after.stack.outcomes if outcome.action.startswith("Cleanup")]
    assert settings(after.registry) == settings(before.registry)
    assert after.stack.outputs == before.stack.outputs
