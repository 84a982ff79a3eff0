"""What the handler returns for a health check invocation: the run's summary as JSON (what `make local
ARGS=--health-check-now` reads), with each finding as it was logged."""

from __future__ import annotations

import json

from emulation.cloudformation import STACK_ID, LambdaContext, ResponseEndpoint, make_event
from emulation.moto_ecr import faults
from tests.conftest import create_secret
from tests.handler.conftest import Invoke
from tests.handler.test_health_check import docker_hub, ecr_public


def test_the_handler_returns_the_health_checks_summary(invoke: Invoke, response_endpoint: ResponseEndpoint) -> None:
    from ecr_cache_provider import handler
    from ecr_cache_provider.engine.health_check import health_check_event

    secret = create_secret("ecr-pullthroughcache/docker-hub")
    for logical_id, properties in (("DockerHub", docker_hub(secret)), ("EcrPublic", ecr_public())):
        answer = invoke(make_event(response_endpoint, "Create", properties, logical_id=logical_id))
        assert answer["Status"] == "SUCCESS", answer["Reason"]
    faults.reject_upstream_credentials("docker-hub")

    summary = handler.lambda_handler(health_check_event("cache-health-check"), LambdaContext(300.0))

    assert json.loads(json.dumps(summary)) == summary  # plain JSON, as Lambda returns it
    assert summary == {
        "checked": 2,
        "findings": [
            {
                "metric": "UpstreamLoginFailed",
                "prefix": "docker-hub",
                "checked": "pull-through cache rule",
                "detail": f"upstream login failed: {faults.DEFAULT_REJECTION_FAILURE}",
                "resource": f"{STACK_ID}/DockerHub",
            }
        ],
        "repaired": [],
        "sampled": {},
        "unchecked": [],
        "continued": False,
    }
