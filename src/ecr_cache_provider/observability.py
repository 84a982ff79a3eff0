"""Logger and metrics, shared by every module. JSON logs keyed by the CloudFormation request; one metric
per operation and outcome, written as CloudWatch embedded metrics (no PutMetricData permission needed)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", "ecr-pull-through-cache"))
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "EcrPullThroughCache"))


def count_outcome(resource_type: str, request_type: str, outcome: str) -> None:
    """One metric per operation and outcome, e.g. CreateSucceeded for Custom::PullThroughCacheRule."""
    metrics.add_dimension(name="ResourceType", value=resource_type)
    metrics.add_metric(name=f"{request_type}{outcome}", unit=MetricUnit.Count, value=1)


def count_throttled(resource_type: str, calls: int) -> None:
    """ThrottledCalls: the ECR calls throttled in one invocation, each attempt botocore retried included."""
    if calls:
        metrics.add_dimension(name="ResourceType", value=resource_type)
        metrics.add_metric(name="ThrottledCalls", unit=MetricUnit.Count, value=calls)
