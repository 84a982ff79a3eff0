"""The Lambda entry point: crhelper answers CloudFormation, Powertools logs and counts, and each request goes
to the module of its ResourceType."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ecr_cache_provider.observability import count_outcome, logger, metrics
from ecr_cache_provider.responder import CloudFormationResponder

helper = CloudFormationResponder()

try:
    # Everything that can fail at import comes after the responder exists, so such a failure is still answered.
    from ecr_cache_provider import pull_through_cache_rule
    from ecr_cache_provider.deadline import Deadline
    from ecr_cache_provider.ecr import EcrGateway
    from ecr_cache_provider.resource import Request, ResourceFailure, issued_at

    RESOURCE_TYPES: dict[str, ModuleType] = {module.RESOURCE_TYPE: module for module in (pull_through_cache_rule,)}
except Exception as error:  # any import failure must become a FAILED answer, never a silent stack
    logger.exception("The provider failed to load")
    helper.init_failure(error)


@logger.inject_lambda_context(correlation_id_path="RequestId", clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    logger.append_keys(
        RequestId=event.get("RequestId"),
        LogicalResourceId=event.get("LogicalResourceId"),
        ResourceType=event.get("ResourceType"),
        RequestType=event.get("RequestType"),
    )
    # Never the whole event: its ResponseURL lets whoever holds it answer for the stack.
    logger.debug(
        "Received request",
        extra={"PhysicalResourceId": event.get("PhysicalResourceId"), "properties": event.get("ResourceProperties")},
    )
    helper(event, context)


def handle(event: dict[str, Any], context: LambdaContext) -> str:
    """Carry out one request; what it returns is the physical id, what it raises becomes FAILED."""
    request = _request(event, context)
    try:
        physical_id = _carry_out(request)
    except Exception as error:
        count_outcome(request.resource_type, request.request_type, "Failed")
        if request.request_type == "Create":
            failed_id = error.physical_id if isinstance(error, ResourceFailure) else None
            helper.PhysicalResourceId = failed_id or request.failed_create_id
        if isinstance(error, ResourceFailure):
            raise
        logger.exception("Unexpected error")
        raise ResourceFailure(f"Unexpected {type(error).__name__}: {error}") from error
    count_outcome(request.resource_type, request.request_type, "Succeeded")
    return physical_id


def _carry_out(request: Request) -> str:
    resource = RESOURCE_TYPES.get(request.resource_type)
    if resource is None:
        if request.request_type == "Delete":
            return request.physical_id  # nothing of an unknown type was ever made; failing would wedge the stack
        raise ResourceFailure(
            f"Unsupported resource type {request.resource_type!r}; this provider serves {', '.join(RESOURCE_TYPES)}"
        )
    ecr = EcrGateway(request.deadline, request.region or None)
    if request.request_type == "Delete":
        resource.delete(request, ecr)
        return request.physical_id
    operation = resource.create if request.request_type == "Create" else resource.update
    result = operation(request, ecr)
    helper.Data.update(result.data)
    return str(result.physical_id)


helper.create(handle)
helper.update(handle)
helper.delete(handle)


def _request(event: dict[str, Any], context: LambdaContext) -> Request:
    return Request(
        request_type=event["RequestType"],
        resource_type=event.get("ResourceType", ""),
        logical_id=event.get("LogicalResourceId", ""),
        stack_id=event.get("StackId", ""),
        request_id=event.get("RequestId", ""),
        properties=dict(event.get("ResourceProperties") or {}),
        old_properties=dict(event.get("OldResourceProperties") or {}),
        physical_id=event.get("PhysicalResourceId", ""),
        deadline=Deadline.from_context(context),
        issued_at=issued_at(event.get("ResponseURL", "")),
    )
