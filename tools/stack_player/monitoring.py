"""The native monitoring resources of a played stack, made in the local AWS (moto) as CloudFormation makes them:
CloudWatch alarms (PutMetricAlarm) and dashboards (PutDashboard, which refuses a body that is not JSON), SNS topics
and subscriptions, and EventBridge Scheduler schedules (the health check's). Each is created or updated when the
player plays it and deleted when CloudFormation would delete it, so a played stack's alarms, dashboard and schedule
can be read back with boto3 (tests/stack/test_health_check_template.py), and survive `make local` runs in its
state folder like the registry."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

ALARM = "AWS::CloudWatch::Alarm"
DASHBOARD = "AWS::CloudWatch::Dashboard"
TOPIC = "AWS::SNS::Topic"
SUBSCRIPTION = "AWS::SNS::Subscription"
SCHEDULE = "AWS::Scheduler::Schedule"
TYPES = (ALARM, DASHBOARD, TOPIC, SUBSCRIPTION, SCHEDULE)

# The alarm properties PutMetricAlarm takes under the same names (AWS::CloudWatch::Alarm).
ALARM_PROPERTIES = ("AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions", "InsufficientDataActions",
                    "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit",
                    "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData",
                    "EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId")  # fmt: skip
NUMBERS = {"Period": int, "EvaluationPeriods": int, "DatapointsToAlarm": int, "Threshold": float}
SCHEDULE_PROPERTIES = ("Description", "ScheduleExpression", "ScheduleExpressionTimezone", "FlexibleTimeWindow",
                       "State", "Target", "StartDate", "EndDate")  # fmt: skip
DEFAULT_GROUP = "default"
# A schedule's name may have 64 characters ([0-9a-zA-Z-_.]); CloudFormation generates one within them.
SCHEDULE_NAME_LENGTH = 64


def schedule_name(physical_id: str) -> str:
    return physical_id[:SCHEDULE_NAME_LENGTH]


@dataclass
class Monitoring:
    """Makes and deletes the monitoring resources through `client` (a boto3 client of the local AWS by service)."""

    client: Callable[[str], Any]
    # Each subscription's ARN by its resource's physical id (SNS names a subscription by an ARN it makes).
    subscriptions: dict[str, str] = field(default_factory=dict)

    def apply(self, resource_type: str, physical_id: str, properties: dict[str, Any]) -> None:
        """The resource was created or updated: it now has these properties."""
        if resource_type == ALARM:
            self.client("cloudwatch").put_metric_alarm(AlarmName=physical_id, **_alarm(properties))
        elif resource_type == DASHBOARD:
            body = properties["DashboardBody"]
            self.client("cloudwatch").put_dashboard(DashboardName=physical_id, DashboardBody=str(body))
        elif resource_type == TOPIC:
            self.client("sns").create_topic(Name=physical_id.rsplit(":", 1)[-1])
        elif resource_type == SUBSCRIPTION:
            self._subscribe(physical_id, properties)
        elif resource_type == SCHEDULE:
            self._put_schedule(physical_id, properties)

    def delete(self, resource_type: str, physical_id: str) -> None:
        if resource_type == ALARM:
            self.client("cloudwatch").delete_alarms(AlarmNames=[physical_id])
        elif resource_type == DASHBOARD:
            self.client("cloudwatch").delete_dashboards(DashboardNames=[physical_id])
        elif resource_type == TOPIC:
            self.client("sns").delete_topic(TopicArn=physical_id)
        elif resource_type == SUBSCRIPTION and physical_id in self.subscriptions:
            sns = self.client("sns")
            with suppress(sns.exceptions.NotFoundException):
                sns.unsubscribe(SubscriptionArn=self.subscriptions.pop(physical_id))
        elif resource_type == SCHEDULE:
            scheduler = self.client("scheduler")
            with suppress(scheduler.exceptions.ResourceNotFoundException):
                scheduler.delete_schedule(Name=schedule_name(physical_id), GroupName=DEFAULT_GROUP)

    def _subscribe(self, physical_id: str, properties: dict[str, Any]) -> None:
        sns = self.client("sns")
        if physical_id in self.subscriptions:  # an update: SNS replaces a subscription whose endpoint changes
            with suppress(sns.exceptions.NotFoundException):
                sns.unsubscribe(SubscriptionArn=self.subscriptions.pop(physical_id))
        made = sns.subscribe(TopicArn=str(properties["TopicArn"]), Protocol=str(properties["Protocol"]),
                             Endpoint=str(properties["Endpoint"]), ReturnSubscriptionArn=True)  # fmt: skip
        self.subscriptions[physical_id] = made["SubscriptionArn"]

    def _put_schedule(self, physical_id: str, properties: dict[str, Any]) -> None:
        scheduler = self.client("scheduler")
        schedule = {key: properties[key] for key in SCHEDULE_PROPERTIES if key in properties}
        name = schedule_name(physical_id)
        try:
            scheduler.get_schedule(Name=name, GroupName=properties.get("GroupName", DEFAULT_GROUP))
        except scheduler.exceptions.ResourceNotFoundException:
            scheduler.create_schedule(Name=name, GroupName=properties.get("GroupName", DEFAULT_GROUP), **schedule)
            return
        scheduler.update_schedule(Name=name, GroupName=properties.get("GroupName", DEFAULT_GROUP), **schedule)

    # Across make local runs (the state folder): schedules are saved with the registry's

    def to_saved(self) -> dict[str, Any]:
        cloudwatch, sns = self.client("cloudwatch"), self.client("sns")
        alarms = [
            {"AlarmName": alarm["AlarmName"], **{key: alarm[key] for key in ALARM_PROPERTIES if key in alarm}}
            for alarm in cloudwatch.describe_alarms()["MetricAlarms"]
        ]
        dashboards = [
            {"DashboardName": entry["DashboardName"],
             "DashboardBody": cloudwatch.get_dashboard(DashboardName=entry["DashboardName"])["DashboardBody"]}
            for entry in cloudwatch.list_dashboards()["DashboardEntries"]
        ]  # fmt: skip
        topics = [topic["TopicArn"] for topic in sns.list_topics()["Topics"]]
        subscriptions = {
            physical_id: next(
                {key: listed[key] for key in ("TopicArn", "Protocol", "Endpoint")}
                for listed in sns.list_subscriptions()["Subscriptions"]
                if listed["SubscriptionArn"] == arn
            )
            for physical_id, arn in self.subscriptions.items()
        }
        return {"alarms": alarms, "dashboards": dashboards, "topics": topics, "subscriptions": subscriptions}

    def restore(self, saved: dict[str, Any] | None) -> None:
        saved = saved or {}
        cloudwatch, sns = self.client("cloudwatch"), self.client("sns")
        for alarm in saved.get("alarms", []):
            cloudwatch.put_metric_alarm(**alarm)
        for dashboard in saved.get("dashboards", []):
            cloudwatch.put_dashboard(**dashboard)
        for topic in saved.get("topics", []):
            sns.create_topic(Name=topic.rsplit(":", 1)[-1])
        self.subscriptions = {}
        for physical_id, subscription in saved.get("subscriptions", {}).items():
            self._subscribe(physical_id, subscription)


def _alarm(properties: dict[str, Any]) -> dict[str, Any]:
    """PutMetricAlarm's parameters from the resource's properties (numbers as numbers: a template may quote them)."""
    alarm = {key: properties[key] for key in ALARM_PROPERTIES if key in properties}
    for key, kind in NUMBERS.items():
        if key in alarm:
            alarm[key] = kind(alarm[key])
    for query in alarm.get("Metrics", []):
        if "Period" in query:
            query["Period"] = int(query["Period"])
    return alarm
