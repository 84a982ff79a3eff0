"""Two stacks racing for one prefix, each request in its own Lambda execution environment (a process of the built
package), against one moto server: exactly one owns the rule, the other fails naming it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from emulation import iam
from emulation.cloudformation import STACK_ID, ResponseEndpoint, make_event
from emulation.ownership import TABLE_NAME
from tests.integration.conftest import built_environment
from tools import lambda_runtime

pytestmark = [pytest.mark.integration, pytest.mark.built]

QUAY = {"EcrRepositoryPrefix": "quay", "UpstreamRegistryUrl": "quay.io", "Validate": "false"}
STACKS = [STACK_ID.replace("stack/cache-stack/", f"stack/{name}/") for name in ("dev-stack", "prod-stack")]


@pytest.mark.parametrize("attempt", range(3))
def test_two_stacks_racing_for_a_prefix_make_exactly_one_owner(
    attempt: int, built_function: Path, aws_endpoint: str, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    environment = built_environment(aws_endpoint, response_endpoint)
    events = [make_event(response_endpoint, "Create", QUAY) | {"StackId": stack} for stack in STACKS]

    with ThreadPoolExecutor(len(events)) as pool:
        list(pool.map(lambda event: lambda_runtime.invoke(built_function, event, environment), events))
    answers = {event["StackId"]: response_endpoint.wait_for(event["RequestId"]) for event in events}

    winners = [stack for stack, answer in answers.items() if answer["Status"] == "SUCCESS"]
    assert len(winners) == 1, answers
    (loser,) = set(STACKS) - set(winners)
    winner_name = winners[0].split("/")[1]
    assert f"belongs to CacheRule in stack {winner_name}" in answers[loser]["Reason"]
    assert answers[loser]["PhysicalResourceId"].startswith("failed-create:")
    claim = iam.admin_client("dynamodb", endpoint_url=aws_endpoint).get_item(
        TableName=TABLE_NAME, Key={"Id": {"S": "pull-through cache rule/quay"}}
    )["Item"]
    assert claim["StackId"]["S"] == winners[0]
    assert [
        rule["ecrRepositoryPrefix"] for rule in ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    ] == ["quay"]
