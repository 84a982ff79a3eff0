"""emulation/workloads.py: Lambda's ResolvedImageUri and ECS task containers' imageDigest as AWS reports them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulation import iam
from emulation.cloudformation import ACCOUNT_ID, REGION
from emulation.moto_ecr import seed_image

REGISTRY = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"


@pytest.fixture
def image(aws: None) -> str:
    return seed_image(ACCOUNT_ID, REGION, "docker-hub/library/python", pushed_at=datetime.now(UTC), tags=("3.12",))


def make_function(name: str, uri: str) -> Any:
    role = iam.admin_client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client = iam.admin_client("lambda")
    client.create_function(FunctionName=name, Role=role, PackageType="Image", Code={"ImageUri": uri})
    return client


@pytest.mark.parametrize("reference", ["tag", "digest"])
def test_resolved_image_uri_names_the_images_digest(image: str, reference: str) -> None:
    uri = f"{REGISTRY}/docker-hub/library/python" + (":3.12" if reference == "tag" else f"@{image}")
    code = make_function("api", uri).get_function(FunctionName="api")["Code"]
    assert code["ImageUri"] == uri
    assert code["ResolvedImageUri"] == f"{REGISTRY}/docker-hub/library/python@{image}"


def test_an_image_that_is_not_there_fails_create_function(image: str) -> None:
    with pytest.raises(ClientError) as failed:
        make_function("api", f"{REGISTRY}/docker-hub/library/python:missing")
    assert failed.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_every_container_of_a_task_reports_its_image_digest(image: str) -> None:
    ecs = iam.admin_client("ecs")
    ecs.create_cluster(clusterName="apps")
    containers = [
        {"name": "app", "image": f"{REGISTRY}/docker-hub/library/python:3.12", "memory": 128},
        {"name": "sidecar", "image": "public.example/agent:1", "memory": 64},
    ]
    ecs.register_task_definition(family="web", containerDefinitions=containers)
    task = ecs.run_task(cluster="apps", taskDefinition="web", launchType="FARGATE")["tasks"][0]
    described = ecs.describe_tasks(cluster="apps", tasks=[task["taskArn"]])["tasks"][0]["containers"]
    assert [(c["name"], c.get("imageDigest")) for c in described] == [("app", image), ("sidecar", None)]
