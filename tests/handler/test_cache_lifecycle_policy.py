"""Custom::CacheLifecyclePolicy through the real handler: template, backfill, ownership, scale and continuation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulation import moto_ecr
from emulation.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint, make_event
from emulation.moto_ecr import faults
from tests.handler.conftest import Invoke
from tests.unit.test_lifecycle_policy import policy

TYPE = "Custom::CacheLifecyclePolicy"


POLICY = json.dumps(policy())
NEW_POLICY = json.dumps(policy(days=7, keep=20))
FOREIGN_POLICY = json.dumps(policy(days=99, keep=99))


def props(prefix: str = "ecr-public", text: str = POLICY, **extra: Any) -> dict[str, Any]:
    return {"RepositoryPrefix": prefix, "LifecyclePolicyText": text, **extra}


@pytest.fixture
def cache(ecr: Any) -> Any:
    """An ECR Public cache rule with three cached repositories, and neighbours outside its namespace."""
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
    for name in ("library/nginx", "library/redis", "docker/library/alpine"):
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, f"ecr-public/{name}")
    ecr.create_repository(repositoryName="ecr-publicx/app")
    ecr.create_repository(repositoryName="team/app")
    return ecr


def policies(ecr: Any) -> dict[str, Any]:
    """Each repository's lifecycle policy, parsed, or None."""
    found = {}
    for repository in ecr.describe_repositories()["repositories"]:
        name = repository["repositoryName"]
        try:
            found[name] = json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
        except ecr.exceptions.LifecyclePolicyNotFoundException:
            found[name] = None
    return found


def templates(ecr: Any) -> dict[str, dict[str, Any]]:
    found = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    return {template["prefix"]: template for template in found}


def event(endpoint: ResponseEndpoint, request_type: str, properties: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return make_event(endpoint, request_type, properties, resource_type=TYPE, logical_id="CacheLifecycle", **kwargs)


# Create


def test_create_puts_the_policy_on_every_repository_of_the_namespace_and_owns_a_template(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "ecr-public"
    assert answer["Data"] == {"RepositoryPrefix": "ecr-public", "RepositoriesUpdated": "3", "RepositoriesSkipped": "0"}
    assert policies(cache) == {
        "ecr-public/library/nginx": policy(),
        "ecr-public/library/redis": policy(),
        "ecr-public/docker/library/alpine": policy(),
        "ecr-publicx/app": None,  # the namespace is the prefix followed by '/'
        "team/app": None,
    }
    template = templates(cache)["ecr-public"]
    assert template["appliedFor"] == ["PULL_THROUGH_CACHE"]
    assert json.loads(template["lifecyclePolicy"]) == policy()


def test_repositories_cached_later_get_the_policy_from_the_template(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(event(response_endpoint, "Create", props()))

    moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, "ecr-public/library/postgres")

    assert policies(cache)["ecr-public/library/postgres"] == policy()


def test_a_repository_with_another_policy_is_skipped_by_default(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    cache.put_lifecycle_policy(repositoryName="ecr-public/library/redis", lifecyclePolicyText=FOREIGN_POLICY)

    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Data"]["RepositoriesUpdated"] == "2"
    assert answer["Data"]["RepositoriesSkipped"] == "1"
    assert policies(cache)["ecr-public/library/redis"] == json.loads(FOREIGN_POLICY)


def test_overwrite_existing_policies(invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any) -> None:
    cache.put_lifecycle_policy(repositoryName="ecr-public/library/redis", lifecyclePolicyText=FOREIGN_POLICY)

    answer = invoke(event(response_endpoint, "Create", props(OverwriteExistingPolicies="true")))

    assert answer["Data"]["RepositoriesUpdated"] == "3"
    assert policies(cache)["ecr-public/library/redis"] == policy()


def test_apply_to_existing_false_leaves_repositories_alone(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    answer = invoke(event(response_endpoint, "Create", props(ApplyToExistingRepositories="false")))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "0"
    assert set(policies(cache).values()) == {None}
    assert "ecr-public" in templates(cache)


def test_apply_to_new_false_makes_no_template(invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any) -> None:
    invoke(event(response_endpoint, "Create", props(ApplyToNewRepositories="false")))

    moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, "ecr-public/library/postgres")

    assert templates(cache) == {}
    assert policies(cache)["ecr-public/library/postgres"] is None
    assert policies(cache)["ecr-public/library/nginx"] == policy()


def test_policy_as_an_object_with_numbers_sent_as_strings(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    answer = invoke(event(response_endpoint, "Create", props(text=policy())))  # type: ignore[arg-type]

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert policies(cache)["ecr-public/library/nginx"] == policy()


def test_only_numeric_fields_of_an_object_policy_become_numbers(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    release_tags = {
        "rules": [
            {
                "rulePriority": 1,
                "description": "2024",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": ["2024"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 3,
                },
                "action": {"type": "expire"},
            }
        ]
    }

    answer = invoke(event(response_endpoint, "Create", props(text=release_tags)))  # type: ignore[arg-type]

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert policies(cache)["ecr-public/library/nginx"] == release_tags


def test_a_prefix_with_double_underscores_is_a_valid_namespace(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    answer = invoke(event(response_endpoint, "Create", props(prefix="team__cache")))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert "team__cache" in templates(ecr)


def test_current_selection_types_are_accepted(invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any) -> None:
    by_pull = {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Expire images nobody pulled for 90 days",
                "selection": {
                    "tagStatus": "any",
                    "countType": "sinceImagePulled",
                    "countUnit": "days",
                    "countNumber": 90,
                },
                "action": {"type": "expire"},
            }
        ]
    }

    answer = invoke(event(response_endpoint, "Create", props(text=json.dumps(by_pull))))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert policies(cache)["ecr-public/library/nginx"] == by_pull


def test_every_page_of_repositories_is_covered(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecr_cache_provider import ecr

    monkeypatch.setattr(ecr, "REPOSITORIES_PER_PAGE", 2)  # five repositories: three pages

    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Data"]["RepositoriesUpdated"] == "3"
    assert faults.count("DescribeRepositories") == 3


def test_root_covers_every_repository(invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any) -> None:
    answer = invoke(event(response_endpoint, "Create", props(prefix="ROOT", ApplyToNewRepositories="false")))

    assert answer["Data"]["RepositoriesUpdated"] == "5"


def test_a_template_someone_else_made_fails_the_create_and_survives_the_rollback(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    cache.create_repository_creation_template(
        prefix="ecr-public",
        appliedFor=["PULL_THROUGH_CACHE"],
        description="made by hand",
        lifecyclePolicy=FOREIGN_POLICY,
    )

    answer = invoke(event(response_endpoint, "Create", props()))
    rollback = invoke(event(response_endpoint, "Delete", props(), physical_id=answer["PhysicalResourceId"]))

    assert answer["Status"] == "FAILED"
    assert "already exists" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("failed-create:")
    assert rollback["Status"] == "SUCCESS"
    assert templates(cache)["ecr-public"]["description"] == "made by hand"
    assert set(policies(cache).values()) == {None}


def test_a_replayed_create_finds_its_own_template(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    request = event(response_endpoint, "Create", props())
    invoke(request)
    response_endpoint.received.pop(request["RequestId"])

    replay = invoke(request)

    assert replay["Status"] == "SUCCESS", replay["Reason"]


# Update


def test_update_moves_repositories_with_the_old_policy_or_none_to_the_new_one(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(event(response_endpoint, "Create", props()))
    moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, "ecr-public/library/postgres")  # old policy via the template
    cache.create_repository(repositoryName="ecr-public/manual/none")  # no policy
    cache.put_lifecycle_policy(repositoryName="ecr-public/library/redis", lifecyclePolicyText=FOREIGN_POLICY)

    answer = invoke(
        event(response_endpoint, "Update", props(text=NEW_POLICY), physical_id="ecr-public", old_properties=props())
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "ecr-public"
    assert answer["Data"]["RepositoriesUpdated"] == "4"
    assert answer["Data"]["RepositoriesSkipped"] == "1"
    found = policies(cache)
    assert found["ecr-public/library/redis"] == json.loads(FOREIGN_POLICY)
    assert all(
        found[name] == json.loads(NEW_POLICY)
        for name in found
        if name.startswith("ecr-public/") and "redis" not in name
    )
    assert json.loads(templates(cache)["ecr-public"]["lifecyclePolicy"]) == json.loads(NEW_POLICY)


def test_a_new_prefix_is_a_replacement(invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any) -> None:
    invoke(event(response_endpoint, "Create", props()))
    cache.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, "quay/prometheus/prometheus")

    answer = invoke(
        event(response_endpoint, "Update", props(prefix="quay"), physical_id="ecr-public", old_properties=props())
    )
    cleanup = invoke(event(response_endpoint, "Delete", props(), physical_id="ecr-public"))

    assert answer["PhysicalResourceId"] == "quay"
    assert cleanup["Status"] == "SUCCESS"
    assert set(templates(cache)) == {"quay"}
    assert policies(cache)["quay/prometheus/prometheus"] == policy()
    assert policies(cache)["ecr-public/library/nginx"] is None


def test_turning_apply_to_new_off_deletes_the_template(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(event(response_endpoint, "Create", props()))

    invoke(
        event(
            response_endpoint,
            "Update",
            props(ApplyToNewRepositories="false"),
            physical_id="ecr-public",
            old_properties=props(),
        )
    )

    assert templates(cache) == {}


# Delete


def test_delete_removes_only_the_policy_this_resource_applied_and_its_template(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(event(response_endpoint, "Create", props()))
    cache.put_lifecycle_policy(repositoryName="ecr-public/library/redis", lifecyclePolicyText=FOREIGN_POLICY)
    cache.put_lifecycle_policy(repositoryName="team/app", lifecyclePolicyText=POLICY)  # outside the namespace

    first = invoke(event(response_endpoint, "Delete", props(), physical_id="ecr-public"))
    second = invoke(event(response_endpoint, "Delete", props(), physical_id="ecr-public"))

    assert first["Status"] == second["Status"] == "SUCCESS"
    assert templates(cache) == {}
    found = policies(cache)
    assert found["ecr-public/library/nginx"] is None
    assert found["ecr-public/library/redis"] == json.loads(FOREIGN_POLICY)
    assert found["team/app"] == policy()


def test_delete_with_properties_that_no_longer_validate_still_cleans_up(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(event(response_endpoint, "Create", props()))

    answer = invoke(
        event(response_endpoint, "Delete", props(Unknown="x", ApplyToNewRepositories="maybe"), physical_id="ecr-public")
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert templates(cache) == {}
    assert set(policies(cache).values()) == {None}


def test_delete_leaves_a_template_it_does_not_own(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    cache.create_repository_creation_template(
        prefix="ecr-public", appliedFor=["PULL_THROUGH_CACHE"], description="mine"
    )

    answer = invoke(event(response_endpoint, "Delete", props(), physical_id="ecr-public"))

    assert answer["Status"] == "SUCCESS"
    assert "ecr-public" in templates(cache)


def test_delete_after_a_failed_create_changes_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    answer = invoke(event(response_endpoint, "Delete", props(), physical_id="failed-create:1234"))

    assert answer["Status"] == "SUCCESS"
    assert faults.count("DescribeRepositories") == 0
    assert faults.count("DescribeRepositoryCreationTemplates") == 0


# Scale: throttling and continuation


def test_throttling_is_retried(invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any) -> None:
    faults.throttle("PutLifecyclePolicy", times=4)
    faults.throttle("GetLifecyclePolicy", times=3)

    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "3"


@pytest.fixture
def one_batch_per_invocation(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every invocation does one batch of two repositories and hands the rest on; hand-offs are recorded
    instead of invoking Lambda, and the test plays the follow-ups."""
    from ecr_cache_provider import continuation, namespace

    monkeypatch.setattr(namespace, "BATCH_SIZE", 2)
    monkeypatch.setattr(namespace, "HAND_OFF_SECONDS", 1e9)
    handed: list[dict[str, Any]] = []
    monkeypatch.setattr(
        continuation,
        "hand_off",
        lambda event, arn, progress: handed.append(continuation.follow_up_event(event, progress)),
    )
    return handed


def play_until_answered(
    first: dict[str, Any], handed: list[dict[str, Any]], response_endpoint: ResponseEndpoint
) -> tuple[dict[str, Any], int]:
    from ecr_cache_provider import handler
    from emulation.cloudformation import LambdaContext

    invocations = 0
    pending = [first]
    while pending:
        handler.lambda_handler(pending.pop(), LambdaContext())
        invocations += 1
        pending += handed
        handed.clear()
        if pending:
            assert response_endpoint.answers(first["RequestId"]) == []  # no answer until the work is done
    return response_endpoint.wait_for(first["RequestId"]), invocations


def test_work_that_does_not_fit_continues_in_follow_up_invocations(
    response_endpoint: ResponseEndpoint, cache: Any, one_batch_per_invocation: list[dict[str, Any]], fast_retries: None
) -> None:
    for index in range(4):
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, f"ecr-public/extra/image-{index}")

    answer, invocations = play_until_answered(
        event(response_endpoint, "Create", props()), one_batch_per_invocation, response_endpoint
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "7"
    assert invocations == 4  # 7 repositories, 2 per invocation
    assert faults.count("CreateRepositoryCreationTemplate") == 1
    assert all(found == policy() for name, found in policies(cache).items() if name.startswith("ecr-public/"))


def test_delete_continues_too(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any, one_batch_per_invocation: list[dict[str, Any]]
) -> None:
    for name in ("library/nginx", "library/redis", "docker/library/alpine"):
        cache.put_lifecycle_policy(repositoryName=f"ecr-public/{name}", lifecyclePolicyText=POLICY)

    answer, invocations = play_until_answered(
        event(response_endpoint, "Delete", props(), physical_id="ecr-public"),
        one_batch_per_invocation,
        response_endpoint,
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert invocations == 2
    assert set(policies(cache).values()) == {None}


def test_a_failed_hand_off_answers_failed_with_what_was_made(
    response_endpoint: ResponseEndpoint, cache: Any, monkeypatch: pytest.MonkeyPatch, fast_retries: None
) -> None:
    from ecr_cache_provider import continuation, handler, namespace
    from emulation.cloudformation import LambdaContext

    monkeypatch.setattr(namespace, "BATCH_SIZE", 1)
    monkeypatch.setattr(namespace, "HAND_OFF_SECONDS", 1e9)

    def refuse(*args: Any) -> None:
        raise RuntimeError("AccessDeniedException: not allowed to invoke")

    monkeypatch.setattr(continuation, "hand_off", refuse)
    request = event(response_endpoint, "Create", props())

    handler.lambda_handler(request, LambdaContext())

    answer = response_endpoint.wait_for(request["RequestId"])
    assert answer["Status"] == "FAILED"
    assert "Could not continue" in answer["Reason"]
    assert answer["PhysicalResourceId"] == "ecr-public"  # the rollback's Delete removes the template it made


def test_a_chain_that_never_ends_is_stopped(
    response_endpoint: ResponseEndpoint, cache: Any, one_batch_per_invocation: list[dict[str, Any]], fast_retries: None
) -> None:
    from ecr_cache_provider import continuation, handler
    from emulation.cloudformation import LambdaContext

    request = continuation.follow_up_event(
        event(response_endpoint, "Create", props()),
        continuation.Progress(invocation=continuation.MAX_INVOCATIONS - 1),
    )

    handler.lambda_handler(request, LambdaContext())

    answer = response_endpoint.wait_for(request["RequestId"])
    assert answer["Status"] == "FAILED"
    assert f"Gave up after {continuation.MAX_INVOCATIONS} invocations" in answer["Reason"]
