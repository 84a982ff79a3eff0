"""The IAM template.yaml ships, resolved for a stack: the policies of each role, as IAM would hold them once the
stack is deployed, and the principals emulation/iam evaluates calls against.

A role's policies are its own `Policies` plus every AWS::IAM::RolePolicy, AWS::IAM::Policy and AWS::IAM::ManagedPolicy
of the stack attached to it (RoleName, Roles). They are resolved with the stack's parameters, pseudo parameters and
the physical ids of its resources, by the stack player's renderer (tools/stack_player/template.py).

The tiers that run the handler outside a played stack (tests/handler, tests/integration, tests/built) use one fixed
test stack (`TestStack`): the template's defaults, every cache on, and the namespaces those tests manage as
ConsumerRepositoryPrefixes. Its resources resolve to the names the emulation gives them (the ownership table, the
schedule group, the scheduler's role, the function).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from emulation import iam
from emulation.cloudformation import ACCOUNT_ID, FUNCTION_NAME, REGION, STACK_ID
from emulation.ownership import TABLE_NAME
from emulation.scheduler import SCHEDULE_GROUP, SCHEDULER_ROLE_ARN
from tools.stack_player.native import native_attribute, native_physical_id
from tools.stack_player.template import Renderer, Template, TemplateError, resolve_parameters

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
PROVIDER_ROLE = "ProviderRole"
PROVIDER_FUNCTION = "ProviderFunction"
SCHEDULER_ROLE = "ImageExpirySchedulerRole"
HEALTH_CHECK_SCHEDULER_ROLE = "HealthCheckSchedulerRole"
# Access keys of the principals (20 characters, as AWS's; ASIA: temporary credentials of an assumed role).
PROVIDER_ACCESS_KEY = "ASIAEMULATEDPROVIDER"
SCHEDULER_ACCESS_KEY = "ASIAEMULATEDSCHEDULE"
HEALTH_CHECK_ACCESS_KEY = "ASIAEMULATEDHEALTHCH"

POLICY_TYPES = ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def role_policies(renderer: Renderer, role: str) -> list[dict[str, Any]]:
    """The identity-based policy documents of the stack's role `role` (a logical id), resolved."""
    resources = renderer.active_resources()
    role_name = renderer.ref(role)
    documents = [dict(policy["PolicyDocument"]) for policy in renderer.evaluate(
        resources[role].get("Properties", {}).get("Policies", []))]  # fmt: skip
    for resource in resources.values():
        if resource.get("Type") in POLICY_TYPES and attaches_to(renderer, resource, role_name):
            documents.append(dict(renderer.evaluate(resource["Properties"]["PolicyDocument"])))
    return documents


def attaches_to(renderer: Renderer, resource: Mapping[str, Any], role_name: str) -> bool:
    """Whether a policy resource attaches to the role named `role_name`."""
    properties = resource.get("Properties", {})
    if resource.get("Type") == "AWS::IAM::RolePolicy":
        return bool(renderer.evaluate(properties.get("RoleName")) == role_name)
    return role_name in renderer.evaluate(properties.get("Roles", []))


@dataclass(frozen=True)
class TestStack:
    """template.yaml deployed as the test stack of the tiers that run the handler on their own."""

    # The namespaces tests/handler, tests/integration and tests/built manage besides the default caches'.
    consumer_repository_prefixes: str = ""
    overrides: tuple[tuple[str, str], ...] = ()

    @cached_property
    def renderer(self) -> Renderer:
        template = Template.load(TEMPLATE)
        overrides = dict(self.overrides)
        if self.consumer_repository_prefixes:
            overrides["ConsumerRepositoryPrefixes"] = self.consumer_repository_prefixes
        parameters = resolve_parameters(template, overrides)
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_ID.split("/")[1],
            "AWS::StackId": STACK_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        renderer = Renderer(template, parameters, pseudo, lambda logical_id, attribute: None)
        renderer.resolve_resource = lambda logical_id, attribute: self._resolve(renderer, logical_id, attribute)
        return renderer

    def _resolve(self, renderer: Renderer, logical_id: str, attribute: str | None) -> Any:
        named = {
            "OwnershipTable": TABLE_NAME,
            "ImageExpiryScheduleGroup": SCHEDULE_GROUP,
            SCHEDULER_ROLE: SCHEDULER_ROLE_ARN.rsplit("/", 1)[1],
            PROVIDER_FUNCTION: FUNCTION_NAME,
        }
        resource = renderer.template.resources[logical_id]
        resource_type = str(resource["Type"])
        if resource_type.startswith("Custom::"):  # a cache rule: its prefix as the rule answers it
            if attribute != "EcrRepositoryPrefix":
                raise TemplateError(f"The test stack does not resolve {logical_id}.{attribute}")
            return str(renderer.evaluate(resource["Properties"]["EcrRepositoryPrefix"])).rstrip("/")
        name = named.get(logical_id) or native_physical_id(renderer.pseudo["AWS::StackName"], logical_id, resource,
                                                           renderer.evaluate)  # fmt: skip
        return name if attribute is None else native_attribute(resource_type, name, attribute)

    def function_environment(self) -> dict[str, str]:
        """The environment variables the template gives the provider function."""
        function = self.renderer.template.lambda_function(PROVIDER_FUNCTION)
        variables = self.renderer.evaluate(function.get("Environment", {}).get("Variables", {}))
        return {name: str(value) for name, value in variables.items()}

    def log_group(self) -> str:
        function = self.renderer.template.lambda_function(PROVIDER_FUNCTION)
        return str(self.renderer.evaluate(function["LoggingConfig"]["LogGroup"]))

    def lambda_writes_logs(self) -> None:
        """Lambda writes each invocation's logs with the function's execution role: a stream in its log group."""
        stream = f"{self.log_group_arn()}:log-stream:2026/12/04/[$LATEST]0123456789abcdef"
        needed = [iam.Authorization(action, stream) for action in ("logs:CreateLogStream", "logs:PutLogEvents")]
        # The role as granted now (a test may have changed it); Lambda drops logs it may not write and runs the
        # function: a denial is recorded, and fails the test.
        principal = iam.principal_for(self.provider.access_key) or self.provider
        with suppress(iam.Denied):
            iam.check(principal, "Lambda writing the function's logs", needed, REGION)

    def log_group_arn(self) -> str:
        return f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{self.log_group()}"

    @cached_property
    def provider(self) -> iam.Principal:
        """The provider function's execution role, as Lambda's credentials present it."""
        arn = iam.role_session_arn(str(self.renderer.ref(PROVIDER_ROLE)), FUNCTION_NAME)
        return iam.Principal(arn, role_policies(self.renderer, PROVIDER_ROLE), access_key=PROVIDER_ACCESS_KEY)

    @cached_property
    def scheduler(self) -> iam.Principal:
        """The role the image expiry schedules invoke the function with."""
        arn = iam.role_session_arn(str(self.renderer.ref(SCHEDULER_ROLE)), "scheduler")
        return iam.Principal(arn, role_policies(self.renderer, SCHEDULER_ROLE), access_key=SCHEDULER_ACCESS_KEY)

    @cached_property
    def health_check_scheduler(self) -> iam.Principal:
        """The role the health check's schedule invokes the function with (HealthCheckSchedule set)."""
        arn = iam.role_session_arn(str(self.renderer.ref(HEALTH_CHECK_SCHEDULER_ROLE)), "scheduler")
        return iam.Principal(
            arn, role_policies(self.renderer, HEALTH_CHECK_SCHEDULER_ROLE), access_key=HEALTH_CHECK_ACCESS_KEY
        )
