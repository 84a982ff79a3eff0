"""Plausible Ref and Fn::GetAtt values for resources that are not emulated (functions, roles, log groups...):
enough for the custom resources' properties to resolve as they would in the account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tools.stack_player.aws import ACCOUNT_ID, REGION

# The property that names a resource, when the template sets it; Ref returns that name.
NAME_PROPERTIES = {
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::ECR::Repository": "RepositoryName",
}

ARNS: dict[str, Callable[[str], str]] = {
    "AWS::Serverless::Function": lambda name: f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
    "AWS::Lambda::Function": lambda name: f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
    "AWS::IAM::Role": lambda name: f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
    "AWS::Logs::LogGroup": lambda name: f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*",
    "AWS::S3::Bucket": lambda name: f"arn:aws:s3:::{name}",
    "AWS::SNS::Topic": lambda name: f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}",
    "AWS::ECR::Repository": lambda name: f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{name}",
}


def native_name(stack_name: str, logical_id: str, resource: dict[str, Any], evaluate: Callable[[Any], Any]) -> str:
    """The name the template gives the resource, else one shaped like CloudFormation's generated names."""
    name_property = NAME_PROPERTIES.get(str(resource.get("Type")))
    properties = resource.get("Properties", {})
    if name_property and name_property in properties:
        return str(evaluate(properties[name_property]))
    return f"{stack_name}-{logical_id}-LOCAL"


def native_attribute(resource_type: str, name: str, attribute: str) -> str:
    if attribute == "Arn":
        arn = ARNS.get(resource_type)
        if arn is not None:
            return arn(name)
        service = resource_type.split("::")[1].lower() if resource_type.count("::") == 2 else "local"
        return f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{name}"
    return f"{name}.{attribute}"
