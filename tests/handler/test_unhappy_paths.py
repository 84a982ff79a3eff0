"""CloudFormation's unhappy paths through the real handler, every resource type: what it sends when it cancels a
Create (a sibling failed first) or stops waiting for one (ServiceTimeout), and a request overtaken by a newer one.

When a Create has not answered, CloudFormation marks it CREATE_FAILED ("Resource creation cancelled") and rolls the
stack back with a Delete whose physical id it made up, since it never received one (cloudformation-coverage-roadmap
issue 1814; emulation.cloudformation.generated_physical_id). Lambda runs the requests asynchronously, so that Delete
may run while the Create still works, or even before it (issue 18, case 3)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulation import iam, moto_ecr
from emulation.cloudformation import (
    ACCOUNT_ID,
    REGION,
    STACK_ID,
    LambdaContext,
    ResponseEndpoint,
    generated_physical_id,
    make_event,
)
from emulation.scheduler import SCHEDULE_GROUP
from tests.emulation.test_moto_ecr_registry import registry_statement
from tests.handler.conftest import Invoke, batches_of, play_until_answered
from tests.unit.test_lifecycle_policy import policy

T0 = datetime.now(UTC).replace(microsecond=0)
POLICY = json.dumps(policy())
STATEMENT = registry_statement("FillsCache", "*", ["ecr:CreateRepository"], f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:*")

# Each type: its properties, and what it leaves in the account (empty once everything is gone).
TYPES: dict[str, dict[str, Any]] = {
    "Custom::PullThroughCacheRule": {"EcrRepositoryPrefix": "quay", "UpstreamRegistryUrl": "quay.io"},
    "Custom::CacheLifecyclePolicy": {"RepositoryPrefix": "ecr-public", "LifecyclePolicyText": POLICY},
    "Custom::CachedRepositorySettings": {"RepositoryPrefix": "ecr-public", "LifecyclePolicyText": POLICY},
    "Custom::CacheImageExpiry": {"RepositoryPrefix": "ecr-public", "ExpireAfterDaysWithoutPull": "30"},
    "Custom::RegistryPolicyStatements": {"Statements": [STATEMENT]},
    "Custom::RegistryScanningFilters": {
        "ScanFrequency": "SCAN_ON_PUSH",
        "Filters": ["ecr-public/*"],
        "AllowEnhancedScanning": "true",
    },
}


@pytest.fixture
def cache(ecr: Any) -> Any:
    """An ECR Public cache (the rule is someone else's: no stack's) with three cached repositories."""
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
    for name in ("library/nginx", "library/redis", "library/alpine"):
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, f"ecr-public/{name}")
    return ecr


def made(ecr: Any) -> dict[str, Any]:
    """What the provider's types make, as the account shows it (the cache fixture's own rule left out)."""
    rules = [rule["ecrRepositoryPrefix"] for rule in ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]]
    policies = {}
    for repository in ecr.describe_repositories()["repositories"]:
        name = repository["repositoryName"]
        with contextlib.suppress(ecr.exceptions.LifecyclePolicyNotFoundException):
            policies[name] = ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
    try:
        statements = json.loads(ecr.get_registry_policy()["policyText"])["Statement"]
    except ecr.exceptions.RegistryPolicyNotFoundException:
        statements = []
    scanning = ecr.get_registry_scanning_configuration()["scanningConfiguration"].get("rules", [])
    schedules = iam.admin_client("scheduler").list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"]
    claims = iam.admin_client("dynamodb").scan(TableName="ecr-pull-through-cache-ownership", ConsistentRead=True)[
        "Items"
    ]
    return {
        "rules": [prefix for prefix in rules if prefix != "ecr-public"],
        "templates": ecr.describe_repository_creation_templates()["repositoryCreationTemplates"],
        "lifecycle policies": policies,
        "registry statements": statements,
        "scanning rules": scanning,
        "schedules": schedules,
        "claims": [item["Id"]["S"] for item in claims if not item["Id"]["S"].startswith("resource/")],
    }


NOTHING: dict[str, Any] = {
    "rules": [],
    "templates": [],
    "lifecycle policies": {},
    "registry statements": [],
    "scanning rules": [],
    "schedules": [],
    "claims": [],
}


def request(
    endpoint: ResponseEndpoint, request_type: str, resource_type: str, issued: datetime, **options: Any
) -> dict[str, Any]:
    return make_event(
        endpoint, request_type, TYPES[resource_type], resource_type=resource_type, issued=issued, **options
    )


@pytest.mark.parametrize("resource_type", TYPES)
def test_the_delete_of_a_cancelled_create_removes_what_the_create_made(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any, resource_type: str
) -> None:
    """The Create finished after CloudFormation had cancelled it: CloudFormation never reads that answer, and its
    rollback's Delete carries an id of its own. Whatever the Create made is found by owner in the ledger."""
    created = invoke(request(response_endpoint, "Create", resource_type, T0))
    assert created["Status"] == "SUCCESS", created["Reason"]
    assert made(cache) != NOTHING

    physical_id = generated_physical_id(STACK_ID, "CacheRule")
    rollback = invoke(
        request(response_endpoint, "Delete", resource_type, T0 + timedelta(seconds=2), physical_id=physical_id)
    )

    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert rollback["PhysicalResourceId"] == physical_id
    assert made(cache) == NOTHING


@pytest.mark.parametrize("resource_type", TYPES)
def test_a_create_its_rollback_overtook_makes_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any, resource_type: str
) -> None:
    """Lambda ran the rollback's Delete first: the Create, issued earlier, finds a newer request of its resource
    and changes nothing (its answer, FAILED, is one CloudFormation no longer waits for)."""
    physical_id = generated_physical_id(STACK_ID, "CacheRule")
    rollback = invoke(
        request(response_endpoint, "Delete", resource_type, T0 + timedelta(seconds=2), physical_id=physical_id)
    )

    late = invoke(request(response_endpoint, "Create", resource_type, T0))

    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert late["Status"] == "FAILED"
    assert "came first" in late["Reason"]
    assert made(cache) == NOTHING


RACES: dict[str, tuple[str, str]] = {
    # the call that makes the thing, where the Delete comes in between the claim and the making
    "Custom::PullThroughCacheRule": ("ecr_cache_provider.aws.ecr.EcrGateway", "create_rule"),
    "Custom::CacheImageExpiry": ("ecr_cache_provider.aws.scheduler.SchedulerGateway", "put"),
    "Custom::RegistryPolicyStatements": ("ecr_cache_provider.aws.ecr.EcrGateway", "put_registry_policy"),
}


@pytest.mark.parametrize("resource_type", RACES)
def test_a_create_that_a_delete_overtakes_while_it_works_undoes_what_it_made(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any, resource_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollback's Delete runs between the Create's claim and the making of the thing: the Delete found the
    claim but nothing to delete yet. The Create, finding a newer request after making it, removes it again."""
    import importlib

    from ecr_cache_provider.aws.ledger import Ledger, Owner
    from ecr_cache_provider.deadline import Deadline

    module, name = RACES[resource_type][0].rsplit(".", 1), RACES[resource_type][1]
    gateway = getattr(importlib.import_module(module[0]), module[1])
    make = getattr(gateway, name)
    overtaken: list[bool] = []

    def a_delete_comes_in_first(self: Any, *arguments: Any, **options: Any) -> Any:
        if not overtaken:  # the rollback's Delete takes the resource over (its first step) and finds nothing yet
            overtaken.append(True)
            ledger = Ledger(Deadline.from_context(LambdaContext()))
            rollback = Owner(STACK_ID, "CacheRule", "the-rollback", resource_type)
            ledger.begin(rollback, "Delete", T0 + timedelta(seconds=2))
        return make(self, *arguments, **options)

    monkeypatch.setattr(gateway, name, a_delete_comes_in_first)

    answer = invoke(request(response_endpoint, "Create", resource_type, T0))

    assert answer["Status"] == "FAILED"
    assert "took over" in answer["Reason"]
    assert overtaken == [True]
    assert made(cache) == NOTHING  # made, then removed again


# A rename (a new RepositoryPrefix: a new physical id) that fails or is cancelled (issue 18, cases 4 and 5)

NEW_POLICY = json.dumps(policy(days=7, keep=20))
LIFECYCLE = "Custom::CacheLifecyclePolicy"


def lifecycle(prefix: str, text: str = POLICY) -> dict[str, Any]:
    return {"RepositoryPrefix": prefix, "LifecyclePolicyText": text}


@pytest.fixture
def two_caches(cache: Any) -> Any:
    """The ECR Public cache, and a Quay cache with three repositories: where the rename goes."""
    cache.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    for name in ("prometheus/prometheus", "coreos/etcd", "jetstack/cert-manager"):
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, f"quay/{name}")
    return cache


def lifecycle_event(endpoint: ResponseEndpoint, request_type: str, issued: datetime, **options: Any) -> dict[str, Any]:
    properties = options.pop("properties")
    return make_event(endpoint, request_type, properties, resource_type=LIFECYCLE, issued=issued, **options)


def quay_state(ecr: Any) -> tuple[list[str], list[Any]]:
    templates = [item["prefix"] for item in ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]]
    policies = [
        made(ecr)["lifecycle policies"].get(f"quay/{name}") for name in ("prometheus/prometheus", "coreos/etcd")
    ]
    return templates, policies


def rename_and_rollback(endpoint: ResponseEndpoint) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rename from ecr-public to quay, and the Update that rolls it back (the rename's properties as its old)."""
    rename = lifecycle_event(
        endpoint,
        "Update",
        T0 + timedelta(seconds=5),
        properties=lifecycle("quay", NEW_POLICY),
        physical_id="ecr-public",
        old_properties=lifecycle("ecr-public"),
    )
    rollback = lifecycle_event(
        endpoint,
        "Update",
        T0 + timedelta(seconds=9),
        properties=lifecycle("ecr-public"),
        physical_id="ecr-public",
        old_properties=lifecycle("quay", NEW_POLICY),
    )
    return rename, rollback


def ecr_public_policies_only(ecr: Any) -> None:
    """Nothing left under quay; the ECR Public repositories carry the Create's policy."""
    assert quay_state(ecr) == (["ecr-public"], [None, None])
    policies = {name: json.loads(text) for name, text in made(ecr)["lifecycle policies"].items()}
    assert policies == {f"ecr-public/library/{name}": policy() for name in ("alpine", "nginx", "redis")}


def takes_over(event: dict[str, Any], issued: datetime) -> None:
    """The request's first step, as the provider takes it: it becomes the resource's current one in the ledger."""
    from ecr_cache_provider.aws.ledger import Ledger, Owner
    from ecr_cache_provider.deadline import Deadline

    owner = Owner(STACK_ID, event["LogicalResourceId"], event["RequestId"], event["ResourceType"])
    Ledger(Deadline.from_context(LambdaContext())).begin(owner, event["RequestType"], issued)


def test_a_rename_that_fails_undoes_what_it_made_before_answering(
    invoke: Invoke, response_endpoint: ResponseEndpoint, two_caches: Any
) -> None:
    """Issue 18, case 5: the failed Update answers the old physical id, so CloudFormation never deletes the new one:
    the new namespace's template (which would give every repository cached there the policy) and the policies put
    there must go before the answer."""
    from emulation.moto_ecr import faults

    invoke(lifecycle_event(response_endpoint, "Create", T0, properties=lifecycle("ecr-public")))
    faults.fail("PutLifecyclePolicy", "InvalidParameterException", "refused", times=1000)

    failed = invoke(
        lifecycle_event(
            response_endpoint,
            "Update",
            T0 + timedelta(seconds=5),
            properties=lifecycle("quay"),
            physical_id="ecr-public",
            old_properties=lifecycle("ecr-public"),
        )
    )

    assert failed["Status"] == "FAILED"
    assert failed["PhysicalResourceId"] == "ecr-public"
    assert quay_state(two_caches) == (["ecr-public"], [None, None])


def test_the_rollback_of_a_cancelled_rename_removes_what_it_made_and_its_chain_stops(
    invoke: Invoke,
    response_endpoint: ResponseEndpoint,
    two_caches: Any,
    monkeypatch: pytest.MonkeyPatch,
    handed: list[dict[str, Any]],
) -> None:
    """The rename's backfill continues in follow-up invocations when a sibling fails: CloudFormation cancels the
    Update (it never answered) and rolls back with an Update to the old properties, whose old properties are the
    rename's, to the old physical id. That rollback removes what the rename made; the rename's follow-up, which
    Lambda runs later, finds a newer request and changes nothing (issue 18, case 4: before, it went on putting the
    policy the rollback had just taken away)."""
    from ecr_cache_provider import handler

    invoke(lifecycle_event(response_endpoint, "Create", T0, properties=lifecycle("ecr-public")))
    batches_of(1, monkeypatch)
    rename, rollback = rename_and_rollback(response_endpoint)
    handler.lambda_handler(rename, LambdaContext())  # one repository, then hands on: no answer yet
    assert response_endpoint.answers(rename["RequestId"]) == []
    assert quay_state(two_caches)[0] == ["ecr-public", "quay"]

    cancelled_follow_up = handed.pop()
    answer, _ = play_until_answered(rollback, handed, response_endpoint)
    handler.lambda_handler(cancelled_follow_up, LambdaContext())  # the cancelled rename's follow-up runs at last

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "ecr-public"
    assert handed == []  # the cancelled rename's follow-up stopped: it handed nothing on
    ecr_public_policies_only(two_caches)


def test_a_rename_that_finds_the_rollback_after_a_batch_leaves_the_rest_to_it(
    invoke: Invoke,
    response_endpoint: ResponseEndpoint,
    two_caches: Any,
    monkeypatch: pytest.MonkeyPatch,
    handed: list[dict[str, Any]],
) -> None:
    """The rollback takes over while the rename's follow-up works on a batch: the rename finds it when it checks
    after the batch, undoes that batch and stops. It must not also undo the rename as a failed one would (whose
    rollback finds what it made by the records): those records are the rollback's to drain, and a rename that
    drained them and then, finding itself overtaken, put its batch back would leave policies no record names."""
    from ecr_cache_provider import handler
    from ecr_cache_provider.engine.recorded_settings import RecordedBatch

    invoke(lifecycle_event(response_endpoint, "Create", T0, properties=lifecycle("ecr-public")))
    batches_of(1, monkeypatch)
    rename, rollback = rename_and_rollback(response_endpoint)
    handler.lambda_handler(rename, LambdaContext())  # quay/coreos/etcd, then hands on
    run = RecordedBatch.run
    taken_over: list[bool] = []

    def the_rollback_begins_meanwhile(self: RecordedBatch, batch: list[str], workers: Any) -> Any:
        outcomes = run(self, batch, workers)
        if not taken_over:  # the rollback's first step, while this batch ran
            taken_over.append(True)
            takes_over(rollback, T0 + timedelta(seconds=9))
        return outcomes

    monkeypatch.setattr(RecordedBatch, "run", the_rollback_begins_meanwhile)
    handler.lambda_handler(handed.pop(), LambdaContext())  # quay/jetstack/cert-manager, then finds the rollback
    monkeypatch.setattr(RecordedBatch, "run", run)
    stopped = response_endpoint.wait_for(rename["RequestId"])
    answer, _ = play_until_answered(rollback, handed, response_endpoint)

    assert taken_over == [True]
    assert stopped["Status"] == "FAILED"
    assert "took over" in stopped["Reason"]
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    ecr_public_policies_only(two_caches)


@pytest.mark.consumer_namespaces("ROOT")  # a ROOT template reaches every repository
def test_an_update_overtaken_while_it_hands_a_repository_back_keeps_the_record(
    invoke: Invoke,
    response_endpoint: ResponseEndpoint,
    two_caches: Any,
    monkeypatch: pytest.MonkeyPatch,
    handed: list[dict[str, Any]],
) -> None:
    """An Update narrows the backfill to ecr-public and takes its policy off quay/coreos/etcd. Before it drops the
    record, its rollback takes over and, having read that record, puts the policy back without writing the record
    again (it still says what the resource sets). The Update, finding the rollback after its batch, must put the
    record back as it found it: otherwise the policy stays with no record naming it, and the Delete leaves it."""
    from ecr_cache_provider import handler
    from ecr_cache_provider.aws.ledger import Ledger, Owner

    both = {**lifecycle("ROOT"), "ExistingRepositoryPrefixes": ["ecr-public", "quay"]}
    narrowed = {**both, "ExistingRepositoryPrefixes": ["ecr-public"]}
    invoke(lifecycle_event(response_endpoint, "Create", T0, properties=both))
    batches_of(1, monkeypatch)
    update = lifecycle_event(response_endpoint, "Update", T0 + timedelta(seconds=5), properties=narrowed,
                             physical_id="ROOT", old_properties=both)  # fmt: skip
    rollback = lifecycle_event(response_endpoint, "Update", T0 + timedelta(seconds=9), properties=both,
                               physical_id="ROOT", old_properties=narrowed)  # fmt: skip
    drop = Ledger.drop_settings_records
    taken_over: list[str] = []

    def the_rollback_comes_first(self: Ledger, owner: Owner, repositories: Any) -> None:
        names = list(repositories)
        if not taken_over and names:
            taken_over.extend(names)
            takes_over(rollback, T0 + timedelta(seconds=9))
            for name in names:  # the rollback's backfill: the record read, the policy put back
                two_caches.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=POLICY)
        drop(self, owner, names)

    monkeypatch.setattr(Ledger, "drop_settings_records", the_rollback_comes_first)
    handler.lambda_handler(update, LambdaContext())
    while not taken_over:
        handler.lambda_handler(handed.pop(), LambdaContext())
    monkeypatch.setattr(Ledger, "drop_settings_records", drop)
    stopped = response_endpoint.wait_for(update["RequestId"])
    answer, _ = play_until_answered(rollback, handed, response_endpoint)
    delete = lifecycle_event(response_endpoint, "Delete", T0 + timedelta(seconds=20), properties=both,
                             physical_id="ROOT")  # fmt: skip
    deleted, _ = play_until_answered(delete, handed, response_endpoint)

    assert taken_over == ["quay/coreos/etcd"]
    assert "took over" in stopped["Reason"]
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    assert made(two_caches)["lifecycle policies"] == {}  # the Delete found every policy the resource set


def test_the_rollback_of_a_rename_that_answered_too_late_removes_the_new_rule(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    """The rename answered after its ServiceTimeout: CloudFormation had already failed the Update and rolls back to
    the old physical id with the rename's properties as the old ones. The rule the rename made must go: nothing
    else will ever delete it."""
    quay = {"EcrRepositoryPrefix": "quay", "UpstreamRegistryUrl": "quay.io"}
    renamed = {**quay, "EcrRepositoryPrefix": "quay-io"}
    rule_type = "Custom::PullThroughCacheRule"
    invoke(make_event(response_endpoint, "Create", quay, resource_type=rule_type, issued=T0))
    late = invoke(
        make_event(
            response_endpoint,
            "Update",
            renamed,
            resource_type=rule_type,
            physical_id="quay",
            old_properties=quay,
            issued=T0 + timedelta(seconds=5),
        )
    )
    rollback = invoke(
        make_event(
            response_endpoint,
            "Update",
            quay,
            resource_type=rule_type,
            physical_id="quay",
            old_properties=renamed,
            issued=T0 + timedelta(seconds=700),
        )
    )

    assert late["PhysicalResourceId"] == "quay-io"  # the answer CloudFormation no longer read
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert rollback["PhysicalResourceId"] == "quay"
    assert made(ecr)["rules"] == ["quay"]
    assert made(ecr)["claims"] == ["pull-through cache rule/quay"]
