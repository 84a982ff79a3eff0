"""The whole stack under IAM: each role holds, at each moment of a stack operation, the policies CloudFormation has
put in place by then (tests/conftest.py fails any test that meets a denial it does not expect).

- A stack update that renames or removes a cache keeps its old prefix's rights until the cleanup phase has deleted
  the resources using them; a policy updated in place would take them away first.
- A consumer stack using the exported ServiceToken manages only the namespaces ConsumerRepositoryPrefixes names.
- The exported CacheConsumerPolicy lets a role of this account pull through every cache, first pulls included,
  and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emulation import iam
from emulation.cloudformation import ACCOUNT_ID, REGION, LambdaContext
from emulation.iam.pulls import pull
from tests.stack.conftest import ROOT, Play
from tests.stack.test_cached_repository_settings import repository_policy
from tests.stack.test_registry_settings import ORGANIZATION
from tests.stack.test_stack_player import EXAMPLE_PARAMETERS, rules
from tools.stack_player import LocalAws, render

pytestmark = pytest.mark.stack

CONSUMER = ROOT / "examples" / "consumer.yaml"


def test_renaming_and_removing_caches_keeps_the_rights_their_cleanup_needs(play: Play, local_aws: LocalAws) -> None:
    """With OrganizationId, each cache's repositories carry the organisation's pull policy. Renaming the Quay cache
    and switching the K8s cache off deletes their settings resources in the cleanup phase; their Deletes read and
    remove repository policies under the old prefixes, which the replaced policy still allows then. (The repositories
    are cached before the stack: the settings resources record what they set on them, so their Deletes put it back;
    a repository cached later carries what the creation template gave it, and Delete leaves it, see
    docs/CachedRepositorySettings.md.)"""
    for name in ("quay/coreos/etcd", "k8s/pause"):
        local_aws.client("ecr").create_repository(repositoryName=name)
    deployed = play(f"OrganizationId={ORGANIZATION}")
    assert deployed.succeeded, render(deployed.stack, deployed.registry)
    for name in ("quay/coreos/etcd", "k8s/pause"):
        assert repository_policy(local_aws.client("ecr"), name) is not None

    updated = play(f"OrganizationId={ORGANIZATION}", "QuayPrefix=quay-mirror", "EnableK8sCache=false")

    assert updated.succeeded, render(updated.stack, updated.registry)
    # The replacement policy is made in the update phase; the old one is deleted last, after the Deletes using it.
    played = [(outcome.logical_id, outcome.action, outcome.physical_id) for outcome in updated.stack.outcomes]
    made = [physical_id for logical_id, action, physical_id in played
            if (logical_id, action) == ("CachedRepositoriesPolicy", "Native")]  # fmt: skip
    cleanup = [(logical_id, physical_id) for logical_id, action, physical_id in played if action == "Cleanup delete"]
    policy = next(index for index, (logical_id, _) in enumerate(cleanup) if logical_id == "CachedRepositoriesPolicy")
    assert cleanup[policy][1] not in made  # the old policy, replaced
    assert cleanup.index(("QuayCachedRepositorySettings", "quay")) < policy
    assert cleanup.index(("K8sCachedRepositorySettings", "k8s")) < policy
    assert repository_policy(local_aws.client("ecr"), "quay/coreos/etcd") is None
    assert repository_policy(local_aws.client("ecr"), "k8s/pause") is None
    assert iam.denials() == []


@pytest.mark.denials_expected
def test_a_policy_updated_in_place_would_deny_the_cleanup(play: Play, local_aws: LocalAws, tmp_path: Path) -> None:
    """The same update with a policy whose Path does not follow the prefixes: CloudFormation updates it in place in
    the update phase, and the old settings' Delete is denied in the cleanup phase (why the Path names them)."""
    text = (ROOT / "template.yaml").read_text()
    start = text.index("      Path: !Join\n")
    end = text.index("      Roles:\n        - !Ref ProviderRole\n", start)
    in_place = tmp_path / "template.yaml"
    in_place.write_text(text[:start] + "      Path: /ecr-pull-through-cache/\n" + text[end:])
    local_aws.client("ecr").create_repository(repositoryName="quay/coreos/etcd")  # cached before: backfilled
    assert play(f"OrganizationId={ORGANIZATION}", template=in_place).succeeded

    updated = play(f"OrganizationId={ORGANIZATION}", "QuayPrefix=quay-mirror", template=in_place)

    failed = [outcome for outcome in updated.stack.outcomes if outcome.status == "FAILED"]
    assert [outcome.logical_id for outcome in failed] == ["QuayCachedRepositorySettings"]
    assert "not authorized to perform: ecr:" in failed[0].reason
    assert "repository/quay/coreos/etcd" in failed[0].reason
    assert {denial.resource for denial in iam.denials()} == {
        f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/quay/coreos/etcd"
    }
    assert repository_policy(local_aws.client("ecr"), "quay/coreos/etcd") is not None  # left behind


def test_a_consumer_stack_manages_only_the_namespaces_the_provider_names(play: Play, local_aws: LocalAws) -> None:
    """examples/consumer.yaml caches team-a/ghcr: refused (and rolled back, nothing left) while the provider stack
    names no such namespace; deployed once ConsumerRepositoryPrefixes names team-a."""
    consumer = {"template": CONSUMER, "samconfig": CONSUMER.with_suffix(".toml")}
    assert play().succeeded

    refused = play(*EXAMPLE_PARAMETERS["consumer.yaml"], **consumer)

    assert refused.stack.stack_status == "ROLLBACK_COMPLETE", render(refused.stack, refused.registry)
    failure = next(outcome for outcome in refused.stack.outcomes if outcome.status == "FAILED")
    assert "outside those this provider manages" in failure.reason
    assert "ConsumerRepositoryPrefixes" in failure.reason
    assert "team-a/ghcr" not in rules(local_aws)  # the rule it had made was removed by the rollback

    assert play("ConsumerRepositoryPrefixes=team-a").succeeded
    allowed = play(*EXAMPLE_PARAMETERS["consumer.yaml"], **consumer)
    assert allowed.succeeded, render(allowed.stack, allowed.registry)
    assert iam.denials() == []


def consumer_role(local_aws: LocalAws, result: Any) -> iam.Principal:
    """A role of this account with the stack's exported CacheConsumerPolicy attached (an EKS node's, say)."""
    arn = result.stack.outputs["CacheConsumerPolicyArn"]
    _, properties = local_aws.roles.resources[arn]
    return iam.Principal(iam.role_session_arn("eks-node", "i-0123"), [properties["PolicyDocument"]])


@pytest.mark.denials_expected
def test_the_consumer_policy_pulls_through_every_cache_and_nothing_else(play: Play, local_aws: LocalAws) -> None:
    deployed = play()
    assert deployed.succeeded, render(deployed.stack, deployed.registry)
    node = consumer_role(local_aws, deployed)

    for prefix in ("ecr-public", "quay", "k8s"):
        pull(node, f"{prefix}/library/app", ACCOUNT_ID, REGION)  # a first pull: creates and imports
        pull(node, f"{prefix}/library/app", ACCOUNT_ID, REGION)  # a later one
    assert iam.denials() == []
    local_aws.client("ecr").create_repository(repositoryName="payments/api")
    with pytest.raises(iam.Denied, match=r"ecr:BatchGetImage on resource: .*repository/payments/api"):
        pull(node, "payments/api", ACCOUNT_ID, REGION)
    with pytest.raises(iam.Denied, match=r"ecr:CreateRepository on resource: .*repository/docker-hub/library/x"):
        pull(node, "docker-hub/library/x", ACCOUNT_ID, REGION)  # no Docker Hub cache in this stack
    assert json.dumps(node.policies).count("repository/") == 3  # one ARN per cache


@pytest.mark.denials_expected
def test_a_denied_call_fails_its_resource_naming_the_action_and_the_resource(play: Play, tmp_path: Path) -> None:
    """As make local shows it: template.yaml without dynamodb:UpdateItem (as it shipped before issue 17) fails
    the first Create, and its Reason says which action on which resource the role lacks."""
    text = (ROOT / "template.yaml").read_text()
    assert text.count("                  - dynamodb:UpdateItem\n") == 1
    lacking = tmp_path / "template.yaml"
    lacking.write_text(text.replace("                  - dynamodb:UpdateItem\n", ""))

    result = play(template=lacking)

    assert result.stack.stack_status == "ROLLBACK_COMPLETE"
    failed = next(outcome for outcome in result.stack.outcomes if outcome.status == "FAILED")
    assert "not authorized to perform: dynamodb:UpdateItem on resource: arn:aws:dynamodb:" in failed.reason
    assert "Why" in render(result.stack, result.registry)


@pytest.mark.denials_expected
def test_the_health_check_schedule_invokes_the_check_with_its_own_role_as_deployed(
    play: Play, local_aws: LocalAws
) -> None:
    """The played stack's schedule (in moto, as CloudFormation made it) is run as EventBridge Scheduler runs it:
    its role, as the stack granted it, may invoke the function; the check then runs as the provider's role. An
    update with an empty HealthCheckSchedule deletes the schedule and takes the role's rights away."""
    from tools.stack_player.sweep import _scheduler_may_not_invoke

    deployed = play("AlarmEmail=platform@example.com")
    assert deployed.succeeded, render(deployed.stack, deployed.registry)
    scheduler = local_aws.client("scheduler")
    (listed,) = scheduler.list_schedules(GroupName="default")["Schedules"]
    target = scheduler.get_schedule(Name=listed["Name"], GroupName="default")["Target"]
    assert _scheduler_may_not_invoke(local_aws, target) == ""
    event = json.loads(target["Input"])
    assert set(event) == {"CacheProviderHealthCheck"}
    # The function the schedule names runs it (the player finds a function's environment by its ARN, as the sweep does).
    local_aws.invoke_provider(
        event | {"ServiceToken": target["Arn"]}, LambdaContext(300, function_arn=str(target["Arn"]))
    )
    assert iam.denials() == []
    # What else the stack made in moto for the health check: its alarms, notifying the topic it made.
    cloudwatch, sns = local_aws.client("cloudwatch"), local_aws.client("sns")
    (topic,) = [topic["TopicArn"] for topic in sns.list_topics()["Topics"]]
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "platform@example.com")
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    assert len(alarms) == 18  # 3 caches x 3, the ledger's, the registry's 2, the provider's 6
    assert {tuple(alarm["AlarmActions"]) for alarm in alarms} == {(topic,)}
    (dashboard,) = cloudwatch.list_dashboards()["DashboardEntries"]
    body = json.loads(cloudwatch.get_dashboard(DashboardName=dashboard["DashboardName"])["DashboardBody"])
    assert any(widget["properties"].get("markdown") == "## Quay cache: `quay`" for widget in body["widgets"])

    updated = play("HealthCheckSchedule=", "EnableDashboard=false")

    assert updated.succeeded, render(updated.stack, updated.registry)
    assert scheduler.list_schedules(GroupName="default")["Schedules"] == []
    assert "lambda:InvokeFunction" in _scheduler_may_not_invoke(local_aws, target)  # the role went with its policy
    assert [denial.action for denial in iam.denials()] == ["lambda:InvokeFunction"]
    assert len(cloudwatch.describe_alarms()["MetricAlarms"]) == 6  # the provider's own
    assert cloudwatch.list_dashboards()["DashboardEntries"] == []
    assert sns.list_topics()["Topics"] == []  # AlarmEmail is empty in this update: the topic goes
