"""The custom resource contract, whatever the resource type: one answer on every path, safe ids, no secrets
in logs, no sleeps, small answers, nothing carried between warm invocations."""

from __future__ import annotations

import importlib
import io
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest

from ecr_cache_provider.contract import Result
from emulation.cloudformation import SIGNATURE, LambdaContext, ResponseEndpoint, make_event
from tests.handler.conftest import Invoke

QUAY = {"EcrRepositoryPrefix": "quay", "UpstreamRegistryUrl": "quay.io"}
SECRET_TOKEN = "s3cr3t-t0ken-value"


def test_unknown_resource_type_fails_create_but_not_delete(invoke: Invoke, response_endpoint: ResponseEndpoint) -> None:
    create = invoke(make_event(response_endpoint, "Create", QUAY, resource_type="Custom::Nope"))
    delete = invoke(
        make_event(
            response_endpoint, "Delete", QUAY, resource_type="Custom::Nope", physical_id=create["PhysicalResourceId"]
        )
    )

    assert create["Status"] == "FAILED"
    assert "Unsupported resource type 'Custom::Nope'" in create["Reason"]
    assert create["PhysicalResourceId"].startswith("failed-create:")
    assert delete["Status"] == "SUCCESS"


def test_answer_echoes_the_request_and_has_an_empty_content_type(
    invoke: Invoke, response_endpoint: ResponseEndpoint
) -> None:
    event = make_event(response_endpoint, "Create", QUAY)
    answer = invoke(event)

    assert {key: answer[key] for key in ("StackId", "RequestId", "LogicalResourceId")} == {
        key: event[key] for key in ("StackId", "RequestId", "LogicalResourceId")
    }
    assert response_endpoint.headers[event["RequestId"]][0].get("content-type", "") == ""


def test_neither_the_response_url_nor_secret_values_reach_the_logs(
    invoke: Invoke,
    response_endpoint: ResponseEndpoint,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from ecr_cache_provider.observability import logger
    from tests.conftest import create_secret

    caplog.set_level(logging.DEBUG)
    secret = create_secret("ecr-pullthroughcache/docker-hub")
    docker = {
        "EcrRepositoryPrefix": "docker-hub",
        "UpstreamRegistryUrl": "registry-1.docker.io",
        "CredentialArn": secret,
    }
    logged_json = io.StringIO()
    stream_handler = cast("logging.StreamHandler[Any]", logger.registered_handler)
    stream_handler.setStream(logged_json)
    logger.setLevel(logging.DEBUG)
    try:
        invoke(make_event(response_endpoint, "Create", docker))
        invoke(make_event(response_endpoint, "Create", {**QUAY, "Validate": "maybe"}))
        invoke(make_event(response_endpoint, "Delete", docker, physical_id="docker-hub"))
    finally:
        logger.setLevel(logging.INFO)
        stream_handler.setStream(sys.stdout)

    logged = capsys.readouterr()
    everything = logged.out + logged.err + caplog.text + logged_json.getvalue()
    assert '"RequestId"' in logged_json.getvalue()  # the logs were captured at all
    assert "Received request" in logged_json.getvalue()
    assert SIGNATURE not in everything
    assert "X-Amz-Signature" not in everything
    assert SECRET_TOKEN not in everything


def test_delete_does_not_sleep(invoke: Invoke, response_endpoint: ResponseEndpoint) -> None:
    from ecr_cache_provider.handler import helper

    invoke(make_event(response_endpoint, "Delete", QUAY, physical_id="quay"))
    sleeps: list[float] = []

    helper._wait_for_cwlogs(sleep=sleeps.append)

    assert sleeps == []


def test_too_little_time_left_fails_before_changing_anything(
    invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any
) -> None:
    answer = invoke(make_event(response_endpoint, "Create", QUAY), remaining_seconds=5)

    assert answer["Status"] == "FAILED"
    assert "about to time out" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("failed-create:")
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


def test_the_timeout_answer_and_a_late_result_make_one_answer(
    invoke: Invoke, response_endpoint: ResponseEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecr_cache_provider import handler
    from ecr_cache_provider.contract import RequestContext
    from ecr_cache_provider.types import pull_through_cache_rule

    def hangs(context: Any) -> Any:
        time.sleep(1.0)  # a call that outlives the Lambda; crhelper's timer answers first
        return Result("quay", {})

    monkeypatch.setattr(pull_through_cache_rule, "create", hangs)
    monkeypatch.setattr(RequestContext, "begin", lambda self: None)  # with 0.7 s left, it would stop at the ledger
    event = make_event(response_endpoint, "Create", QUAY)

    handler.lambda_handler(event, LambdaContext(remaining_seconds=0.7))
    time.sleep(0.2)

    answer = response_endpoint.wait_for(event["RequestId"])
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == "Execution timed out"
    assert answer["PhysicalResourceId"].startswith("failed-create:")


def test_an_answer_too_large_for_cloudformation_fails_cleanly(
    invoke: Invoke, response_endpoint: ResponseEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecr_cache_provider.types import pull_through_cache_rule

    monkeypatch.setattr(
        pull_through_cache_rule,
        "create",
        lambda context: Result("quay", {"Big": "x" * 5000}),
    )
    event = make_event(response_endpoint, "Create", QUAY)

    answer = invoke(event)

    assert answer["Status"] == "FAILED"
    assert "4,096" in answer["Reason"]
    assert answer["Data"] == {}


def test_long_reasons_keep_their_beginning(invoke: Invoke, response_endpoint: ResponseEndpoint) -> None:
    answer = invoke(make_event(response_endpoint, "Create", {**QUAY, "EcrRepositoryPrefix": "Q" * 300}))

    assert answer["Reason"].startswith("Invalid EcrRepositoryPrefix")
    assert len(answer["Reason"]) <= 256


@pytest.fixture
def provider_that_fails_to_load(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The entry point loaded again while a module the provider needs cannot be imported."""
    import ecr_cache_provider
    from ecr_cache_provider import handler

    monkeypatch.delitem(sys.modules, "ecr_cache_provider.dispatch")
    monkeypatch.delattr(ecr_cache_provider, "dispatch")
    monkeypatch.delitem(sys.modules, "ecr_cache_provider.types")
    monkeypatch.delattr(ecr_cache_provider, "types")
    monkeypatch.setitem(sys.modules, "ecr_cache_provider.types.pull_through_cache_rule", None)
    broken = importlib.reload(handler)
    yield
    monkeypatch.undo()
    importlib.reload(broken)


@pytest.mark.usefixtures("provider_that_fails_to_load")
def test_an_import_failure_is_answered(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any) -> None:
    answer = invoke(make_event(response_endpoint, "Create", QUAY))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("The provider failed to load: ")
    assert "pull_through_cache_rule" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("failed-create:")
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


@pytest.mark.usefixtures("provider_that_fails_to_load")
def test_after_an_import_failure_the_rollback_delete_succeeds_and_other_deletes_fail(
    invoke: Invoke, response_endpoint: ResponseEndpoint
) -> None:
    rollback = invoke(make_event(response_endpoint, "Delete", QUAY, physical_id="failed-create:earlier-request"))
    real_delete = invoke(make_event(response_endpoint, "Delete", QUAY, physical_id="quay"))

    assert rollback["Status"] == "SUCCESS"
    assert rollback["PhysicalResourceId"] == "failed-create:earlier-request"
    assert real_delete["Status"] == "FAILED"
    assert real_delete["Reason"].startswith("The provider failed to load: ")


def test_nothing_carries_over_between_warm_invocations(invoke: Invoke, response_endpoint: ResponseEndpoint) -> None:
    created = invoke(make_event(response_endpoint, "Create", QUAY))
    deleted = invoke(make_event(response_endpoint, "Delete", QUAY, physical_id="quay"))
    failed = invoke(make_event(response_endpoint, "Create", {**QUAY, "Validate": "maybe"}))

    assert created["Data"]["EcrRepositoryPrefix"] == "quay"
    assert deleted["Data"] == {}
    assert failed["Data"] == {}
    assert failed["PhysicalResourceId"] != created["PhysicalResourceId"]
