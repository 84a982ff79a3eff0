"""template.yaml's health check resources (issue 20, docs/health-check.md), resolved for given parameters as
CloudFormation would (the stack player's renderer, on the expansion): the schedule and its role, the alarms and the
topic they notify, the dashboard's widgets per cache, and each alarm's link into the README."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.template.test_readme import github_anchors
from tools import shipped_iam
from tools.stack_player.template import ParameterError, Template, resolve_parameters

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CACHES = ("EcrPublic", "Quay", "K8s", "DockerHub", "GitHub", "GitLab")
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:platform-alarms"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"


def stack(**overrides: str) -> shipped_iam.TestStack:
    return shipped_iam.TestStack(overrides=tuple(overrides.items()))


def resources(test_stack: shipped_iam.TestStack, resource_type: str) -> dict[str, dict[str, Any]]:
    """The stack's resources of that type, their properties resolved."""
    renderer = test_stack.renderer
    return {
        logical_id: renderer.evaluate(resource.get("Properties", {}))
        for logical_id, resource in renderer.active_resources().items()
        if resource["Type"] == resource_type
    }


def alarms(test_stack: shipped_iam.TestStack) -> dict[str, dict[str, Any]]:
    return resources(test_stack, "AWS::CloudWatch::Alarm")


def test_the_schedule_invokes_the_function_with_the_health_check_event_through_its_own_role() -> None:
    test_stack = stack()
    (schedule,) = resources(test_stack, "AWS::Scheduler::Schedule").values()
    assert schedule["ScheduleExpression"] == "rate(1 hour)"
    target = schedule["Target"]
    assert target["Arn"] == test_stack.renderer.get_att("ProviderFunction", "Arn")
    assert target["RoleArn"] == test_stack.renderer.get_att("HealthCheckSchedulerRole", "Arn")
    event = json.loads(target["Input"])
    assert set(event) == {"CacheProviderHealthCheck"}  # engine/health_check.py's HEALTH_CHECK_KEY
    assert event["CacheProviderHealthCheck"]["schedule"].endswith("/ProviderHealthCheckSchedule")
    assert "GroupName" not in schedule  # not in the image expiry group, where the provider may delete schedules
    environment = test_stack.function_environment()
    assert environment["HEALTH_CHECK_REPAIR_DRIFT"] == "false"
    assert environment["HEALTH_CHECK_SAMPLE_SIZE"] == "10"
    assert stack(RepairDrift="true").function_environment()["HEALTH_CHECK_REPAIR_DRIFT"] == "true"


def test_an_empty_schedule_makes_no_schedule_no_role_and_no_health_check_alarm() -> None:
    test_stack = stack(HealthCheckSchedule="")
    active = test_stack.renderer.active_resources()
    assert "ProviderHealthCheckSchedule" not in active
    assert "HealthCheckSchedulerRole" not in active
    metrics = {alarm.get("MetricName") for alarm in alarms(test_stack).values()}
    assert not metrics & {"UpstreamLoginFailed", "DriftedSettings", "HealthCheckErrors"}
    assert len(alarms(test_stack)) == 6  # the provider's own: failures x3, throttling, sweeps, function errors


@pytest.mark.parametrize(
    ("overrides", "notified"),
    [
        ({"AlarmEmail": "platform@example.com"}, "created"),
        ({"AlarmTopicArn": TOPIC_ARN}, [TOPIC_ARN]),
        ({}, None),
    ],
    ids=["AlarmEmail", "AlarmTopicArn", "neither"],
)
def test_every_alarm_notifies_the_topic_the_parameters_name(overrides: dict[str, str], notified: Any) -> None:
    test_stack = stack(**overrides)
    topics = resources(test_stack, "AWS::SNS::Topic")
    subscriptions = resources(test_stack, "AWS::SNS::Subscription")
    if notified == "created":
        assert list(topics) == ["AlarmTopic"]
        notified = [test_stack.renderer.ref("AlarmTopic")]
        (subscription,) = subscriptions.values()
        assert subscription == {"TopicArn": notified[0], "Protocol": "email", "Endpoint": "platform@example.com"}
    else:
        assert not topics
        assert not subscriptions
    found = alarms(test_stack)
    assert len(found) == 18  # 3 caches x 3 metrics, the ledger's errors, the registry's 2, and the provider's 6
    for logical_id, alarm in found.items():
        assert alarm.get("AlarmActions") == notified, logical_id
        assert alarm.get("OKActions") == notified, logical_id


def test_both_topics_are_refused_before_anything_is_made() -> None:
    template = Template.load(ROOT / "template.yaml")
    with pytest.raises(ParameterError, match=r"AlarmEmail .* or AlarmTopicArn .*, not both"):
        resolve_parameters(template, {"AlarmEmail": "platform@example.com", "AlarmTopicArn": TOPIC_ARN})


def test_one_health_check_alarm_per_enabled_cache_and_metric_on_its_prefix() -> None:
    test_stack = stack(EnableQuayCache="false", DockerHubCredentialArn=SECRET, DockerHubPrefix="hub/")
    found = alarms(test_stack)
    for cache, prefix in (("EcrPublic", "ecr-public"), ("K8s", "k8s"), ("DockerHub", "hub")):
        for metric in ("UpstreamLoginFailed", "DriftedSettings", "HealthCheckErrors"):
            alarm = found[f"{cache}{metric}Alarm"]
            assert alarm["MetricName"] == metric
            # the prefix as the rule reports it (no trailing slash), as the health check writes its dimension
            assert alarm["Dimensions"] == [
                {"Name": "CachePrefix", "Value": prefix},
                {"Name": "service", "Value": "ecr-pull-through-cache"},
            ]
            assert alarm["TreatMissingData"] == "ignore"
    assert not [logical_id for logical_id in found if logical_id.startswith(("Quay", "GitHub", "GitLab"))]


def test_the_alarms_watch_the_namespace_and_service_the_function_writes() -> None:
    """Powertools writes every metric in POWERTOOLS_METRICS_NAMESPACE with a `service` dimension of
    POWERTOOLS_SERVICE_NAME: an alarm naming another namespace or service would never see a data point."""
    test_stack = stack()
    environment = test_stack.function_environment()
    namespace, service = environment["POWERTOOLS_METRICS_NAMESPACE"], environment["POWERTOOLS_SERVICE_NAME"]
    for logical_id, alarm in alarms(test_stack).items():
        if alarm.get("Namespace") == "AWS/Lambda":
            assert alarm["Dimensions"] == [
                {"Name": "FunctionName", "Value": test_stack.renderer.ref("ProviderFunction")}
            ]
        elif "Metrics" in alarm:  # a Metrics Insights query over every ResourceType
            (query,) = alarm["Metrics"]
            assert f'FROM SCHEMA("{namespace}", ResourceType, service)' in query["Expression"], logical_id
        else:
            assert alarm["Namespace"] == namespace, logical_id
            assert {"Name": "service", "Value": service} in alarm["Dimensions"], logical_id


def test_each_alarm_description_links_a_readme_heading() -> None:
    anchors = github_anchors(README.read_text())
    found = alarms(stack(AlarmEmail="platform@example.com"))
    linked = set()
    for logical_id, alarm in found.items():
        match = re.search(r"/README\.md#([a-z0-9-]+)$", alarm["AlarmDescription"])
        assert match, f"{logical_id}: {alarm['AlarmDescription']}"
        assert match.group(1) in anchors, logical_id
        assert len(alarm["AlarmDescription"]) <= 1024, logical_id  # CloudWatch's limit
        linked.add(match.group(1))
    assert len(linked) == 7


def dashboard_widgets(test_stack: shipped_iam.TestStack) -> list[dict[str, Any]]:
    (dashboard,) = resources(test_stack, "AWS::CloudWatch::Dashboard").values()
    widgets: list[dict[str, Any]] = json.loads(dashboard["DashboardBody"])["widgets"]
    return widgets


def titles(widgets: list[dict[str, Any]]) -> list[str]:
    return [str(widget["properties"].get("title") or widget["properties"].get("markdown")) for widget in widgets]


def test_the_dashboard_has_a_row_per_enabled_cache_and_none_for_a_disabled_one() -> None:
    widgets = dashboard_widgets(stack(EnableQuayCache="false", GitHubCredentialArn=SECRET))
    for cache in ("EcrPublic", "K8s", "GitHub"):
        assert len([title for title in titles(widgets) if cache in title]) == 4, cache  # heading and 3 widgets
    for cache in ("Quay", "DockerHub", "GitLab"):
        assert not [title for title in titles(widgets) if cache in title], cache
    assert "## The provider" in titles(widgets)


def test_the_dashboard_reads_each_caches_own_metrics_pulls_and_sweeps() -> None:
    test_stack = stack(K8sPrefix="mirror/k8s")
    widgets = [widget for widget in dashboard_widgets(test_stack) if "K8s" in titles([widget])[0]]
    health = next(widget for widget in widgets if "upstream login" in titles([widget])[0])
    assert health["properties"]["metrics"][0] == [
        "EcrPullThroughCache", "UpstreamLoginFailed", "CachePrefix", "mirror/k8s", "service", "ecr-pull-through-cache"
    ]  # fmt: skip
    pulls = next(widget for widget in widgets if "pulls" in titles([widget])[0])
    expression = pulls["properties"]["metrics"][0][0]["expression"]
    assert "{AWS/ECR,RepositoryName}" in expression
    assert 'MetricName="RepositoryPullCount"' in expression
    assert 'RepositoryName="mirror/k8s"' in expression
    sweeps = next(widget for widget in widgets if widget["type"] == "log")
    log_group = test_stack.log_group()
    assert sweeps["properties"]["query"].startswith(f"SOURCE '{log_group}' ")
    assert "repository_prefix = 'mirror/k8s'" in sweeps["properties"]["query"]


def test_no_dashboard_when_switched_off() -> None:
    assert not resources(stack(EnableDashboard="false"), "AWS::CloudWatch::Dashboard")
