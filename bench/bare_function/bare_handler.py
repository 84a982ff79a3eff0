"""The baseline of bench/cold_start.py: the least a function can do to serve the same first Create as the provider.
It imports boto3, makes one ECR client, makes the ECR calls the provider makes for a Create of a cache rule without
credentials (create, then validate), and answers CloudFormation with one HTTPS PUT. No ownership claim, no property
checks, no logs or metrics: what the provider costs beyond this is what the benchmark measures."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3

ecr = boto3.client("ecr")


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    properties = event["ResourceProperties"]
    prefix = properties["EcrRepositoryPrefix"]
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix=prefix, upstreamRegistryUrl=properties["UpstreamRegistryUrl"]
    )
    ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
    answer = {
        "Status": "SUCCESS",
        "PhysicalResourceId": prefix,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
    }
    request = urllib.request.Request(event["ResponseURL"], data=json.dumps(answer).encode(), method="PUT")
    urllib.request.urlopen(request, timeout=10).close()  # the pre-signed https URL CloudFormation gave
