"""The scheduled health check through the real handler: each kind of drift of a rule (upstream, credential, role)
and of a creation template (deleted, edited), a refused upstream login, resources of another stack, of another
Region and of nobody, a healthy stack, the deadline and throttling. Findings are read from the EMF metrics and the
log lines the invocation wrote, and from the summary the handler returns; every run without RepairDrift also proves
that the check wrote nothing to ECR, EventBridge Scheduler or the ownership table. (Registry policy statements,
scanning filters, expiry schedules, sampled repositories, repair and continuation: test_health_check_repair.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.client import BaseClient

from emulation import moto_ecr
from emulation.cloudformation import ACCOUNT_ID, REGION, STACK_ID, LambdaContext, ResponseEndpoint, make_event
from emulation.moto_ecr import faults
from tests.conftest import create_secret
from tests.handler.conftest import Invoke
from tests.unit.test_lifecycle_policy import policy

OTHER_ACCOUNT_ECR = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/ecr-pull-through-cache"
OTHER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/someone-elses"
OTHER_STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/other-stack/0f0f0f0f-0e4c-11ef-9d37-0a1b2c3d4e5f"
OTHER_REGION_STACK_ID = STACK_ID.replace(REGION, "eu-west-1")
POLICY = json.dumps(policy())
READ_ONLY = ("Describe", "Get", "List", "Validate", "BatchGet", "BatchCheck")
# The writes of the other services the health check reaches (DynamoDB's reads are GetItem, Query, Scan, BatchGet).
WRITES = {
    "scheduler": ("Create", "Update", "Delete", "Tag", "Untag"),
    "dynamodb": ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"),
}
CACHED = [f"ecr-public/library/image-{index}" for index in range(3)]


def ecr_public(prefix: str = "ecr-public") -> dict[str, Any]:
    return {"EcrRepositoryPrefix": prefix, "UpstreamRegistryUrl": "public.ecr.aws"}


def docker_hub(credential_arn: str) -> dict[str, Any]:
    return {
        "EcrRepositoryPrefix": "docker-hub",
        "UpstreamRegistryUrl": "registry-1.docker.io",
        "UpstreamRegistry": "docker-hub",
        "CredentialArn": credential_arn,
    }


def cross_account() -> dict[str, Any]:
    return {
        "EcrRepositoryPrefix": "team-a",
        "UpstreamRegistryUrl": OTHER_ACCOUNT_ECR,
        "UpstreamRegistry": "ecr",
        "CustomRoleArn": ROLE_ARN,
    }


@pytest.fixture
def stack(invoke: Invoke, response_endpoint: ResponseEndpoint) -> dict[str, str]:
    """The stack under test: three rules (Docker Hub with a credential, ECR Public, another account's ECR with a
    role) and a lifecycle policy on ECR Public (its creation template, and the three repositories cached there
    before it, which it set the policy on); returns the Docker Hub secret's ARN."""
    secret = create_secret("ecr-pullthroughcache/docker-hub")
    for logical_id, properties in (("DockerHub", docker_hub(secret)), ("EcrPublic", ecr_public()),
                                   ("TeamA", cross_account())):  # fmt: skip
        answer = invoke(make_event(response_endpoint, "Create", properties, logical_id=logical_id))
        assert answer["Status"] == "SUCCESS", answer["Reason"]
    for name in CACHED:
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, name)
    lifecycle = {"RepositoryPrefix": "ecr-public", "LifecyclePolicyText": POLICY}
    answer = invoke(
        make_event(
            response_endpoint, "Create", lifecycle, resource_type="Custom::CacheLifecyclePolicy", logical_id="Policy"
        )
    )
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    return {"secret": secret}


def mutating_calls() -> dict[str, int]:
    """How many calls of each ECR operation that changes something reached the emulation."""
    return {name: faults.count(name) for name in faults._ecr_operation_names() if not name.startswith(READ_ONLY)}


Check = Callable[..., dict[str, Any]]


@pytest.fixture
def check_now(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch: Any) -> Check:
    """Run the health check as its schedule does (RepairDrift as `repair` says); the metrics per cache prefix, the
    findings logged, the summary line and what the handler returned. Without `repair`, fails the test when the check
    made any call that changes something in ECR, EventBridge Scheduler or DynamoDB."""
    from ecr_cache_provider import handler
    from ecr_cache_provider.engine.health_check import health_check_event

    calls: list[tuple[str, str]] = []
    original = BaseClient._make_api_call  # type: ignore[attr-defined]  # botocore's one path to every operation

    def counted(client: Any, operation: str, parameters: dict[str, Any]) -> Any:
        calls.append((client.meta.service_model.service_name, operation))
        return original(client, operation, parameters)

    monkeypatch.setattr(BaseClient, "_make_api_call", counted)

    def run(
        remaining_seconds: float = 300.0, repair: bool = False, event: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        monkeypatch.setenv("HEALTH_CHECK_REPAIR_DRIFT", "true" if repair else "false")
        capsys.readouterr()
        caplog.clear()
        calls.clear()
        before = mutating_calls()
        returned = handler.lambda_handler(
            event or health_check_event("cache-health-check"), LambdaContext(remaining_seconds)
        )
        ecr_writes = {name: count - before[name] for name, count in mutating_calls().items() if count != before[name]}
        writes = [(service, name) for service, name in calls if name.startswith(WRITES.get(service, ()))]
        if not repair:
            assert ecr_writes == {}, "the health check wrote to ECR"
            assert writes == [], "the health check wrote to EventBridge Scheduler or DynamoDB"
        metrics: dict[str, dict[str, float]] = {}
        for line in capsys.readouterr().out.splitlines():
            if not line.startswith("{"):
                continue
            document = json.loads(line)
            if "_aws" in document and "CachePrefix" in document:
                for directive in document["_aws"]["CloudWatchMetrics"]:
                    for metric in directive["Metrics"]:
                        value = document[metric["Name"]]  # one value, or a list of them
                        total = sum(value) if isinstance(value, list) else value
                        metrics.setdefault(document["CachePrefix"], {})[metric["Name"]] = total
        lines = [{"message": record.getMessage(), **record.__dict__} for record in caplog.records]
        findings = [line for line in lines if line["message"].startswith("Health check: ")]
        summary = next(line for line in lines if line["message"].startswith(SUMMARY_LINES))
        return {
            "metrics": metrics,
            "findings": findings,
            "summary": summary,
            "returned": returned,
            "ecr_writes": ecr_writes,
            "writes": writes,
            "lines": lines,
        }

    return run


SUMMARY_LINES = ("Health check finished", "Health check stopped", "Health check continues")


def clear(prefixes: list[str]) -> dict[str, dict[str, float]]:
    return {prefix: {"UpstreamLoginFailed": 0, "DriftedSettings": 0, "HealthCheckErrors": 0} for prefix in prefixes}


def test_a_healthy_stack_reports_no_drift(stack: dict[str, str], check_now: Check) -> None:
    result = check_now()

    assert result["metrics"] == clear(["docker-hub", "ecr-public", "team-a"])
    assert result["findings"] == []
    assert result["summary"]["checked"] == 5  # three rules, one template, and the policy's namespace sampled
    assert result["returned"]["sampled"] == {"ecr-public": 3}
    assert result["summary"]["unchecked"] == []


def test_a_rule_pointed_at_another_upstream_is_drift(stack: dict[str, str], check_now: Check, ecr: Any) -> None:
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="registry.k8s.io")

    result = check_now()

    assert result["metrics"]["ecr-public"]["DriftedSettings"] == 1
    assert result["metrics"]["docker-hub"]["DriftedSettings"] == 0
    [finding] = result["findings"]
    assert "UpstreamRegistryUrl" in finding["message"]
    assert finding["repository_prefix"] == "ecr-public"
    assert finding["resource"] == f"{STACK_ID}/EcrPublic"


def test_a_rule_given_another_credential_is_drift(stack: dict[str, str], check_now: Check, ecr: Any) -> None:
    other = create_secret("ecr-pullthroughcache/someone-elses")
    ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", credentialArn=other)

    result = check_now()

    assert result["metrics"]["docker-hub"] == {"UpstreamLoginFailed": 0, "DriftedSettings": 1, "HealthCheckErrors": 0}
    [finding] = result["findings"]
    assert "CredentialArn" in finding["message"]
    assert stack["secret"] not in finding["message"]  # the setting is named, its value is not logged


def test_a_rule_given_another_role_is_drift(stack: dict[str, str], check_now: Check, ecr: Any) -> None:
    ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="team-a", customRoleArn=OTHER_ROLE_ARN)

    result = check_now()

    assert result["metrics"]["team-a"]["DriftedSettings"] == 1
    assert "CustomRoleArn" in result["findings"][0]["message"]


def test_a_refused_upstream_login_reports_ecrs_reason(stack: dict[str, str], check_now: Check) -> None:
    faults.reject_upstream_credentials("docker-hub", "Unable to log in: the upstream rejected the credentials")

    result = check_now()

    assert result["metrics"]["docker-hub"] == {"UpstreamLoginFailed": 1, "DriftedSettings": 0, "HealthCheckErrors": 0}
    assert result["metrics"]["ecr-public"]["UpstreamLoginFailed"] == 0
    [finding] = result["findings"]
    assert finding["metric"] == "UpstreamLoginFailed"
    assert "the upstream rejected the credentials" in finding["message"]


def test_a_deleted_rule_is_drift(stack: dict[str, str], check_now: Check, ecr: Any) -> None:
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="team-a")

    result = check_now()

    assert result["metrics"]["team-a"]["DriftedSettings"] == 1
    assert "the rule was deleted" in result["findings"][0]["message"]


def test_a_deleted_template_is_drift(stack: dict[str, str], check_now: Check, ecr: Any) -> None:
    ecr.delete_repository_creation_template(prefix="ecr-public")

    result = check_now()

    assert result["metrics"]["ecr-public"]["DriftedSettings"] == 1
    [finding] = result["findings"]
    assert finding["checked"] == "repository creation template"
    assert "the template was deleted" in finding["message"]


def test_an_edited_template_is_drift(stack: dict[str, str], check_now: Check, ecr: Any) -> None:
    ecr.update_repository_creation_template(prefix="ecr-public", lifecyclePolicy=json.dumps(policy(days=3, keep=1)))

    result = check_now()

    assert result["metrics"]["ecr-public"]["DriftedSettings"] == 1
    assert "LifecyclePolicy" in result["findings"][0]["message"]


def test_another_stacks_resource_is_checked_as_its_own_and_nobodys_rule_is_left_out(
    invoke: Invoke, response_endpoint: ResponseEndpoint, check_now: Check, ecr: Any
) -> None:
    """A rule of another stack is reported as that stack's resource; a rule nobody owns (made by hand) and a
    resource of another Region are not this check's: neither is reported, nor touched."""
    other = make_event(response_endpoint, "Create", ecr_public("theirs"), logical_id="Theirs")
    other["StackId"] = OTHER_STACK_ID
    assert invoke(other)["Status"] == "SUCCESS"
    elsewhere = make_event(response_endpoint, "Create", ecr_public("elsewhere"), logical_id="Elsewhere")
    elsewhere["StackId"] = OTHER_REGION_STACK_ID
    assert invoke(elsewhere)["Status"] == "SUCCESS"
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="by-hand", upstreamRegistryUrl="quay.io")
    faults.reject_upstream_credentials("by-hand")
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="theirs")

    result = check_now()

    assert set(result["metrics"]) == {"theirs"}  # nothing of nobody's, nothing of another Region's
    assert result["metrics"]["theirs"]["DriftedSettings"] == 1
    assert result["findings"][0]["resource"] == f"{OTHER_STACK_ID}/Theirs"
    by_hand = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["by-hand"])["pullThroughCacheRules"]
    assert by_hand[0]["upstreamRegistryUrl"] == "quay.io"


def test_no_time_to_read_the_ledger_checks_nothing_and_says_so(stack: dict[str, str], check_now: Check) -> None:
    result = check_now(remaining_seconds=20)  # within the deadline's 30-second margin: no time for a call

    assert result["summary"]["message"] == "Health check stopped at the deadline"
    assert result["summary"]["unchecked"] == ["everything: the ledger was not read in time"]
    assert result["metrics"] == {}  # nothing checked: no all-clear is claimed, and no error either


def test_the_deadline_stops_it_between_checks_naming_what_was_not_checked(
    stack: dict[str, str], check_now: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ECR call takes 0.4 s and the run has 0.5 s before the deadline's margin: it stops after a rule or two
    (or before the first, on a slow machine); the hand-off to a follow-up invocation fails, so it names everything
    it did not check."""
    from ecr_cache_provider import continuation

    def refuse(*_: Any) -> None:
        raise RuntimeError("lambda:InvokeFunction refused")

    monkeypatch.setattr(continuation, "hand_off", refuse)
    faults.latency(0.4)

    result = check_now(remaining_seconds=30.5)

    summary = result["summary"]
    assert summary["message"] == "Health check stopped at the deadline"
    assert summary["unchecked"], "the deadline stopped nothing"
    assert summary["checked"] + len(summary["unchecked"]) == 5
    assert set(summary["unchecked"]) <= {
        "cached repositories ecr-public",
        "pull-through cache rule docker-hub",
        "pull-through cache rule ecr-public",
        "pull-through cache rule team-a",
        "repository creation template ecr-public",
    }
    assert result["returned"]["continued"] is False
    assert result["returned"]["unchecked"] == summary["unchecked"]
    assert result["findings"] == []  # stopping is no error, and nothing was found wrong
    assert len(result["metrics"]) <= summary["checked"]  # metrics only for the prefixes checked


def test_throttling_slows_it_down_and_never_fails_it(stack: dict[str, str], check_now: Check) -> None:
    faults.throttle("ValidatePullThroughCacheRule", times=8)
    faults.throttle("DescribeRepositoryCreationTemplates", times=8)

    result = check_now()

    assert result["metrics"] == clear(["docker-hub", "ecr-public", "team-a"])
    assert result["summary"]["ThrottledCalls"] >= 16


def test_the_ledger_keeps_what_was_declared_without_secrets_and_delete_removes_it(
    invoke: Invoke, response_endpoint: ResponseEndpoint
) -> None:
    from ecr_cache_provider.aws.ledger import Ledger, Owner
    from ecr_cache_provider.deadline import Deadline

    secret = create_secret("ecr-pullthroughcache/docker-hub", value='{"username":"u","accessToken":"s3cr3t-t0ken"}')
    ledger = Ledger(Deadline.from_context(LambdaContext()))

    def declared() -> dict[str, Any]:
        found = [item for item in ledger.declared_resources() if item.owner.logical_id == "DockerHub"]
        return found[0].declared if found else {}

    created = invoke(make_event(response_endpoint, "Create", docker_hub(secret), logical_id="DockerHub"))
    kept = declared()
    assert kept["Rule"]["credential_arn"] == secret
    assert kept["Properties"]["CredentialArn"] == secret
    assert "ServiceToken" not in kept["Properties"]
    assert "s3cr3t-t0ken" not in json.dumps(kept)

    rotated = create_secret("ecr-pullthroughcache/docker-hub-2")
    invoke(make_event(response_endpoint, "Update", docker_hub(rotated), logical_id="DockerHub",
                      physical_id=created["PhysicalResourceId"], old_properties=docker_hub(secret)))  # fmt: skip
    assert declared()["Rule"]["credential_arn"] == rotated

    invoke(make_event(response_endpoint, "Delete", docker_hub(rotated), logical_id="DockerHub",
                      physical_id=created["PhysicalResourceId"]))  # fmt: skip
    assert declared() == {}
    assert ledger.resource(Owner(STACK_ID, "DockerHub", "")) is not None  # the record itself stays, marked deleted


def test_an_error_is_counted_for_its_prefix_and_the_others_are_still_checked(
    stack: dict[str, str], check_now: Check
) -> None:
    faults.fail("DescribeRepositoryCreationTemplates", "ServerException", "Internal failure", times=1, status=400)

    result = check_now()

    assert result["metrics"]["ecr-public"] == {"UpstreamLoginFailed": 0, "DriftedSettings": 0, "HealthCheckErrors": 1}
    assert result["metrics"]["docker-hub"] == {"UpstreamLoginFailed": 0, "DriftedSettings": 0, "HealthCheckErrors": 0}
    [finding] = result["findings"]
    assert finding["checked"] == "repository creation template"
    assert "ServerException" in finding["message"]
    assert result["summary"]["checked"] == 5


def test_a_declared_state_too_large_for_an_item_is_not_kept(
    invoke: Invoke, response_endpoint: ResponseEndpoint
) -> None:
    """DynamoDB's 400 KB item limit: a state that compresses to more than DECLARED_LIMIT_BYTES is not written (the
    earlier one is removed, so the check never compares with stale settings); one that fits is."""
    import os

    from ecr_cache_provider.aws.ledger import Ledger, Owner
    from ecr_cache_provider.aws.ledger.resource_records import DECLARED_LIMIT_BYTES
    from ecr_cache_provider.deadline import Deadline

    answer = invoke(make_event(response_endpoint, "Create", ecr_public(), logical_id="EcrPublic"))
    assert answer["Status"] == "SUCCESS"
    ledger = Ledger(Deadline.from_context(LambdaContext()))
    record = ledger.resource(Owner(STACK_ID, "EcrPublic", ""))
    assert record is not None
    owner = Owner(STACK_ID, "EcrPublic", record.request_id)
    assert [item.owner.logical_id for item in ledger.declared_resources()] == ["EcrPublic"]

    incompressible = os.urandom(DECLARED_LIMIT_BYTES).hex()
    assert ledger.keep_declared(owner, {"Properties": {"Huge": incompressible}}) is False
    assert list(ledger.declared_resources()) == []
    assert ledger.keep_declared(owner, {"Properties": {"Large": "x" * 390_000}}) is True  # compresses well
    assert [item.declared["Properties"]["Large"][:3] for item in ledger.declared_resources()] == ["xxx"]


def test_a_ledger_that_cannot_be_read_is_an_error_not_an_all_clear(stack: dict[str, str], check_now: Check) -> None:
    import os

    from emulation import iam

    table = os.environ["OWNERSHIP_TABLE"]
    iam.admin_client("dynamodb").delete_table(TableName=table)

    result = check_now()

    assert result["metrics"] == {"ownership ledger": {"UpstreamLoginFailed": 0, "DriftedSettings": 0,
                                                      "HealthCheckErrors": 1}}  # fmt: skip
    assert "ResourceNotFoundException" in result["findings"][0]["message"]
