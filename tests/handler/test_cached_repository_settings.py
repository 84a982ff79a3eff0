"""Custom::CachedRepositorySettings through the real handler: every setting on the template and on the existing
repositories, what was there before (ours, none, someone else's) per setting, Update and Delete removing only what
is still ours, and the replacement of a Custom::CacheLifecyclePolicy (take-over, and its rollback)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulation import iam, moto_ecr
from emulation.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint, load_event, make_event
from emulation.moto_ecr import faults
from tests.handler.conftest import Invoke
from tests.handler.test_cache_lifecycle_policy import BURST, throttled_calls_published
from tests.unit.test_lifecycle_policy import policy

TYPE = "Custom::CachedRepositorySettings"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/ecr-template"
CACHED = ("ecr-public/library/nginx", "ecr-public/library/redis", "ecr-public/docker/library/alpine")
ORGANIZATION_PULLS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "OrganizationPulls",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}},
        }
    ],
}
FOREIGN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Theirs", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "ecr:BatchGetImage"}],
}


def props(**settings: Any) -> dict[str, Any]:
    return {"RepositoryPrefix": "ecr-public", **settings}


def every_setting() -> dict[str, Any]:
    return props(
        LifecyclePolicyText=json.dumps(policy()),
        RepositoryPolicyText=ORGANIZATION_PULLS,
        ResourceTags=[{"Key": "cache", "Value": "ecr-public"}, {"Key": "team", "Value": "platform"}],
        ImageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        ImageTagMutabilityExclusionFilters=["latest", "dev-*"],
        EncryptionConfiguration={"EncryptionType": "KMS"},
        CustomRoleArn=ROLE,
    )


@pytest.fixture
def cache(ecr: Any) -> Any:
    """An ECR Public cache rule with three cached repositories, neighbours outside its namespace, and the role
    a template with tags or KMS encryption needs."""
    boto_iam().create_role(RoleName="ecr-template", AssumeRolePolicyDocument="{}")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
    for name in CACHED:
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, name)
    ecr.create_repository(repositoryName="ecr-publicx/app")
    ecr.create_repository(repositoryName="team/app")
    return ecr


def boto_iam() -> Any:

    return iam.admin_client("iam")


def settings_of(ecr: Any, name: str) -> dict[str, Any]:
    """What a repository carries of the settings this type manages."""
    repository = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    found: dict[str, Any] = {
        "mutability": (
            repository["imageTagMutability"],
            [item["filter"] for item in repository.get("imageTagMutabilityExclusionFilters", [])],
        ),
        "tags": {
            tag["Key"]: tag["Value"]
            for tag in ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]
        },
    }
    for key, read, missing, field in (
        ("lifecycle", ecr.get_lifecycle_policy, ecr.exceptions.LifecyclePolicyNotFoundException, "lifecyclePolicyText"),
        ("policy", ecr.get_repository_policy, ecr.exceptions.RepositoryPolicyNotFoundException, "policyText"),
    ):
        try:
            found[key] = json.loads(read(repositoryName=name)[field])
        except missing:
            found[key] = None
    return found


NOTHING: dict[str, Any] = {"mutability": ("MUTABLE", []), "tags": {}, "lifecycle": None, "policy": None}
EVERYTHING: dict[str, Any] = {
    "mutability": ("IMMUTABLE_WITH_EXCLUSION", ["latest", "dev-*"]),
    "tags": {"cache": "ecr-public", "team": "platform"},
    "lifecycle": policy(),
    "policy": ORGANIZATION_PULLS,
}


def someone_elses_settings(ecr: Any, mutability: str = "", tags: tuple[str, ...] = ("team", "owner")) -> str:
    """Settings someone else put on ecr-public/library/redis: a repository policy, tags (data's value for `tags`)
    and, when given, a tag mutability. The repository's name."""
    redis = "ecr-public/library/redis"
    arn = ecr.describe_repositories(repositoryNames=[redis])["repositories"][0]["repositoryArn"]
    ecr.set_repository_policy(repositoryName=redis, policyText=json.dumps(FOREIGN_POLICY))
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": key, "Value": "data"} for key in tags])
    if mutability:
        ecr.put_image_tag_mutability(repositoryName=redis, imageTagMutability=mutability)
    return redis


def event(
    endpoint: ResponseEndpoint, request_type: str, properties: dict[str, Any], logical_id: str = "Settings", **kw: Any
) -> dict[str, Any]:
    return make_event(endpoint, request_type, properties, resource_type=TYPE, logical_id=logical_id, **kw)


def template(ecr: Any, prefix: str = "ecr-public") -> dict[str, Any] | None:
    found = ecr.describe_repository_creation_templates(prefixes=[prefix])["repositoryCreationTemplates"]
    return found[0] if found else None


# Create


def test_create_puts_every_setting_on_the_namespace_and_in_the_template(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    answer = invoke(event(response_endpoint, "Create", every_setting()))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "ecr-public"
    assert answer["Data"] == {
        "RepositoryPrefix": "ecr-public",
        "RepositoriesUpdated": "3",
        "RepositoriesSkipped": "0",
        "ExistingRepositoriesLeftAlone": "false",
        "ExistingRepositoriesWithOtherEncryption": "3",  # cached before, with AES256: ECR cannot change that
    }
    for name in CACHED:
        assert settings_of(cache, name) == EVERYTHING
    assert settings_of(cache, "ecr-publicx/app") == NOTHING
    assert settings_of(cache, "team/app") == NOTHING
    made = template(cache)
    assert made is not None
    assert json.loads(made["repositoryPolicy"]) == ORGANIZATION_PULLS
    assert json.loads(made["lifecyclePolicy"]) == policy()
    assert made["resourceTags"] == [{"Key": "cache", "Value": "ecr-public"}, {"Key": "team", "Value": "platform"}]
    assert made["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert made["encryptionConfiguration"] == {"encryptionType": "KMS"}
    assert made["customRoleArn"] == ROLE
    assert made["description"].startswith("Settings for cached repositories, managed by Settings in stack")


def test_a_repository_cached_later_gets_every_setting_from_the_template(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(event(response_endpoint, "Create", every_setting()))

    moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, "ecr-public/library/postgres")

    assert settings_of(cache, "ecr-public/library/postgres") == EVERYTHING
    encryption = cache.describe_repositories(repositoryNames=["ecr-public/library/postgres"])["repositories"][0]
    assert encryption["encryptionConfiguration"]["encryptionType"] == "KMS"


def test_someone_elses_settings_are_left_alone_setting_by_setting(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    redis = someone_elses_settings(cache, mutability="IMMUTABLE")

    answer = invoke(event(response_endpoint, "Create", every_setting()))

    assert answer["Data"]["RepositoriesUpdated"] == "2"
    assert answer["Data"]["RepositoriesSkipped"] == "1"
    assert settings_of(cache, redis) == {
        "mutability": ("IMMUTABLE", []),  # theirs
        "tags": {"cache": "ecr-public", "team": "data", "owner": "data"},  # our free key added; theirs kept
        "lifecycle": policy(),  # it had none: ours now
        "policy": FOREIGN_POLICY,  # theirs
    }


def test_overwrite_existing_settings_replaces_someone_elses(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    redis = someone_elses_settings(cache)

    answer = invoke(event(response_endpoint, "Create", every_setting() | {"OverwriteExistingSettings": "true"}))

    assert answer["Data"]["RepositoriesUpdated"] == "3"
    assert settings_of(cache, redis) == EVERYTHING | {"tags": EVERYTHING["tags"] | {"owner": "data"}}


@pytest.mark.consumer_namespaces("ROOT")  # a ROOT template reaches every repository
def test_root_leaves_existing_repositories_alone_by_default(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    answer = invoke(
        event(response_endpoint, "Create", {"RepositoryPrefix": "ROOT", "RepositoryPolicyText": ORGANIZATION_PULLS})
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["ExistingRepositoriesLeftAlone"] == "true"
    assert all(settings_of(cache, name) == NOTHING for name in (*CACHED, "team/app"))


# Update and Delete


def test_update_removes_a_dropped_setting_where_still_ours_and_moves_tags(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    old = every_setting()
    invoke(event(response_endpoint, "Create", old))
    redis = someone_elses_settings(cache, tags=("team",))  # since our Create
    new = {key: value for key, value in old.items() if key != "RepositoryPolicyText"}
    new["ResourceTags"] = [{"Key": "cache", "Value": "public"}]

    answer = invoke(event(response_endpoint, "Update", new, physical_id="ecr-public", old_properties=old))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert settings_of(cache, "ecr-public/library/nginx") == EVERYTHING | {"policy": None, "tags": {"cache": "public"}}
    assert settings_of(cache, redis) == EVERYTHING | {
        "policy": FOREIGN_POLICY,
        "tags": {"cache": "public", "team": "data"},
    }
    made = template(cache)
    assert made is not None
    assert "repositoryPolicy" not in made
    assert made["resourceTags"] == [{"Key": "cache", "Value": "public"}]


def test_delete_removes_only_what_is_still_ours(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(event(response_endpoint, "Create", every_setting()))
    redis = someone_elses_settings(cache, mutability="IMMUTABLE", tags=("team",))  # since our Create

    answer = invoke(event(response_endpoint, "Delete", every_setting(), physical_id="ecr-public"))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert template(cache) is None
    assert settings_of(cache, "ecr-public/library/nginx") == NOTHING
    assert settings_of(cache, redis) == NOTHING | {
        "policy": FOREIGN_POLICY,
        "tags": {"team": "data"},
        "mutability": ("IMMUTABLE", []),
    }
    again = invoke(event(response_endpoint, "Delete", every_setting(), physical_id="ecr-public"))
    assert again["Status"] == "SUCCESS", again["Reason"]


def root_settings(**extra: Any) -> dict[str, Any]:
    """A ROOT resource backfilling only ecr-public, with settings an application repository may carry too (and no
    creation template: a ROOT one would reach every repository cached later, a namespace this test stack's provider
    does not manage)."""
    return {
        "RepositoryPrefix": "ROOT",
        "ExistingRepositoryPrefixes": ["ecr-public"],
        "ApplyToNewRepositories": "false",
        "LifecyclePolicyText": json.dumps(policy()),
        "ResourceTags": [{"Key": "cost-center", "Value": "platform"}],
        "CustomRoleArn": ROLE,
        "ImageTagMutability": "IMMUTABLE",
        **extra,
    }


APPLICATION: dict[
    str, Any
] = {  # team/app: the company's standard lifecycle policy and cost-center tag, and immutable tags
    "mutability": ("IMMUTABLE", []),
    "tags": {"cost-center": "platform"},
    "lifecycle": policy(),
    "policy": None,
}


def application_repository(ecr: Any) -> None:
    ecr.put_lifecycle_policy(repositoryName="team/app", lifecyclePolicyText=json.dumps(policy()))
    arn = ecr.describe_repositories(repositoryNames=["team/app"])["repositories"][0]["repositoryArn"]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "cost-center", "Value": "platform"}])
    ecr.put_image_tag_mutability(repositoryName="team/app", imageTagMutability="IMMUTABLE")


def test_deleting_a_root_resource_touches_only_the_repositories_it_changed(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    """Issue 18, case 1: an application repository carrying the same values (the company's standard lifecycle
    policy, a common tag, immutable tags) was stripped by the Delete of a ROOT resource, which then walked every
    repository and removed each value equal to its own. Only what the ledger records the resource changed is put
    back."""
    application_repository(cache)

    created = invoke(event(response_endpoint, "Create", root_settings()))
    deleted = invoke(event(response_endpoint, "Delete", root_settings(), physical_id="ROOT"))

    assert created["Status"] == deleted["Status"] == "SUCCESS", (created, deleted)
    assert created["Data"]["RepositoriesUpdated"] == "3"
    assert settings_of(cache, "team/app") == APPLICATION
    assert all(settings_of(cache, name) == NOTHING for name in CACHED)  # put back as they were


def test_the_rollback_of_a_failed_root_create_touches_no_application_repository(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    application_repository(cache)
    faults.fail("PutImageTagMutability", "ServerException", times=1000, status=400)  # fails the backfill

    failed = invoke(event(response_endpoint, "Create", root_settings()))
    rollback = invoke(event(response_endpoint, "Delete", root_settings(), physical_id=failed["PhysicalResourceId"]))

    assert failed["Status"] == "FAILED"
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert settings_of(cache, "team/app") == APPLICATION
    assert all(settings_of(cache, name) == NOTHING for name in CACHED)
    assert template(cache, "ROOT") is None


def test_an_update_that_leaves_the_existing_repositories_out_puts_back_what_it_changed_there(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    """ApplyToExistingRepositories set to false (or a prefix dropped from ExistingRepositoryPrefixes): the
    repositories left out of scope get back what they had, where they still carry ours; the template keeps the
    settings for repositories cached from then on."""
    redis = someone_elses_settings(cache)  # its policy and tags are someone else's, and stay
    before = settings_of(cache, redis)
    settings = props(LifecyclePolicyText=json.dumps(policy()), ResourceTags=[{"Key": "cache", "Value": "ecr-public"}],
                     CustomRoleArn=ROLE)  # fmt: skip
    created = invoke(event(response_endpoint, "Create", settings))
    assert settings_of(cache, "ecr-public/library/nginx")["lifecycle"] == policy()

    narrowed = invoke(
        event(
            response_endpoint,
            "Update",
            {**settings, "ApplyToExistingRepositories": "false"},
            physical_id=created["PhysicalResourceId"],
            old_properties=settings,
        )
    )

    assert narrowed["Status"] == "SUCCESS", narrowed["Reason"]
    assert all(settings_of(cache, name) == NOTHING for name in CACHED if name != redis)
    assert settings_of(cache, redis) == before
    assert template(cache) is not None


# Bad input


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({}, "No setting given"),
        ({"RepositoryPolicyText": "{not json"}, "RepositoryPolicyText is not valid JSON"),
        (
            {"RepositoryPolicyText": {"Statement": [{"Effect": "Allow", "Action": "ecr:BatchGetImage"}]}},
            "needs exactly one of Principal and NotPrincipal",
        ),
        (
            {"RepositoryPolicyText": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:PullImage"}]}},
            "ECR has no action 'ecr:PullImage'",
        ),
        (
            {"RepositoryPolicyText": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}},
            "'s3:GetObject' is not an ECR action",
        ),
        ({"ImageTagMutability": "IMMUTABLE", "ImageTagMutabilityExclusionFilters": ["latest"]}, "go with, and only"),
        ({"ImageTagMutability": "MUTABLE_WITH_EXCLUSION"}, "go with, and only"),
        ({"ResourceTags": [{"Key": "team", "Value": "platform"}]}, "need CustomRoleArn"),
        (
            {"ResourceTags": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}], "CustomRoleArn": ROLE},
            "key 'a' is given more than once",
        ),
        ({"EncryptionConfiguration": {"EncryptionType": "AES256", "KmsKey": "key"}}, "KmsKey goes only with"),
        (
            {"LifecyclePolicyText": json.dumps(policy()), "TakeOverFrom": "Old", "ApplyToNewRepositories": "false"},
            "TakeOverFrom takes over a creation template",
        ),
    ],
)
def test_bad_input_fails_and_changes_nothing(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any, settings: dict[str, Any], reason: str
) -> None:
    answer = invoke(event(response_endpoint, "Create", props(**settings)))

    assert answer["Status"] == "FAILED"
    assert reason in answer["Reason"]
    assert template(cache) is None
    assert all(settings_of(cache, name) == NOTHING for name in CACHED)


# Replacing a Custom::CacheLifecyclePolicy


def lifecycle_event(endpoint: ResponseEndpoint, request_type: str, **kw: Any) -> dict[str, Any]:
    properties = {"RepositoryPrefix": "ecr-public", "LifecyclePolicyText": json.dumps(policy())}
    return make_event(
        endpoint, request_type, properties, resource_type="Custom::CacheLifecyclePolicy", logical_id="Lifecycle", **kw
    )


def successor() -> dict[str, Any]:
    return props(
        LifecyclePolicyText=json.dumps(policy()), RepositoryPolicyText=ORGANIZATION_PULLS, TakeOverFrom="Lifecycle"
    )


def test_a_successor_takes_over_and_the_predecessors_delete_leaves_everything_to_it(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    assert invoke(lifecycle_event(response_endpoint, "Create"))["Status"] == "SUCCESS"

    created = invoke(event(response_endpoint, "Create", successor()))
    deleted = invoke(lifecycle_event(response_endpoint, "Delete", physical_id="ecr-public"))
    repeated = invoke(lifecycle_event(response_endpoint, "Delete", physical_id="ecr-public"))

    assert created["Status"] == "SUCCESS", created["Reason"]
    assert created["Data"]["RepositoriesUpdated"] == "3"  # the policy, added; the lifecycle policy was ours already
    assert deleted["Status"] == repeated["Status"] == "SUCCESS"
    made = template(cache)
    assert made is not None
    assert json.loads(made["repositoryPolicy"]) == ORGANIZATION_PULLS
    assert all(
        settings_of(cache, name) == NOTHING | {"lifecycle": policy(), "policy": ORGANIZATION_PULLS} for name in CACHED
    )
    # The successor owns it all now: its Delete removes everything.
    assert invoke(event(response_endpoint, "Delete", successor(), physical_id="ecr-public"))["Status"] == "SUCCESS"
    assert template(cache) is None
    assert all(settings_of(cache, name) == NOTHING for name in CACHED)


def test_without_take_over_a_second_owner_is_refused(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(lifecycle_event(response_endpoint, "Create"))
    properties = {key: value for key, value in successor().items() if key != "TakeOverFrom"}

    answer = invoke(event(response_endpoint, "Create", properties))

    assert answer["Status"] == "FAILED"
    assert "belongs to Lifecycle in stack" in answer["Reason"]


def test_a_rolled_back_take_over_hands_everything_back(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(lifecycle_event(response_endpoint, "Create"))
    before = template(cache)
    invoke(event(response_endpoint, "Create", successor()))

    rolled_back = invoke(event(response_endpoint, "Delete", successor(), physical_id="ecr-public"))

    assert rolled_back["Status"] == "SUCCESS", rolled_back["Reason"]
    after = template(cache)
    assert before is not None
    assert after is not None
    assert (after["description"], after.get("repositoryPolicy")) == (before["description"], None)
    assert all(settings_of(cache, name) == NOTHING | {"lifecycle": policy()} for name in CACHED)
    # The predecessor owns them again: its own Delete removes them.
    assert invoke(lifecycle_event(response_endpoint, "Delete", physical_id="ecr-public"))["Status"] == "SUCCESS"
    assert template(cache) is None
    assert all(settings_of(cache, name) == NOTHING for name in CACHED)


def test_the_example_events_play(invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any) -> None:
    """events/cached-repository-settings-*.json, as a developer replays them (`make invoke EVENT=...`)."""
    created = invoke(load_event(response_endpoint, "cached-repository-settings-create.json"))
    assert created["Status"] == "SUCCESS", created["Reason"]
    # The events' namespace, ecr-public/docker (not the default stack's ecr-public, which its own settings hold).
    assert settings_of(cache, "ecr-public/docker/library/alpine")["policy"] is not None
    assert all(settings_of(cache, name) == NOTHING for name in CACHED if not name.startswith("ecr-public/docker/"))

    deleted = invoke(load_event(response_endpoint, "cached-repository-settings-delete.json"))
    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    assert all(settings_of(cache, name) == NOTHING for name in CACHED)
    assert template(cache) is None


def test_a_take_over_whose_template_write_fails_leaves_the_predecessor_owner(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    invoke(lifecycle_event(response_endpoint, "Create"))
    faults.fail("UpdateRepositoryCreationTemplate", code="InvalidParameterException")

    failed = invoke(event(response_endpoint, "Create", successor()))
    rollback = invoke(event(response_endpoint, "Delete", successor(), physical_id=failed["PhysicalResourceId"]))

    assert failed["Status"] == "FAILED"
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    # The predecessor still owns everything: its own Delete removes it.
    assert invoke(lifecycle_event(response_endpoint, "Delete", physical_id="ecr-public"))["Status"] == "SUCCESS"
    assert template(cache) is None
    assert all(settings_of(cache, name) == NOTHING for name in CACHED)


def test_a_failure_after_the_template_is_written_leaves_it_to_the_rollback(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger fails while the Create reads what its predecessor had in place, after the template was made: the
    failure names the prefix, so that the rollback's Delete removes the template and its claim."""
    from ecr_cache_provider.engine.template_claim import TemplateClaim
    from ecr_cache_provider.failures import ResourceFailure

    def ledger_down(*_: Any, **__: Any) -> Any:
        raise ResourceFailure("ProvisionedThroughputExceededException: the ledger is busy")

    monkeypatch.setattr(TemplateClaim, "take_over", property(ledger_down))
    failed = invoke(
        event(response_endpoint, "Create", props(LifecyclePolicyText=json.dumps(policy()), TakeOverFrom="Old"))
    )
    monkeypatch.undo()

    assert failed["Status"] == "FAILED"
    assert "ledger is busy" in failed["Reason"]
    assert failed["PhysicalResourceId"] == "ecr-public"
    assert template(cache) is not None
    rollback = invoke(event(response_endpoint, "Delete", props(), physical_id=failed["PhysicalResourceId"]))
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert template(cache) is None
    again = invoke(event(response_endpoint, "Create", props(LifecyclePolicyText=json.dumps(policy()))))
    assert again["Status"] == "SUCCESS", again["Reason"]  # the claim went with the template


# Throttling slows the settings backfill down, never fails it


# Each call the settings backfill makes (beyond the lifecycle policy's), on the request that makes it.
SETTINGS_CALLS = [
    *[("Create", operation) for operation in ("SetRepositoryPolicy", "TagResource", "PutImageTagMutability")],
    *[("Delete", operation) for operation in ("DeleteRepositoryPolicy", "UntagResource", "PutImageTagMutability")],
    *[("Create", operation) for operation in ("GetRepositoryPolicy", "ListTagsForResource", "DescribeRepositories")],
    ("Delete", "DescribeRepositories"),  # the listing, and each repository's own description
]


@pytest.mark.parametrize(("request_type", "operation"), SETTINGS_CALLS)
def test_a_burst_of_throttles_on_a_settings_call_slows_the_backfill_down(
    invoke: Invoke,
    response_endpoint: ResponseEndpoint,
    cache: Any,
    operation: str,
    request_type: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if request_type == "Delete":
        invoke(event(response_endpoint, "Create", every_setting()))
        capsys.readouterr()
    faults.throttle(operation, times=BURST)

    answer = invoke(event(response_endpoint, request_type, every_setting(), physical_id="ecr-public"))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    wanted = EVERYTHING if request_type == "Create" else NOTHING
    assert all(settings_of(cache, name) == wanted for name in CACHED)
    assert faults.throttled(operation) == BURST  # every throttled call was asked again until it went through
    assert throttled_calls_published(capsys.readouterr().out) == BURST


def test_a_predecessor_without_a_template_leaves_the_repositories_to_its_successor(
    invoke: Invoke, response_endpoint: ResponseEndpoint, cache: Any
) -> None:
    """The old resource owned no template (ApplyToNewRepositories false), so there is no claim to take over: the
    new one names it in its own claim, and the old one's Delete still leaves the lifecycle policies to it."""
    old = lifecycle_event(response_endpoint, "Create")
    old["ResourceProperties"]["ApplyToNewRepositories"] = "false"
    assert invoke(old)["Status"] == "SUCCESS"
    assert invoke(event(response_endpoint, "Create", successor()))["Status"] == "SUCCESS"

    deleted = invoke(lifecycle_event(response_endpoint, "Delete", physical_id="ecr-public"))

    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    carried = NOTHING | {"lifecycle": policy(), "policy": ORGANIZATION_PULLS}
    assert all(settings_of(cache, name) == carried for name in CACHED)
    assert template(cache) is not None
    # The successor's Delete is an ordinary one: no take-over to hand back.
    assert invoke(event(response_endpoint, "Delete", successor(), physical_id="ecr-public"))["Status"] == "SUCCESS"
    assert template(cache) is None
    assert all(settings_of(cache, name) == NOTHING for name in CACHED)
