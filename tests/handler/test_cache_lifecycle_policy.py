"""Custom::CacheLifecyclePolicy through the real handler: template, backfill, ownership, scale and continuation,
and ECR throttling.

Throttling: bursts of consecutive throttles far longer than botocore's attempts, on each call the backfill makes,
and a sustained rate limit well below what the provider's threads ask for. `fast_retries` (through `invoke`) shrinks
botocore's backoff and the provider's own pauses, never how often a call is tried."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulation import moto_ecr
from emulation.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint, make_event
from emulation.lambda_emulator import published_metrics
from emulation.moto_ecr import faults
from tests.conftest import began, cached_repositories
from tests.handler.conftest import Invoke, batches_of, play_until_answered
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
    assert answer["Data"] == {
        "RepositoryPrefix": "ecr-public",
        "RepositoriesUpdated": "3",
        "RepositoriesSkipped": "0",
        "ExistingRepositoriesLeftAlone": "false",
    }
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
    from ecr_cache_provider.aws import ecr

    monkeypatch.setattr(ecr, "REPOSITORIES_PER_PAGE", 2)  # five repositories: three pages

    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Data"]["RepositoriesUpdated"] == "3"
    assert faults.count("DescribeRepositories") == 3


@pytest.mark.consumer_namespaces("ROOT")  # a ROOT template reaches every repository
def test_root_leaves_existing_repositories_alone_by_default(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A repository ECR cached cannot be told from one an application pushes to: ROOT owns only the template."""
    answer = invoke(event(response_endpoint, "Create", props(prefix="ROOT")))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"] == {
        "RepositoryPrefix": "ROOT",
        "RepositoriesUpdated": "0",
        "RepositoriesSkipped": "0",
        "ExistingRepositoriesLeftAlone": "true",
    }
    assert faults.count("GetLifecyclePolicy") == faults.count("PutLifecyclePolicy") == 0
    assert set(policies(cache).values()) == {None}
    assert "existing repositories left alone" in caplog.text
    moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, "ecr-public/library/postgres")
    assert policies(cache)["ecr-public/library/postgres"] == policy()  # new cached repositories get it


@pytest.mark.consumer_namespaces("ROOT")  # a ROOT template reaches every repository
def test_root_backfills_only_the_prefixes_named(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    answer = invoke(
        event(response_endpoint, "Create", props(prefix="ROOT", ExistingRepositoryPrefixes=["ecr-public/"]))
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "3"
    assert answer["Data"]["ExistingRepositoriesLeftAlone"] == "false"
    assert policies(cache) == {
        "ecr-public/library/nginx": policy(),
        "ecr-public/library/redis": policy(),
        "ecr-public/docker/library/alpine": policy(),
        "ecr-publicx/app": None,
        "team/app": None,
    }


@pytest.mark.consumer_namespaces("ROOT")  # a ROOT template reaches every repository
def test_root_backfills_every_repository_when_told_so(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    answer = invoke(event(response_endpoint, "Create", props(prefix="ROOT", ExistingRepositoryPrefixes=["ROOT"])))

    assert answer["Data"]["RepositoriesUpdated"] == "5"
    assert set(map(json.dumps, policies(cache).values())) == {json.dumps(policy())}


@pytest.mark.consumer_namespaces("ROOT")  # a ROOT template reaches every repository
def test_an_update_adding_a_prefix_backfills_it(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(event(response_endpoint, "Create", props(prefix="ROOT")))

    answer = invoke(
        event(
            response_endpoint,
            "Update",
            props(prefix="ROOT", ExistingRepositoryPrefixes=["team"]),
            physical_id="ROOT",
            old_properties=props(prefix="ROOT"),
        )
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "1"
    assert [name for name, found in policies(cache).items() if found] == ["team/app"]


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


def test_update_moves_repositories_with_the_policy_it_set_or_none_to_the_new_one(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    """What the Create set (the ledger records it) and repositories without a policy get the new policy. A policy
    someone else set is theirs; so is one ECR gave a repository cached later from the template: the ledger cannot
    tell it from one set by hand (it holds no record of it), so it is left as it is and counted as skipped."""
    invoke(event(response_endpoint, "Create", props()))
    moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, "ecr-public/library/postgres")  # old policy via the template
    cache.create_repository(repositoryName="ecr-public/manual/none")  # no policy
    cache.put_lifecycle_policy(repositoryName="ecr-public/library/redis", lifecyclePolicyText=FOREIGN_POLICY)

    answer = invoke(
        event(response_endpoint, "Update", props(text=NEW_POLICY), physical_id="ecr-public", old_properties=props())
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "ecr-public"
    assert (answer["Data"]["RepositoriesUpdated"], answer["Data"]["RepositoriesSkipped"]) == ("3", "2")
    found = policies(cache)
    assert found["ecr-public/library/redis"] == json.loads(FOREIGN_POLICY)
    assert found["ecr-public/library/postgres"] == policy()
    assert {name for name, value in found.items() if value == json.loads(NEW_POLICY)} == {
        "ecr-public/library/nginx",
        "ecr-public/docker/library/alpine",
        "ecr-public/manual/none",
    }
    assert json.loads(templates(cache)["ecr-public"]["lifecyclePolicy"]) == json.loads(NEW_POLICY)


def test_overwrite_reaches_what_the_template_gave_and_delete_puts_back_what_was_there(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(event(response_endpoint, "Create", props()))
    moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, "ecr-public/library/postgres")  # old policy via the template
    cache.put_lifecycle_policy(repositoryName="ecr-public/library/redis", lifecyclePolicyText=FOREIGN_POLICY)
    overwriting = props(text=NEW_POLICY, OverwriteExistingPolicies="true")

    answer = invoke(event(response_endpoint, "Update", overwriting, physical_id="ecr-public", old_properties=props()))
    invoke(event(response_endpoint, "Delete", overwriting, physical_id="ecr-public"))

    assert (answer["Data"]["RepositoriesUpdated"], answer["Data"]["RepositoriesSkipped"]) == ("4", "0")
    assert policies(cache) == {
        "ecr-public/library/nginx": None,  # none before the Create
        "ecr-public/library/redis": json.loads(FOREIGN_POLICY),  # what it carried before the Update replaced it
        "ecr-public/docker/library/alpine": None,
        "ecr-public/library/postgres": policy(),  # what the template gave it
        "ecr-publicx/app": None,
        "team/app": None,
    }


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
def one_batch_per_invocation(monkeypatch: pytest.MonkeyPatch, handed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every invocation does one batch of two repositories and hands the rest on; hand-offs are recorded
    instead of invoking Lambda, and the test plays the follow-ups."""
    batches_of(2, monkeypatch)
    return handed


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
    from ecr_cache_provider import continuation, handler
    from ecr_cache_provider.engine import batches as namespace
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
        began(event(response_endpoint, "Create", props())),
        continuation.Progress(invocation=continuation.MAX_INVOCATIONS - 1),
    )

    handler.lambda_handler(request, LambdaContext())

    answer = response_endpoint.wait_for(request["RequestId"])
    assert answer["Status"] == "FAILED"
    assert f"Gave up after {continuation.MAX_INVOCATIONS} invocations" in answer["Reason"]


# Throttling slows a backfill down, never fails it

BACKFILL_CALLS = ("DescribeRepositories", "GetLifecyclePolicy", "PutLifecyclePolicy")
# Far more consecutive throttles than botocore's attempts at one call: a call alone cannot get past them.
BURST = 48


def throttled_calls_published(output: str) -> int:
    """The ThrottledCalls the invocations wrote as CloudWatch embedded metrics (one JSON document a line)."""
    return int(published_metrics(output).get("ThrottledCalls", 0))


@pytest.fixture
def many_repositories(ecr: Any) -> list[str]:
    """3,000 cached repositories: three pages of DescribeRepositories."""
    return cached_repositories(ecr, 3000)


@pytest.mark.parametrize("operation", BACKFILL_CALLS)
def test_a_burst_of_throttles_on_one_call_slows_the_backfill_down(
    invoke: Invoke,
    response_endpoint: ResponseEndpoint,
    cache: Any,
    operation: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    faults.throttle(operation, times=BURST)

    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "3"
    assert all(found == policy() for name, found in policies(cache).items() if name.startswith("ecr-public/"))
    assert faults.count(operation) > BURST  # every throttled call was asked again until it went through
    assert throttled_calls_published(capsys.readouterr().out) == BURST


def test_a_burst_of_throttles_slows_a_delete_down(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    for name in ("library/nginx", "library/redis", "docker/library/alpine"):
        cache.put_lifecycle_policy(repositoryName=f"ecr-public/{name}", lifecyclePolicyText=POLICY)
    faults.throttle("DeleteLifecyclePolicy", times=BURST)

    answer = invoke(event(response_endpoint, "Delete", props(), physical_id="ecr-public"))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert set(policies(cache).values()) == {None}


def test_server_errors_are_tried_again_too(invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any) -> None:
    faults.fail("PutLifecyclePolicy", "ServerException", "Internal error", times=BURST)

    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "3"


def test_an_error_that_is_not_transient_still_fails(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    faults.fail("PutLifecyclePolicy", "InvalidParameterException", "Invalid parameter at 'lifecyclePolicyText'")

    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("InvalidParameterException")
    assert answer["PhysicalResourceId"] == "ecr-public"  # the template was claimed: the rollback removes it


def test_repositories_waiting_for_a_retry_are_handed_to_the_next_invocation(
    response_endpoint: ResponseEndpoint,
    cache: Any,
    one_batch_per_invocation: list[dict[str, Any]],
    fast_retries: None,
) -> None:
    for index in range(4):
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, f"ecr-public/extra/image-{index}")
    from ecr_cache_provider.aws.ecr import BATCH_WORK_ATTEMPTS as BACKFILL_ATTEMPTS

    throttles = 2 * BACKFILL_ATTEMPTS  # both repositories of the first batch, every attempt
    faults.throttle("PutLifecyclePolicy", times=throttles)

    answer, invocations = play_until_answered(
        event(response_endpoint, "Create", props()), one_batch_per_invocation, response_endpoint
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "7"  # each counted once
    assert invocations == 5  # the first batch's two went back in the queue and came first in the second invocation
    assert all(found == policy() for name, found in policies(cache).items() if name.startswith("ecr-public/"))
    assert faults.count("PutLifecyclePolicy") == throttles + 7


def test_3000_repositories_under_bursts_of_throttles(
    invoke: Invoke, response_endpoint: ResponseEndpoint, many_repositories: list[str], ecr: Any
) -> None:
    faults.throttle("DescribeRepositories", times=BURST)
    for operation in ("GetLifecyclePolicy", "PutLifecyclePolicy"):
        faults.throttle_in_bursts(operation, length=BURST, every=500)

    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "3000"
    assert faults.count("PutLifecyclePolicy") > 3000 + 5 * BURST  # a burst in every 500 calls
    assert_every_repository_has_the_policy(ecr, many_repositories)


def test_3000_repositories_under_a_sustained_rate_limit(
    invoke: Invoke,
    response_endpoint: ResponseEndpoint,
    many_repositories: list[str],
    ecr: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """100 calls a second per operation, below what the provider asks of moto in-process (about 230 a second when
    the machine is idle), and the listing at one page a second. At least 30 s: 3,000 calls of each operation.
    Each quota starts spent by other callers, so that the limit bites even when a loaded machine is slower than it."""
    faults.rate_limit("DescribeRepositories", per_second=1, already_spent=True)
    for operation in ("GetLifecyclePolicy", "PutLifecyclePolicy"):
        faults.rate_limit(operation, per_second=100, already_spent=True)

    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "3000"
    assert_every_repository_has_the_policy(ecr, many_repositories)
    throttled = throttled_calls_published(capsys.readouterr().out)
    assert throttled == sum(faults.throttled(operation) for operation in BACKFILL_CALLS)  # every one counted
    assert faults.throttled("DescribeRepositories") > 0
    assert faults.throttled("GetLifecyclePolicy") + faults.throttled("PutLifecyclePolicy") > 0  # the limit bit


def test_a_rate_limit_well_below_the_concurrency(
    invoke: Invoke,
    response_endpoint: ResponseEndpoint,
    cache: Any,
) -> None:
    """4 calls a second per operation, for 8 threads: nearly every call is throttled at first."""
    from ecr_cache_provider.engine import batches as namespace

    for index in range(9):
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, f"ecr-public/extra/image-{index}")
    for operation in BACKFILL_CALLS:
        faults.rate_limit(operation, per_second=namespace.CONCURRENCY / 2)

    answer = invoke(event(response_endpoint, "Create", props()))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["RepositoriesUpdated"] == "12"
    assert all(found == policy() for name, found in policies(cache).items() if name.startswith("ecr-public/"))
    assert sum(faults.throttled(operation) for operation in BACKFILL_CALLS) > 12  # more than one per repository


def assert_every_repository_has_the_policy(ecr: Any, names: list[str]) -> None:
    """Read from moto's backend: 3,000 GetLifecyclePolicy calls would double the test's time."""
    from moto.backends import get_backend

    repositories = get_backend("ecr")[ACCOUNT_ID][REGION].repositories
    assert [json.loads(repositories[name].lifecycle_policy or "null") for name in names] == [policy()] * len(names)
