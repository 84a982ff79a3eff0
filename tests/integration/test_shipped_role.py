"""The role template.yaml ships, action by action: one scenario makes every kind of call the provider makes (each
resource type's Create, Update and Delete, a continuation, a scheduled sweep, a pull through the cache), as the
provider's role and, for the sweep, as the schedules' role; the health check as its schedule's role invokes it. It
passes with the shipped policies; with any one action taken out of any one statement, some call of it is denied,
naming that action.

So every action the role grants is needed (none is there for nothing), and removing any one of them from
template.yaml fails `make test` naming it (the scenario sees the denial; tests/conftest.py's `iam_enforced` fails
any other test that meets one)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cfnlint.decode import decode

from emulation import iam
from emulation.cloudformation import ACCOUNT_ID, REGION, STACK_ID, ResponseEndpoint, make_event
from emulation.lambda_emulator import LambdaEmulator
from emulation.moto_ecr import seed_image, simulate_cached_pull
from emulation.registry import EcrRegistryEndpoint, UpstreamRegistry
from emulation.scheduler import SCHEDULE_GROUP
from emulation.stacks import set_stack_status
from tests.conftest import create_secret, stack_under_test
from tests.handler.test_cached_repository_settings import ORGANIZATION_PULLS
from tests.handler.test_image_expiry_in_use import REGISTRY, ecs_workloads, image_function
from tests.integration.test_cache_lifecycle_policy_backfill import answered_once
from tests.unit.test_lifecycle_policy import policy
from tools.sam_transform import expand, plain
from tools.shipped_iam import HEALTH_CHECK_SCHEDULER_ROLE, PROVIDER_ROLE, SCHEDULER_ROLE

pytestmark = [pytest.mark.integration, pytest.mark.denials_expected]

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
OTHER_ACCOUNT = "210987654321"


def granted(role: str) -> list[tuple[str, str]]:
    """(Sid, action) of every statement of the role's policies in template.yaml, as written there (expanded)."""
    body, errors = decode(str(TEMPLATE))
    assert not errors
    assert body is not None
    resources = expand(plain(body))["Resources"]  # its Fn::ForEach loops written out, as CloudFormation reads it
    documents = [policy["PolicyDocument"] for policy in resources[role]["Properties"].get("Policies", [])]
    for resource in resources.values():
        properties = resource.get("Properties", {})
        attached = [properties.get("RoleName"), *properties.get("Roles", [])]
        if resource["Type"].startswith("AWS::IAM::") and {"Ref": role} in attached:
            documents.append(properties["PolicyDocument"])
    pairs = []
    for document in documents:
        for statement in document["Statement"]:
            actions = statement["Action"]
            pairs += [
                (str(statement["Sid"]), str(action)) for action in (actions if isinstance(actions, list) else [actions])
            ]
    return pairs


PROVIDER_GRANTS = granted(PROVIDER_ROLE)
SCHEDULER_GRANTS = granted(SCHEDULER_ROLE)
HEALTH_CHECK_GRANTS = granted(HEALTH_CHECK_SCHEDULER_ROLE)


def without(policies: Sequence[Mapping[str, Any]], sid: str, action: str) -> list[dict[str, Any]]:
    """The policies with `action` taken out of the statement `sid` (the statement gone when nothing is left)."""
    changed = [copy.deepcopy(dict(document)) for document in policies]
    found = False
    for document in changed:
        kept = []
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement.get("Sid") == sid and action in actions:
                found = True
                statement["Action"] = [name for name in actions if name != action]
                if not statement["Action"]:
                    continue
            kept.append(statement)
        document["Statement"] = kept
    assert found, f"no statement {sid} grants {action}"
    return changed


def grant_without(principal: iam.Principal, sid: str, action: str) -> None:
    """From now on the principal's calls are evaluated without `action` in its statement `sid`."""
    iam.grant(iam.Principal(principal.arn, without(principal.policies, sid, action), access_key=principal.access_key))


def ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


Step = Callable[[], dict[str, Any]]


@pytest.fixture
def registries(aws_endpoint: str) -> Iterator[UpstreamRegistry]:
    """Docker Hub, served locally with an image, behind the local ECR registry endpoint (Custom::CacheWarmUp)."""
    upstream = UpstreamRegistry()
    upstream.add_image("library/nginx", "1.27", (1024, 4096))
    endpoint = EcrRegistryEndpoint(ACCOUNT_ID, REGION)
    endpoint.serve_upstream("registry-1.docker.io", upstream)
    yield upstream
    endpoint.close()
    upstream.close()


@pytest.fixture
def scenario(
    aws_endpoint: str,
    ecr: Any,
    response_endpoint: ResponseEndpoint,
    lambda_service: LambdaEmulator,
    small_batches: None,
    registries: UpstreamRegistry,
) -> Callable[[], Iterator[str]]:
    """Every kind of call the provider makes, one request (or sweep) a step; yields each step's name once done."""
    hub_secret = create_secret("ecr-pullthroughcache/docker-hub")
    rotated_secret = create_secret("ecr-pullthroughcache/docker-hub-rotated")
    admin_iam = iam.admin_client("iam", endpoint_url=aws_endpoint)
    upstream_role = admin_iam.create_role(RoleName="ecr-upstream", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    template_role = admin_iam.create_role(RoleName="ecr-template", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    scheduler_admin = iam.admin_client("scheduler", endpoint_url=aws_endpoint)
    stack = stack_under_test()

    def request(resource_type: str, logical_id: str, request_type: str, properties: dict[str, Any], **kw: Any) -> Any:
        event = make_event(response_endpoint, request_type, properties, resource_type=resource_type,
                           logical_id=logical_id, **kw)  # fmt: skip
        return answered_once(lambda_service, response_endpoint, event)

    def run() -> Iterator[str]:
        hub = {"EcrRepositoryPrefix": "docker-hub", "UpstreamRegistryUrl": "registry-1.docker.io",
               "CredentialArn": hub_secret}  # fmt: skip
        rule = "Custom::PullThroughCacheRule"
        yield step("rule created", request(rule, "HubRule", "Create", hub))
        rotated = hub | {"CredentialArn": rotated_secret}
        update = {"physical_id": "docker-hub", "old_properties": hub}
        yield step("credential rotated", request(rule, "HubRule", "Update", rotated, **update))
        other_ecr = {
            "EcrRepositoryPrefix": "mirror",
            "UpstreamRegistry": "ecr",
            "UpstreamRegistryUrl": f"{OTHER_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
            "CustomRoleArn": upstream_role,
            "Validate": False,
        }
        yield step("ECR upstream with a role", request(rule, "MirrorRule", "Create", other_ecr))

        for number in range(12):  # two invocations' worth of repositories (small batches: 8 each)
            simulate_cached_pull(ACCOUNT_ID, REGION, f"docker-hub/library/image-{number:02d}")
        settings = {
            "RepositoryPrefix": "docker-hub",
            "LifecyclePolicyText": json.dumps(policy()),
            "RepositoryPolicyText": json.dumps(ORGANIZATION_PULLS),
            "ResourceTags": [{"Key": "cache", "Value": "docker-hub"}],
            "CustomRoleArn": template_role,
            "ImageTagMutability": "IMMUTABLE",
        }
        kind = "Custom::CachedRepositorySettings"
        yield step("settings created", request(kind, "HubSettings", "Create", settings))
        changed = {key: value for key, value in settings.items() if key != "ResourceTags"}
        changed["LifecyclePolicyText"] = json.dumps(policy(days=30))
        yield step("settings updated", request(kind, "HubSettings", "Update", changed, physical_id="docker-hub",
                                               old_properties=settings))  # fmt: skip
        yield step("settings deleted", request(kind, "HubSettings", "Delete", changed, physical_id="docker-hub"))

        fills = {
            "Sid": "OrganizationFills",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"],
            "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/docker-hub/*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-exampleorg1"}},
        }
        statements = {"Statements": [fills]}
        kind = "Custom::RegistryPolicyStatements"
        made = request(kind, "Statements", "Create", statements)
        yield step("registry statement put", made)
        yield step("registry statement deleted", request(kind, "Statements", "Delete", statements,
                                                         physical_id=made["PhysicalResourceId"]))  # fmt: skip
        scanning = {"ScanFrequency": "SCAN_ON_PUSH", "Filters": ["docker-hub/*"], "AllowEnhancedScanning": True}
        kind = "Custom::RegistryScanningFilters"
        made = request(kind, "Scanning", "Create", scanning)
        yield step("scanning filter put", made)
        yield step("scanning filter deleted", request(kind, "Scanning", "Delete", scanning,
                                                      physical_id=made["PhysicalResourceId"]))  # fmt: skip

        expiry = {"RepositoryPrefix": "docker-hub", "ExpireAfterDaysWithoutPull": 30, "DeleteEmptyRepositories": True}
        kind = "Custom::CacheImageExpiry"
        made = request(kind, "HubExpiry", "Create", expiry)
        yield step("expiry schedule created", made)
        name = made["PhysicalResourceId"]
        longer = expiry | {"ExpireAfterDaysWithoutPull": 60}
        update = {"physical_id": name, "old_properties": expiry}
        yield step("expiry schedule updated", request(kind, "HubExpiry", "Update", longer, **update))
        old = "docker-hub/library/old"
        children = tuple(
            seed_image(ACCOUNT_ID, REGION, old, pushed_at=ago(300), last_pulled_at=ago(200), name=f"manifest-{n}")
            for n in range(2)
        )
        seed_image(ACCOUNT_ID, REGION, old, pushed_at=ago(300), tags=("v1",), references=children)
        # Images in use, which the sweep reads (Lambda and ECS) and keeps.
        seed_image(ACCOUNT_ID, REGION, "docker-hub/library/app", pushed_at=ago(300), tags=("1",), name="in-use")
        in_use = f"{REGISTRY}/docker-hub/library/app:1"
        image_function("api", in_use, aws_endpoint)
        ecs_workloads(in_use, in_use, aws_endpoint)
        sweep(scheduler_admin.get_schedule(Name=name, GroupName=SCHEDULE_GROUP)["Target"])
        yield "swept"
        yield step("expiry schedule deleted", request(kind, "HubExpiry", "Delete", longer, physical_id=name))
        # A first pull through the cache (the repository made on the way), then ECR asked until it has the image.
        warm_up = {"RepositoryPrefix": "docker-hub", "Images": ["library/nginx:1.27"]}
        made = request("Custom::CacheWarmUp", "HubWarmUp", "Create", warm_up)
        yield step("cache warmed", made)
        yield step("warm-up deleted", request("Custom::CacheWarmUp", "HubWarmUp", "Delete", warm_up,
                                              physical_id=made["PhysicalResourceId"]))  # fmt: skip
        yield step("rule deleted", request(rule, "HubRule", "Delete", rotated, physical_id="docker-hub"))

        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="team", upstreamRegistryUrl="quay.io")
        adopting = {"EcrRepositoryPrefix": "team", "UpstreamRegistryUrl": "quay.io", "AdoptExisting": True}
        yield step("rule adopted", request(rule, "TeamRule", "Create", adopting))
        # Its Delete asks CloudFormation whether the stack rolls back (DescribeStacks): then it hands the rule back.
        yield step("adopted rule handed back", request(rule, "TeamRule", "Delete", adopting, physical_id="team"))

        # A cache deleted with the stack takes its repositories with it (DeleteCachedRepositoriesOnDelete).
        cleaning = {"EcrRepositoryPrefix": "ghcr", "UpstreamRegistryUrl": "public.ecr.aws", "Validate": False,
                    "DeleteCachedRepositoriesOnDelete": True}  # fmt: skip
        yield step("rule with clean-up created", request(rule, "GhcrRule", "Create", cleaning))
        seed_image(ACCOUNT_ID, REGION, "ghcr/org/tool", pushed_at=ago(1), tags=("1",))
        set_stack_status(STACK_ID, "DELETE_IN_PROGRESS")
        yield step("cache deleted with its repositories", request(rule, "GhcrRule", "Delete", cleaning,
                                                                    physical_id="ghcr"))  # fmt: skip

    def sweep(target: dict[str, Any]) -> None:
        invoke_as_scheduler(lambda_service, stack.scheduler, target)  # denied: dropped (the denial is recorded)

    return run


def invoke_as_scheduler(lambda_service: LambdaEmulator, role: iam.Principal, target: dict[str, Any]) -> bool:
    """EventBridge Scheduler invokes the target with the schedule's role (its credentials, as granted now); whether
    the invocation was accepted (a denied one is dropped, the denial recorded)."""
    client = boto3.client(
        "lambda",
        endpoint_url=lambda_service.url,
        aws_access_key_id=role.access_key,
        aws_secret_access_key="emulated-secret-access-key",
        aws_session_token="emulated-session-token",
    )
    try:
        client.invoke(FunctionName=target["Arn"], InvocationType="Event", Payload=target["Input"].encode())
    except ClientError:
        return False
    lambda_service.wait_idle()
    return True


def step(name: str, answer: dict[str, Any]) -> str:
    """The step's name, once its request was answered (a denial makes it FAILED: the caller looks at denials)."""
    return f"{name}: {answer['Status']} {answer.get('Reason', '')}".strip()


def test_the_shipped_role_allows_every_call_of_the_scenario(scenario: Callable[[], Iterator[str]]) -> None:
    done = list(scenario())

    assert all(": SUCCESS" in name for name in done if name != "swept"), done
    assert iam.denials() == []
    assert len(iam.evaluations()) > 100


@pytest.mark.parametrize(("sid", "action"), PROVIDER_GRANTS, ids=[f"{s}-{a}" for s, a in PROVIDER_GRANTS])
def test_without_any_action_of_the_providers_role_a_call_is_denied_naming_it(
    scenario: Callable[[], Iterator[str]], sid: str, action: str
) -> None:
    grant_without(stack_under_test().provider, sid, action)
    played = []
    for name in scenario():
        played.append(name)
        if any(denial.action == action for denial in iam.denials()):
            break

    denied = [str(denial) for denial in iam.denials() if denial.action == action]
    assert denied, f"without {action} in statement {sid}, the scenario ({', '.join(played)}) is never denied"


@pytest.mark.parametrize(
    ("sid", "action"), SCHEDULER_GRANTS, ids=[f"{sid}-{action}" for sid, action in SCHEDULER_GRANTS]
)
def test_without_the_schedules_invoke_permission_the_sweep_is_denied(
    scenario: Callable[[], Iterator[str]], sid: str, action: str
) -> None:
    grant_without(stack_under_test().scheduler, sid, action)
    for _ in scenario():
        pass

    assert [denial.action for denial in iam.denials()] == [action]


def run_the_health_check_schedule(lambda_service: LambdaEmulator) -> bool:
    """EventBridge Scheduler runs the health check schedule's target (as template.yaml makes it) with the
    schedule's role; whether the invocation was accepted (a denied one is dropped, the denial recorded)."""
    stack = stack_under_test()
    resource = stack.renderer.active_resources()["ProviderHealthCheckSchedule"]
    target = stack.renderer.evaluate(resource["Properties"]["Target"])
    assert target["RoleArn"].endswith(f"/{stack.renderer.ref(HEALTH_CHECK_SCHEDULER_ROLE)}")
    return invoke_as_scheduler(lambda_service, stack.health_check_scheduler, target)


def test_the_health_check_schedules_role_invokes_the_health_check(
    aws_endpoint: str, lambda_service: LambdaEmulator
) -> None:
    assert run_the_health_check_schedule(lambda_service)

    assert iam.denials() == []
    (event,) = lambda_service.invocations
    assert "CacheProviderHealthCheck" in event


@pytest.mark.parametrize(
    ("sid", "action"), HEALTH_CHECK_GRANTS, ids=[f"{sid}-{action}" for sid, action in HEALTH_CHECK_GRANTS]
)
def test_without_the_health_check_schedules_invoke_permission_the_check_is_denied(
    aws_endpoint: str, lambda_service: LambdaEmulator, sid: str, action: str
) -> None:
    grant_without(stack_under_test().health_check_scheduler, sid, action)

    assert not run_the_health_check_schedule(lambda_service)

    assert [denial.action for denial in iam.denials()] == [action]
    assert lambda_service.invocations == []
