"""What the entry point (handler.py) loads once its responder exists: Powertools logs and counts, and each request
goes to the module of its ResourceType."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ecr_cache_provider import continuation
from ecr_cache_provider.continuation import ContinueLater
from ecr_cache_provider.contract import Request, RequestContext, ResourceType, Result
from ecr_cache_provider.deadline import Deadline
from ecr_cache_provider.engine import expiry_sweep, health_check, warm_up
from ecr_cache_provider.engine.declared_state import declared_properties
from ecr_cache_provider.failures import ResourceFailure, Superseded, aws_message, reason_for
from ecr_cache_provider.observability import count_outcome, count_throttled, logger, metrics
from ecr_cache_provider.responder import CloudFormationResponder
from ecr_cache_provider.types import RESOURCE_TYPES

helper: CloudFormationResponder  # the entry point's responder, set by attach()


def attach(responder: CloudFormationResponder) -> None:
    """Serve the entry point's responder: crhelper calls `handle` for Create, Update and Delete."""
    global helper  # noqa: PLW0603 - one responder per Lambda execution environment, made by the entry point
    helper = responder
    for register in (responder.create, responder.update, responder.delete):
        register(handle)


@logger.inject_lambda_context(correlation_id_path="RequestId", clear_state=True)
@metrics.log_metrics
def serve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
    if expiry_sweep.is_sweep(event):
        # A schedule's invocation, not a CloudFormation request: there is no ResponseURL and nothing to answer.
        logger.append_keys(schedule=event[expiry_sweep.SWEEP_KEY].get("schedule"))
        expiry_sweep.run(event, context)
        return None
    if warm_up.is_refresh(event):
        # A warm-up's refresh schedule: like a sweep, no CloudFormation request and nothing to answer.
        logger.append_keys(schedule=event[warm_up.REFRESH_KEY].get("schedule"))
        warm_up.refresh(event, Deadline.from_context(context))
        return None
    if health_check.is_health_check(event):
        # The health check's schedule: like a sweep, no CloudFormation request and nothing to answer.
        logger.append_keys(schedule=event[health_check.HEALTH_CHECK_KEY].get("schedule"))
        return health_check.run(event, context)  # its summary, for whoever invoked it
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
    return None


def handle(event: dict[str, Any], context: LambdaContext) -> str:
    """Carry out one request; what it returns is the physical id, what it raises becomes FAILED."""
    request = Request.from_event(event)
    resource_context = RequestContext(request, Deadline.from_context(context), context.invoked_function_arn)
    try:
        return _carry_out(request, event, context, resource_context)
    except Exception as error:
        count_outcome(request.resource_type, request.request_type, "Failed")
        failed_id = error.physical_id if isinstance(error, ResourceFailure) else None
        if request.request_type == "Create":
            helper.PhysicalResourceId = failed_id or request.failed_create_id
            if failed_id:
                _remember_answer(resource_context, failed_id)  # the rollback's Delete names it
        if isinstance(error, ResourceFailure):
            raise
        logger.exception("Unexpected error")
        raise ResourceFailure(reason_for(error)) from error


def _carry_out(
    request: Request, event: dict[str, Any], context: LambdaContext, resource_context: RequestContext
) -> str:
    resource = RESOURCE_TYPES.get(request.resource_type)
    if resource is None:
        if request.request_type != "Delete":
            raise ResourceFailure(
                f"Unsupported resource type {request.resource_type!r}; this provider serves "
                + ", ".join(RESOURCE_TYPES)
            )
        physical_id = request.physical_id  # nothing of an unknown type was ever made; failing would wedge the stack
    else:
        try:
            # The request becomes the resource's current one before its first call to AWS (RequestContext.start).
            if request.request_type == "Delete":
                physical_id = request.physical_id
                if not _deleted(resource, resource_context):
                    count_outcome(request.resource_type, request.request_type, "Superseded")
                    return physical_id
                helper.Reason = resource_context.reason
            else:
                operation = resource.create if request.request_type == "Create" else resource.update
                result = operation(resource_context)
                helper.Data.update(result.data)
                physical_id = result.physical_id
                _remember_answer(resource_context, physical_id)
                _remember_declared(resource_context, result)
        except ContinueLater as pending:
            _hand_off(event, context, request, pending)
            return pending.physical_id
        finally:
            count_throttled(request.resource_type, resource_context.throttled_calls())
    count_outcome(request.resource_type, request.request_type, "Succeeded")
    return str(physical_id)


def _deleted(resource: ResourceType, resource_context: RequestContext) -> bool:
    """Carry out a Delete, then mark the resource deleted in the ledger. A Delete that a newer request overtook
    stops and succeeds (CloudFormation waits for no request older than the resource's current one, and a failed
    Delete would wedge the stack): False."""
    try:
        resource.delete(resource_context)
    except Superseded as superseded:
        logger.info("Delete overtaken by a newer request: it stops here", extra={"reason": str(superseded)})
        return False
    try:
        resource_context.ledger.finish_delete(resource_context.request.owner)
    except ResourceFailure as error:  # done: a record that cannot say so fails nothing (see RequestContext.start)
        logger.warning("Could not record the deletion", extra={"error": str(error)})
    return True


def _remember_answer(resource_context: RequestContext, physical_id: str) -> None:
    """Record the physical id answered, so that a later Delete can tell it from one CloudFormation made up. A
    ledger that cannot take it does not fail an answer that is otherwise right: the Delete then goes by the id's
    form."""
    try:
        resource_context.ledger.record_issued(resource_context.request.owner, physical_id)
    except Exception as error:  # the answer matters more than the note
        logger.warning("Could not record the physical id answered", extra={"error": str(error)})


def _remember_declared(resource_context: RequestContext, result: Result) -> None:
    """Keep what the resource declared in its record, for the health check to compare with what ECR holds. A
    ledger that cannot take it does not fail the answer: the health check then checks the resource as it was last
    declared, or not at all."""
    request = resource_context.request
    declared = declared_properties(request.resource_type, request.properties) | result.declared
    try:
        resource_context.ledger.keep_declared(request.owner, declared)
    except Exception as error:  # the answer matters more than the note
        logger.warning("Could not record what the resource declared", extra={"error": str(error)})


def _hand_off(event: dict[str, Any], context: LambdaContext, request: Request, pending: ContinueLater) -> None:
    """Pass the rest of the work to a follow-up invocation, which will answer; this one does not."""
    if pending.progress.invocation >= continuation.MAX_INVOCATIONS:
        raise ResourceFailure(
            f"Gave up after {pending.progress.invocation} invocations without finishing", pending.physical_id
        )
    logger.info("Continuing in a follow-up invocation", extra={"progress": pending.progress})
    try:
        continuation.hand_off(event, context.invoked_function_arn, pending.progress)
    except Exception as error:
        reason = f"Could not continue in a follow-up invocation: {aws_message(str(error))}"
        raise ResourceFailure(reason, pending.physical_id) from error
    count_outcome(request.resource_type, request.request_type, "Continued")
    helper.hand_off()
