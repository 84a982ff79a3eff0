"""Cached-repository settings in the whole stack: with OrganizationId, what a role in a member account needs for a
first pull and later pulls is in place (the registry policy's statement and every cached repository's policy,
existing and future; the emulation does not evaluate IAM, so the policies are asserted); and a stack deployed with
Custom::CacheLifecyclePolicy moves to Custom::CachedRepositorySettings in place, without two owners of a template."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from emulation import moto_ecr
from emulation.cloudformation import ACCOUNT_ID, REGION
from tests.stack.conftest import ROOT, Play
from tests.stack.test_registry_settings import ORGANIZATION, registry_statements
from tests.stack.test_stack_player import actions
from tools.stack_player import LocalAws, render

pytestmark = pytest.mark.stack

PREFIXES = ("ecr-public", "quay", "k8s")
# What pulling an image needs on the repository (ECR user guide: repository-policy-examples, pull-through-cache).
PULL_ACTIONS = {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"}
# What a first pull needs at the registry: the cached repository made and the image imported.
FIRST_PULL_ACTIONS = {"ecr:CreateRepository", "ecr:BatchImportUpstreamImage"}


def repository_policy(ecr: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(ecr.get_repository_policy(repositoryName=name)["policyText"]))
    except ecr.exceptions.RepositoryPolicyNotFoundException:
        return None


def lifecycle_policy(ecr: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]))
    except ecr.exceptions.LifecyclePolicyNotFoundException:
        return None


def allows_member_of_organisation(statement: dict[str, Any], actions: set[str], resource: str | None = None) -> bool:
    """Whether the statement allows any principal of ORGANIZATION (and only of it) these actions (on `resource`)."""
    listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    resources = statement.get("Resource", [])
    resources = resources if isinstance(resources, list) else [resources]
    covered = resource is None or any(resource.startswith(item.removesuffix("*")) for item in resources)
    return (
        statement["Effect"] == "Allow"
        and statement["Principal"] in ("*", {"AWS": "*"})
        and statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION}}
        and actions <= set(listed)
        and covered
    )


def test_a_member_account_can_pull_through_every_cache(play: Play, local_aws: LocalAws) -> None:
    ecr = local_aws.client("ecr")
    existing = [f"{prefix}/library/cached-before" for prefix in PREFIXES]
    for name in existing:
        ecr.create_repository(repositoryName=name)  # cached before the stack managed the namespace

    deployed = play(f"OrganizationId={ORGANIZATION}")
    assert deployed.succeeded, render(deployed.stack, deployed.registry)
    later = [f"{prefix}/library/cached-later" for prefix in PREFIXES]
    for name in later:
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, name)  # a first pull after the stack: the template

    statements = list(registry_statements(local_aws).values())
    for name in existing + later:
        arn = f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{name}"
        # First pull: the registry lets the organisation create the cached repository and import the image.
        assert any(allows_member_of_organisation(item, FIRST_PULL_ACTIONS, arn) for item in statements), name
        # Every pull: the repository lets the organisation read the image.
        policy = repository_policy(ecr, name)
        assert policy is not None, name
        assert any(allows_member_of_organisation(item, PULL_ACTIONS) for item in policy["Statement"]), name
        assert lifecycle_policy(ecr, name) is not None, name  # the lifecycle policy too, in the same resource

    removed = play(f"OrganizationId={ORGANIZATION}", delete=True)
    assert removed.succeeded, render(removed.stack, removed.registry)
    assert all(repository_policy(ecr, name) is None for name in existing + later)
    assert registry_statements(local_aws) == {}


def test_without_organisation_no_repository_policy_is_set(play: Play, local_aws: LocalAws) -> None:
    deployed = play()
    assert deployed.succeeded, render(deployed.stack, deployed.registry)
    moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, "quay/coreos/etcd")

    ecr = local_aws.client("ecr")
    assert repository_policy(ecr, "quay/coreos/etcd") is None
    assert lifecycle_policy(ecr, "quay/coreos/etcd") is not None


@pytest.fixture
def template_before(tmp_path: Path) -> Path:
    """template.yaml as it was before Custom::CachedRepositorySettings (one Custom::CacheLifecyclePolicy per cache)."""
    text = subprocess.run(
        ["git", "show", f"{BEFORE_SETTINGS}:template.yaml"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "Custom::CacheLifecyclePolicy" in text
    # Its role lacked dynamodb:UpdateItem, with which the ledger claims (issue 17): on AWS every Create of it was
    # denied, so no stack of it ever stood. The move is played from it as it had to be, with that one action added.
    assert text.count("- dynamodb:PutItem\n") == 1
    text = text.replace("- dynamodb:PutItem\n", "- dynamodb:PutItem\n                  - dynamodb:UpdateItem\n")
    path = tmp_path / "template-before.yaml"
    path.write_text(text)
    return path


# The last commit whose template.yaml used Custom::CacheLifecyclePolicy for its caches.
BEFORE_SETTINGS = "8bd9588"


def template_owners(local_aws: LocalAws) -> dict[str, str]:
    """Each repository creation template's owner (logical id) in the ownership ledger (the stack's table)."""
    dynamodb = local_aws.client("dynamodb")
    items = [item for table in dynamodb.list_tables()["TableNames"] for item in dynamodb.scan(TableName=table)["Items"]]
    return {
        item["Name"]["S"]: item["LogicalResourceId"]["S"]
        for item in items
        if item["Kind"]["S"] == "repository creation template"
    }


def test_a_stack_with_lifecycle_policies_moves_to_settings_in_place(
    play: Play, local_aws: LocalAws, template_before: Path
) -> None:
    ecr = local_aws.client("ecr")
    before = play(template=template_before)
    assert before.succeeded, render(before.stack, before.registry)
    for prefix in PREFIXES:
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, f"{prefix}/library/cached-before")
    assert template_owners(local_aws) == {prefix: f"{name}CacheLifecyclePolicy" for prefix, name in NAMES.items()}

    after = play(f"OrganizationId={ORGANIZATION}")

    assert after.succeeded, render(after.stack, after.registry)
    played = actions(after)
    for name in NAMES.values():
        # CloudFormation's order: the new resource first, the old one deleted in the cleanup at the end.
        assert played.index((f"{name}CachedRepositorySettings", "Create", "SUCCEEDED")) < played.index(
            (f"{name}CacheLifecyclePolicy", "Cleanup delete", "SUCCEEDED")
        )
    assert template_owners(local_aws) == {prefix: f"{name}CachedRepositorySettings" for prefix, name in NAMES.items()}
    templates = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    assert sorted(template["prefix"] for template in templates) == sorted(PREFIXES)
    for prefix in PREFIXES:
        name = f"{prefix}/library/cached-before"
        assert lifecycle_policy(ecr, name) is not None, name  # the old resource's Delete left it to the new one
        assert repository_policy(ecr, name) is not None, name
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, f"{prefix}/library/cached-after")
        assert lifecycle_policy(ecr, f"{prefix}/library/cached-after") is not None

    removed = play(delete=True)
    assert removed.succeeded, render(removed.stack, removed.registry)
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []
    assert all(lifecycle_policy(ecr, f"{prefix}/library/cached-before") is None for prefix in PREFIXES)
    assert template_owners(local_aws) == {}


NAMES = {"ecr-public": "EcrPublic", "quay": "Quay", "k8s": "K8s"}


def test_a_rolled_back_move_leaves_the_lifecycle_policies_as_they_were(
    play: Play, local_aws: LocalAws, template_before: Path
) -> None:
    """The update fails after the new resources took the templates over (the organisation's registry statement
    is refused: its Sid is someone else's), so CloudFormation deletes the new resources: the claims and templates
    go back to the old ones, which still own and later delete them."""
    ecr = local_aws.client("ecr")
    assert play(template=template_before).succeeded
    for prefix in PREFIXES:
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, f"{prefix}/library/cached-before")
    templates_before = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    taken = {"Sid": "OrganizationFillsCacheecrpullthroughcache", "Effect": "Allow", "Principal": {"AWS": "*"},
             "Action": "ecr:ReplicateImage", "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/*"}  # fmt: skip
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [taken]}))

    failed = play(f"OrganizationId={ORGANIZATION}")

    assert not failed.succeeded
    assert failed.stack.stack_status == "UPDATE_ROLLBACK_COMPLETE", render(failed.stack, failed.registry)
    played = actions(failed)
    for name in NAMES.values():
        assert (f"{name}CachedRepositorySettings", "Rollback delete", "SUCCEEDED") in played
    assert template_owners(local_aws) == {prefix: f"{name}CacheLifecyclePolicy" for prefix, name in NAMES.items()}
    templates_after = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    keep = ("prefix", "description", "lifecyclePolicy", "repositoryPolicy")
    assert [{key: item.get(key) for key in keep} for item in templates_after] == [
        {key: item.get(key) for key in keep} for item in templates_before
    ]
    for prefix in PREFIXES:
        assert lifecycle_policy(ecr, f"{prefix}/library/cached-before") is not None
        assert repository_policy(ecr, f"{prefix}/library/cached-before") is None

    removed = play(template=template_before, delete=True)
    assert removed.succeeded, render(removed.stack, removed.registry)
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []
    assert all(lifecycle_policy(ecr, f"{prefix}/library/cached-before") is None for prefix in PREFIXES)
