"""Plausible Ref and Fn::GetAtt values for resources that are not emulated (functions, roles, log groups...):
what CloudFormation would return for them in the account, so that the custom resources' properties and the
outputs resolve as they would there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from emulation.cloudformation import ACCOUNT_ID, REGION

# The property that names a resource, when the template sets it.
NAME_PROPERTIES = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::Scheduler::ScheduleGroup": "Name",
}

ARNS: dict[str, Callable[[str], str]] = {
    "AWS::Lambda::Function": lambda name: f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
    "AWS::IAM::Role": lambda name: f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
    "AWS::IAM::ManagedPolicy": lambda name: f"arn:aws:iam::{ACCOUNT_ID}:policy/{name}",
    "AWS::Logs::LogGroup": lambda name: f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*",
    "AWS::S3::Bucket": lambda name: f"arn:aws:s3:::{name}",
    "AWS::SNS::Topic": lambda name: f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}",
    "AWS::ECR::Repository": lambda name: f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{name}",
    "AWS::Scheduler::ScheduleGroup": lambda name: f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule-group/{name}",
    "AWS::DynamoDB::Table": lambda name: f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}",
}

# Types whose Ref is their ARN rather than their name (CloudFormation's resource reference, "Return values").
REF_IS_ARN = {"AWS::IAM::ManagedPolicy", "AWS::SNS::Topic"}


def native_physical_id(
    stack_name: str, logical_id: str, resource: dict[str, Any], evaluate: Callable[[Any], Any], stack_id: str = ""
) -> str:
    """What Ref returns: the name the template gives the resource, else one shaped like CloudFormation's
    generated names; the ARN for the types whose Ref is an ARN.

    CloudFormation ends a generated name with a unique suffix (user guide, aws-properties-name.html: "If you don't
    specify a name, CloudFormation generates a unique physical ID"). Here it is LOCAL, but for a retained resource
    (DeletionPolicy Retain), which outlives its stack: a stack created again under the same name makes a new one
    beside the retained one, so its suffix comes from the stack's id, new with each stack."""
    resource_type = str(resource.get("Type"))
    name_property = NAME_PROPERTIES.get(resource_type)
    properties = resource.get("Properties", {})
    if name_property and name_property in properties:
        name = str(evaluate(properties[name_property]))
    elif resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate") and stack_id:
        name = f"{stack_name}-{logical_id}-{stack_id.rsplit('/', 1)[-1].replace('-', '')[:12].upper()}"
    else:
        name = f"{stack_name}-{logical_id}-LOCAL"
    return ARNS[resource_type](name) if resource_type in REF_IS_ARN else name


def native_attribute(resource_type: str, physical_id: str, attribute: str) -> str:
    if attribute in ("Arn", "PolicyArn") and resource_type in REF_IS_ARN:
        return physical_id
    if attribute == "Arn":
        arn = ARNS.get(resource_type)
        if arn is not None:
            return arn(physical_id)
        service = resource_type.split("::")[1].lower() if resource_type.count("::") == 2 else "local"
        return f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{physical_id}"
    return f"{physical_id}.{attribute}"


def replaces(resource_type: str, before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether CloudFormation replaces the resource for this change: a property its resource schema lists as
    create-only changed (cfn-lint bundles the schemas CloudFormation publishes)."""
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, resource_type).schema
    except Exception:
        return False
    names = [path.removeprefix("/properties/").split("/")[0] for path in schema.get("createOnlyProperties", [])]
    return any(before.get(name) != after.get(name) for name in names)


def next_physical_id(previous: str, fresh: str) -> str:
    """The physical id of a replacement: another generated name than the resource had (a name the template gives
    cannot be replaced by CloudFormation, which refuses to, so the fresh one is returned as it is)."""
    if previous != fresh:
        return fresh
    stem, _, generation = previous.rpartition("-LOCAL")
    return f"{stem}-LOCAL{int(generation or 1) + 1}" if stem else f"{previous}-2"
