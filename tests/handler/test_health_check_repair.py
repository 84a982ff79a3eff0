"""The health check through the real handler, beyond rules and templates: registry policy statements, scanning
filters, image expiry schedules and the sampled repositories of a namespace, each compared with what its resource
declared; RepairDrift (HEALTH_CHECK_REPAIR_DRIFT) putting back only what the ledger proves the resource owns, never
another stack's or nobody's, and never while a request of the resource is in progress; upstream logins refused for
a deleted or unusable secret; the summary the handler returns; continuation in a follow-up invocation.

Each drift test has its negative control: without the flag the drift is reported and left (the check_now fixture
fails the test on any write), and with it, what is not the resource's stays as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_cache_provider.aws.ledger import Ledger, Owner, Thing
from ecr_cache_provider.deadline import Deadline
from emulation import iam
from emulation.cloudformation import ACCOUNT_ID, REGION, STACK_ID, LambdaContext, ResponseEndpoint, make_event
from emulation.moto_ecr import faults
from emulation.scheduler import SCHEDULE_GROUP
from tests.conftest import create_secret
from tests.emulation.test_moto_ecr_registry import REPLICATION, registry_statement
from tests.handler.conftest import Invoke
from tests.handler.test_health_check import CACHED, OTHER_STACK_ID, POLICY, Check, check_now, stack
from tests.unit.test_lifecycle_policy import policy

__all__ = ["check_now", "stack"]  # fixtures shared with test_health_check.py

SUMMARY_KEYS = {"checked", "findings", "repaired", "sampled", "unchecked", "continued"}
FINDING_KEYS = {"metric", "prefix", "checked", "detail", "resource"}
REPAIRED_KEYS = {"prefix", "checked", "detail", "resource"}
EXPIRY = {"RepositoryPrefix": "ecr-public", "ExpireAfterDaysWithoutPull": 30}


def ours(sid: str = "OrganizationFillsTheCache") -> dict[str, Any]:
    resource = f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/ecr-public/*"
    return registry_statement(sid, "*", ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"], resource)


def create(invoke: Invoke, endpoint: ResponseEndpoint, resource_type: str, logical_id: str, **properties: Any) -> None:
    answer = invoke(make_event(endpoint, "Create", properties, resource_type=resource_type, logical_id=logical_id))
    assert answer["Status"] == "SUCCESS", answer["Reason"]


@pytest.fixture
def registry(invoke: Invoke, response_endpoint: ResponseEndpoint, ecr: Any) -> Any:
    """A registry policy with someone's replication statement and our statement; enhanced scanning with our
    filter and someone else's rule; an image expiry schedule on the ECR Public cache."""
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [REPLICATION]}))
    ecr.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[
            {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "prod/*", "filterType": "WILDCARD"}]}
        ],
    )
    create(invoke, response_endpoint, "Custom::RegistryPolicyStatements", "Statements", Statements=[ours()])
    create(invoke, response_endpoint, "Custom::RegistryScanningFilters", "Scanning",
           ScanFrequency="SCAN_ON_PUSH", Filters=["ecr-public/*"])  # fmt: skip
    create(invoke, response_endpoint, "Custom::CacheImageExpiry", "Expiry", **EXPIRY)
    return ecr


def policy_statements(ecr: Any) -> list[dict[str, Any]]:
    return list(json.loads(ecr.get_registry_policy()["policyText"])["Statement"])


def scanning(ecr: Any) -> dict[str, list[str]]:
    rules = ecr.get_registry_scanning_configuration()["scanningConfiguration"]["rules"]
    return {rule["scanFrequency"]: [item["filter"] for item in rule["repositoryFilters"]] for rule in rules}


def scheduler() -> Any:
    return iam.admin_client("scheduler")


def the_schedule() -> dict[str, Any]:
    [listed] = scheduler().list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"]
    return dict(scheduler().get_schedule(Name=listed["Name"], GroupName=SCHEDULE_GROUP))


def ledger() -> Ledger:
    return Ledger(Deadline.from_context(LambdaContext()))


def set_by_hand(ecr: Any, repository: str, days: int = 3) -> str:
    text = json.dumps(policy(days=days, keep=1))
    ecr.put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=text)
    return text


def lifecycle(ecr: Any, repository: str) -> Any:
    return json.loads(ecr.get_lifecycle_policy(repositoryName=repository)["lifecyclePolicyText"])


# The summary


def test_the_summary_has_exactly_its_keys_and_is_json(stack: dict[str, str], registry: Any, check_now: Check) -> None:
    registry.delete_pull_through_cache_rule(ecrRepositoryPrefix="team-a")

    returned = check_now()["returned"]

    assert set(returned) == SUMMARY_KEYS
    assert json.loads(json.dumps(returned)) == returned
    assert returned["checked"] == 8  # 3 rules, a template, a namespace, statements, filters, a schedule
    assert returned["sampled"] == {"ecr-public": 3}
    assert returned["unchecked"] == []
    assert returned["continued"] is False
    assert returned["repaired"] == []
    [finding] = returned["findings"]
    assert set(finding) == FINDING_KEYS
    assert finding == {
        "metric": "DriftedSettings",
        "prefix": "team-a",
        "checked": "pull-through cache rule",
        "detail": "missing: the rule was deleted",
        "resource": f"{STACK_ID}/TeamA",
    }


# Registry policy statements


def test_a_dropped_statement_is_drift_and_left_without_the_flag(
    stack: dict[str, str], registry: Any, check_now: Check
) -> None:
    registry.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [REPLICATION]}))

    result = check_now()

    assert result["metrics"]["registry"]["DriftedSettings"] == 1
    [finding] = result["returned"]["findings"]
    assert finding["checked"] == "registry policy statements"
    assert "missing from the registry policy: OrganizationFillsTheCache" in finding["detail"]
    assert policy_statements(registry) == [REPLICATION]  # left as it was


def test_a_dropped_statement_is_put_back_with_the_flag_and_everyone_elses_kept(
    stack: dict[str, str], registry: Any, check_now: Check
) -> None:
    by_hand = REPLICATION | {"Sid": "AddedByHand"}
    registry.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [REPLICATION, by_hand]}))

    result = check_now(repair=True)

    assert policy_statements(registry) == [REPLICATION, by_hand, ours()]
    [repaired] = result["returned"]["repaired"]
    assert set(repaired) == REPAIRED_KEYS
    assert repaired["checked"] == "registry policy statements"
    assert result["metrics"]["registry"]["DriftRepaired"] == 1
    assert result["ecr_writes"] == {"PutRegistryPolicy": 1}
    assert ("dynamodb", "PutItem") in result["writes"]  # the registry policy's lock, as the resource type takes it
    assert check_now()["returned"]["findings"] == []  # the next run finds it healthy


def test_an_edited_statement_is_drift_and_put_back(stack: dict[str, str], registry: Any, check_now: Check) -> None:
    widened = ours() | {"Action": ["ecr:CreateRepository"]}
    registry.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [REPLICATION, widened]}))

    found = check_now()["returned"]["findings"]
    assert "differ from what was declared: OrganizationFillsTheCache" in found[0]["detail"]

    check_now(repair=True)
    assert policy_statements(registry) == [REPLICATION, ours()]


def test_a_statement_whose_sid_the_ledger_does_not_give_the_resource_is_not_repaired(
    stack: dict[str, str], registry: Any, check_now: Check
) -> None:
    ledger().release(Thing("registry policy statement", "OrganizationFillsTheCache"), Owner(STACK_ID, "Statements", ""))
    registry.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [REPLICATION]}))

    result = check_now(repair=True)

    assert policy_statements(registry) == [REPLICATION]
    assert result["returned"]["repaired"] == []
    assert "not repaired: the ledger does not record the registry policy statement" in result["findings"][0]["message"]
    assert result["ecr_writes"] == {}


# Scanning filters


def test_a_removed_scanning_filter_is_drift_and_put_back_with_the_flag(
    stack: dict[str, str], registry: Any, check_now: Check
) -> None:
    rules = [
        {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "prod/*", "filterType": "WILDCARD"}]}
    ]
    registry.put_registry_scanning_configuration(scanType="ENHANCED", rules=rules)

    found = check_now()["returned"]["findings"]
    assert [item["checked"] for item in found] == ["registry scanning filters"]
    assert "missing from the SCAN_ON_PUSH rule: ecr-public/*" in found[0]["detail"]
    assert scanning(registry) == {"CONTINUOUS_SCAN": ["prod/*"]}

    repaired = check_now(repair=True)
    assert scanning(registry) == {"CONTINUOUS_SCAN": ["prod/*"], "SCAN_ON_PUSH": ["ecr-public/*"]}
    assert repaired["ecr_writes"] == {"PutRegistryScanningConfiguration": 1}


def test_scanning_switched_to_basic_is_drift(stack: dict[str, str], registry: Any, check_now: Check) -> None:
    registry.put_registry_scanning_configuration(scanType="BASIC", rules=[])

    found = check_now()["returned"]["findings"]

    assert "the registry's scanning is BASIC, not ENHANCED" in found[0]["detail"]


# Image expiry schedules


def test_a_deleted_expiry_schedule_is_drift_and_made_again_with_the_flag(
    stack: dict[str, str], registry: Any, check_now: Check
) -> None:
    before = the_schedule()
    scheduler().delete_schedule(Name=before["Name"], GroupName=SCHEDULE_GROUP)

    found = check_now()["returned"]["findings"]
    assert [(item["checked"], item["prefix"]) for item in found] == [("image expiry schedule", "ecr-public")]
    assert scheduler().list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []

    result = check_now(repair=True)
    after = the_schedule()
    assert after["ScheduleExpression"] == before["ScheduleExpression"]
    assert json.loads(after["Target"]["Input"]) == json.loads(before["Target"]["Input"])
    assert ("scheduler", "CreateSchedule") in result["writes"]


def test_an_edited_expiry_schedule_is_drift_and_set_back(
    stack: dict[str, str], registry: Any, check_now: Check
) -> None:
    current = the_schedule()
    scheduler().update_schedule(
        Name=current["Name"],
        GroupName=SCHEDULE_GROUP,
        ScheduleExpression="rate(7 days)",
        FlexibleTimeWindow={"Mode": "OFF"},
        State="DISABLED",
        Target=current["Target"],
    )

    found = check_now()["returned"]["findings"]
    assert "differs from what was declared: ScheduleExpression, State" in found[0]["detail"]

    check_now(repair=True)
    assert (the_schedule()["ScheduleExpression"], the_schedule()["State"]) == ("rate(1 day)", "ENABLED")


# Sampled repositories


def test_a_repository_the_resource_set_and_someone_changed_is_drift(
    stack: dict[str, str], check_now: Check, ecr: Any
) -> None:
    set_by_hand(ecr, CACHED[1])

    result = check_now()

    [finding] = result["returned"]["findings"]
    assert finding["checked"] == "cached repositories"
    assert f"repository {CACHED[1]} differs from what was declared: lifecycle_policy" in finding["detail"]
    assert lifecycle(ecr, CACHED[1]) == policy(days=3, keep=1)  # left as it was

    repaired = check_now(repair=True)
    assert lifecycle(ecr, CACHED[1]) == json.loads(POLICY)
    assert [item["detail"] for item in repaired["returned"]["repaired"]] == [
        f"set lifecycle_policy back on {CACHED[1]}"
    ]
    assert repaired["ecr_writes"] == {"PutLifecyclePolicy": 1}
    assert repaired["metrics"]["ecr-public"]["DriftRepaired"] == 1


def test_a_repository_the_resource_never_set_is_not_drift(stack: dict[str, str], check_now: Check, ecr: Any) -> None:
    """A repository ECR cached after the resource's Create got the policy from the template: the ledger has no
    record of the resource setting it, so someone changing it is nobody's drift, and repair leaves it."""
    from emulation import moto_ecr

    moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, "ecr-public/library/later")
    mine = set_by_hand(ecr, "ecr-public/library/later")

    result = check_now(repair=True)

    assert result["returned"]["findings"] == []
    assert result["returned"]["sampled"] == {"ecr-public": 4}
    assert ecr.get_lifecycle_policy(repositoryName="ecr-public/library/later")["lifecyclePolicyText"] == mine
    assert result["ecr_writes"] == {}


def test_the_sample_is_bounded_and_rotates(
    stack: dict[str, str], check_now: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTH_CHECK_SAMPLE_SIZE", "2")
    assert check_now()["returned"]["sampled"] == {"ecr-public": 2}

    monkeypatch.setenv("HEALTH_CHECK_SAMPLE_SIZE", "0")  # sampling off
    assert check_now()["returned"]["sampled"] == {"ecr-public": 0}


# Ownership and requests in progress


def test_a_rule_the_ledger_does_not_give_the_resource_is_not_repaired(
    stack: dict[str, str], check_now: Check, ecr: Any
) -> None:
    ledger().release(Thing("pull-through cache rule", "team-a"), Owner(STACK_ID, "TeamA", ""))
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="team-a")

    result = check_now(repair=True)

    assert result["returned"]["repaired"] == []
    assert "not repaired: the ledger does not record the pull-through cache rule" in result["findings"][0]["message"]
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"][-1]["ecrRepositoryPrefix"] != "team-a"
    assert result["ecr_writes"] == {}


def test_a_resource_with_a_request_in_progress_is_not_repaired_and_says_so(
    stack: dict[str, str], check_now: Check, ecr: Any
) -> None:
    import os

    iam.admin_client("dynamodb").update_item(
        TableName=os.environ["OWNERSHIP_TABLE"],
        Key={"Id": {"S": f"resource/{STACK_ID}/TeamA"}},
        UpdateExpression="SET RequestId = :newer",
        ExpressionAttributeValues={":newer": {"S": "an-update-under-way"}},
    )
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="team-a")

    result = check_now(repair=True)

    assert result["returned"]["repaired"] == []
    assert "not repaired: a request of the resource is in progress" in result["findings"][0]["message"]
    assert result["ecr_writes"] == {}


def test_repair_puts_back_rules_and_templates_it_owns_and_never_another_stacks_or_nobodys(
    invoke: Invoke, response_endpoint: ResponseEndpoint, stack: dict[str, str], check_now: Check, ecr: Any
) -> None:
    """Our rules and template are put back; another stack's rule is put back as that stack's (the ledger proves it
    owns it); a rule nobody owns, edited by hand, is neither checked nor touched."""
    theirs = {"EcrRepositoryPrefix": "theirs", "UpstreamRegistryUrl": "public.ecr.aws"}
    other = make_event(response_endpoint, "Create", theirs, logical_id="Theirs")
    other["StackId"] = OTHER_STACK_ID
    assert invoke(other)["Status"] == "SUCCESS"
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="by-hand", upstreamRegistryUrl="quay.io")
    someone_elses = create_secret("ecr-pullthroughcache/someone-elses")
    ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", credentialArn=someone_elses)
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="registry.k8s.io")
    ecr.delete_repository_creation_template(prefix="ecr-public")
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="by-hand")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="by-hand", upstreamRegistryUrl="registry.k8s.io")

    result = check_now(repair=True)

    rules = {
        rule["ecrRepositoryPrefix"]: rule for rule in ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    }
    assert rules["docker-hub"]["credentialArn"] == stack["secret"]
    assert rules["ecr-public"]["upstreamRegistryUrl"] == "public.ecr.aws"
    assert rules["by-hand"]["upstreamRegistryUrl"] == "registry.k8s.io"  # nobody's: untouched
    template = ecr.describe_repository_creation_templates(prefixes=["ecr-public"])["repositoryCreationTemplates"][0]
    assert json.loads(template["lifecyclePolicy"]) == json.loads(POLICY)
    repaired = {(item["checked"], item["prefix"]) for item in result["returned"]["repaired"]}
    assert repaired == {
        ("pull-through cache rule", "docker-hub"),
        ("pull-through cache rule", "ecr-public"),
        ("repository creation template", "ecr-public"),
    }
    assert all("by-hand" not in item["prefix"] for item in result["returned"]["findings"])
    assert check_now()["returned"]["findings"] == []


def test_a_refused_login_is_never_repaired(stack: dict[str, str], check_now: Check) -> None:
    faults.reject_upstream_credentials("docker-hub")

    result = check_now(repair=True)

    [finding] = result["returned"]["findings"]
    assert finding["metric"] == "UpstreamLoginFailed"
    assert "not repairable" in finding["detail"]
    assert result["returned"]["repaired"] == []
    assert result["ecr_writes"] == {}


# Upstream logins


def test_a_deleted_secret_fails_the_login_with_ecrs_reason(stack: dict[str, str], check_now: Check) -> None:
    iam.admin_client("secretsmanager").delete_secret(SecretId=stack["secret"], ForceDeleteWithoutRecovery=True)

    [finding] = check_now()["returned"]["findings"]

    assert finding["metric"] == "UpstreamLoginFailed"
    assert "The secret does not exist" in finding["detail"]


def test_a_secret_scheduled_for_deletion_fails_the_login(stack: dict[str, str], check_now: Check) -> None:
    iam.admin_client("secretsmanager").delete_secret(SecretId=stack["secret"], RecoveryWindowInDays=7)

    [finding] = check_now()["returned"]["findings"]

    assert finding["metric"] == "UpstreamLoginFailed"
    assert "marked for deletion" in finding["detail"]


def test_a_token_revoked_upstream_fails_the_login(stack: dict[str, str], check_now: Check) -> None:
    secrets = iam.admin_client("secretsmanager")
    faults.revoke_upstream_credentials(
        stack["secret"], json.loads(secrets.get_secret_value(SecretId=stack["secret"])["SecretString"])["accessToken"]
    )

    [finding] = check_now(repair=True)["returned"]["findings"]

    assert finding["metric"] == "UpstreamLoginFailed"
    assert faults.DEFAULT_REJECTION_FAILURE in finding["detail"]
    assert "not repairable" in finding["detail"]


def test_a_secret_without_credentials_fails_the_login(stack: dict[str, str], check_now: Check) -> None:
    iam.admin_client("secretsmanager").put_secret_value(SecretId=stack["secret"], SecretString="not credentials")

    [finding] = check_now()["returned"]["findings"]

    assert finding["metric"] == "UpstreamLoginFailed"
    assert "does not contain valid upstream credentials" in finding["detail"]


# Continuation


def test_a_run_that_does_not_fit_continues_where_it_stopped(
    stack: dict[str, str], registry: Any, check_now: Check, handed: list[dict[str, Any]]
) -> None:
    """Each ECR call takes 0.3 s and each invocation has 1.5 s before the deadline's margin: the run hands the rest
    to follow-up invocations, each going on after the last thing checked, until everything was checked once."""
    from ecr_cache_provider.engine.health_check import HEALTH_CHECK_KEY

    faults.latency(0.3)

    checked, event = 0, None
    for _ in range(12):
        result = check_now(remaining_seconds=31.5, event=event)
        checked += result["returned"]["checked"]
        if not result["returned"]["continued"]:
            break
        event = handed[-1]
        assert HEALTH_CHECK_KEY in event
        assert event["CacheProviderProgress"]["cursor"]
    assert len(handed) >= 1, "the run never continued"
    assert result["returned"]["continued"] is False
    assert result["returned"]["unchecked"] == []
    assert checked == 8  # everything once: nothing skipped, nothing checked twice
