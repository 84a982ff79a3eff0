"""CloudFormation's part: send each custom resource its Create, Update or Delete through the real handler, wait
for the one answer at the response endpoint, and on failure roll back the way CloudFormation does.

- First run (stack creation): Create in dependency order; on a failure, Delete everything created, the failed
  resource included with the physical id it answered, in reverse order.
- Later runs (stack update): Update a resource whose resolved properties changed (OldResourceProperties and its
  PhysicalResourceId); an answer with another physical id is a replacement, whose old id gets a Delete in the
  cleanup phase, as do resources that left the template or whose Condition became false. On a failure, Update the
  updated resources back to their old properties (the rollback's Update: the properties swapped), then Delete the
  ones this run created and what the updates replaced (the rollback's cleanup).
- Stack deletion: Delete every resource in reverse creation order.
- A request that does not answer within its ServiceTimeout fails the resource; one still running when a sibling
  fails (`cancel_during`) is cancelled ("Resource creation cancelled"). Either way its work goes on in Lambda while
  CloudFormation rolls back: a Create that never answered is deleted with a physical id CloudFormation makes up
  (emulation.cloudformation.generated_physical_id); an Update that never answered is rolled back to its old
  physical id.
- The stack's status, as DescribeStacks reports it, follows each phase (CREATE_IN_PROGRESS, ROLLBACK_IN_PROGRESS,
  UPDATE_IN_PROGRESS, UPDATE_COMPLETE_CLEANUP_IN_PROGRESS, UPDATE_ROLLBACK_IN_PROGRESS,
  UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS, DELETE_IN_PROGRESS and the final ones): the provider reads it.
Native resources are listed, given plausible names and ARNs, and not emulated.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from emulation.cloudformation import LambdaContext, ResponseEndpoint, as_cloudformation_sends, generated_physical_id
from emulation.stacks import set_stack_status
from tools.stack_player.aws import ACCOUNT_ID, REGION
from tools.stack_player.native import native_attribute, native_physical_id, next_physical_id, replaces
from tools.stack_player.progress import Progress, Step
from tools.stack_player.state import ResourceRecord, StackState
from tools.stack_player.template import Renderer, Template, TemplateError

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_TIMEOUT = 3600.0  # CloudFormation's wait when a custom resource sets no ServiceTimeout
# When the ServiceToken names no function of this template (an imported ServiceToken, as in examples/):
# the provider's own Timeout in template.yaml.
DEFAULT_LAMBDA_TIMEOUT = 300.0
MAX_RESPONSE_BYTES = 4096


def is_custom(resource_type: str) -> bool:
    return resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource"


@dataclass(frozen=True)
class Answer:
    """What the provider answered at the response endpoint (or that it did not: `answered` False)."""

    succeeded: bool
    physical_id: str
    data: dict[str, Any]
    reason: str
    seconds: float
    answered: bool = True


@dataclass(frozen=True)
class Outcome:
    """One line of the report: what happened to a resource."""

    logical_id: str
    resource_type: str
    # Create, Update, Replace, Delete, Unchanged, Native, Not reached; "Rollback ..." and "Cleanup ..." phases
    action: str
    status: str  # SUCCEEDED, FAILED, NOT EMULATED, SKIPPED
    seconds: float = 0.0
    physical_id: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass
class StackResult:
    stack_name: str
    stack_status: str
    succeeded: bool
    outcomes: list[Outcome] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Hooks:
    """Where the runner joins in: before each custom resource is played (the records played so far); and, while an
    answer is awaited, the work in progress (repositories with a lifecycle policy, repositories) and how many
    invocations the Lambda emulator has served (the provider's continuations)."""

    before_custom: Callable[[str, dict[str, ResourceRecord]], None] = lambda resource_type, records: None
    # A native resource the local AWS emulates (its type, physical id and evaluated properties): the runner makes
    # the ownership table and takes the provider function's environment from it.
    native: Callable[[str, str, dict[str, Any]], None] = lambda resource_type, physical_id, properties: None
    # A native resource deleted (removed, replaced, or rolled back): the runner takes an IAM policy's rights away.
    native_deleted: Callable[[str, str], None] = lambda resource_type, physical_id: None
    backlog: Callable[[], tuple[int, int]] = lambda: (0, 0)
    invocations: Callable[[], int] = lambda: 0
    busy: Callable[[], bool] = lambda: False  # a follow-up invocation is running
    settle: Callable[[], None] = lambda: None  # wait until no follow-up invocation runs


# What CloudFormation says of a request still running when a sibling fails (the resource's status reason).
CANCELLED = {"Create": "Resource creation cancelled", "Update": "Resource update cancelled"}
# How long a cancelled request runs before its sibling fails, by default.
CANCEL_AFTER_SECONDS = 0.5


@dataclass
class Player:
    template: Template
    state: StackState
    responses: ResponseEndpoint
    hooks: Hooks = field(default_factory=Hooks)
    # The provider function: called with the event and a Lambda context (LocalAws.invoke_provider).
    function: Callable[[dict[str, Any], Any], Any] = lambda event, context: None
    imports: dict[str, Any] = field(default_factory=dict)
    progress: Progress = field(default_factory=lambda: Progress(None))
    # A sibling fails `cancel_after` seconds into this resource's Create or Update: CloudFormation cancels it and
    # rolls back.
    cancel_during: str = ""
    cancel_after: float = CANCEL_AFTER_SECONDS
    # The records of the operation in progress: what Ref and Fn::GetAtt read.
    _records: dict[str, ResourceRecord] = field(default_factory=dict)
    _request_ids: list[str] = field(default_factory=list)
    _cancelled: bool = False
    # Invocations CloudFormation stopped waiting for, still running: the run ends when they have.
    _running: list[tuple[threading.Thread, float]] = field(default_factory=list)
    _not_before: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))

    # Stack operations

    def deploy(self, parameters: dict[str, Any]) -> StackResult:
        creating = not self.state.exists
        result = StackResult(self.state.stack_name, "", succeeded=False)
        renderer = self._renderer(parameters)
        try:
            order = renderer.creation_order()
        except TemplateError as error:  # CloudFormation refuses the template before touching anything
            result.stack_status = "VALIDATION_FAILED"
            result.warnings.append(str(error))
            return result
        old = dict(self.state.resources)
        self._records = {}
        self._status("CREATE_IN_PROGRESS" if creating else "UPDATE_IN_PROGRESS")
        done: list[tuple[ResourceRecord | None, ResourceRecord]] = []  # (before, after) of each changed resource
        replaced: list[ResourceRecord] = []
        failed = False
        for logical_id in order:
            if failed:  # CloudFormation stops at the first failure; the table still lists every resource
                result.outcomes.append(self._not_reached(logical_id, old.get(logical_id)))
                continue
            outcome, step = self._play(logical_id, renderer, old.get(logical_id))
            result.outcomes.append(outcome)
            if step is not None:
                done.append(step)
                before, after = step
                if (
                    before is not None
                    and outcome.status in ("SUCCEEDED", "NOT EMULATED")
                    and after.physical_id != before.physical_id
                ):
                    replaced.append(before)
            failed = outcome.status == "FAILED"
        if not failed:
            try:
                result.outputs, exports = self._outputs(renderer)
            except TemplateError as error:
                result.warnings.append(f"Outputs: {error}")
                failed = True
        if failed:
            return self._rolled_back(result, creating, done, old)
        old_outputs = self.state.outputs
        self.state.parameters = parameters
        self.state.outputs, self.state.exports = result.outputs, exports
        removed = [record for logical_id, record in old.items() if self._is_gone(logical_id, record)]
        cleanup = self._in_reverse_creation_order(removed + replaced, list(old))
        self.state.resources = {logical_id: self._records[logical_id] for logical_id in order}
        if not creating:
            self._status("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        result.outcomes += [self._delete(record, "Cleanup delete") for record in cleanup]
        result.succeeded = all(outcome.status != "FAILED" for outcome in result.outcomes)
        changed = not creating and (cleanup or any(outcome.action not in ("Unchanged", "Native") for outcome in
                                                   result.outcomes) or self.state.outputs != old_outputs)  # fmt: skip
        result.stack_status = "CREATE_COMPLETE" if creating else "UPDATE_COMPLETE" if changed else "NO_CHANGES"
        self._status("CREATE_COMPLETE" if creating else "UPDATE_COMPLETE")
        return self._finish(result)

    def _rolled_back(
        self,
        result: StackResult,
        creating: bool,
        done: list[tuple[ResourceRecord | None, ResourceRecord]],
        old: dict[str, ResourceRecord],
    ) -> StackResult:
        result.outcomes += self._rollback(creating, done, old)
        result.outputs = {} if creating else dict(self.state.outputs)  # the stack keeps its old outputs
        result.stack_status = "ROLLBACK_COMPLETE" if creating else "UPDATE_ROLLBACK_COMPLETE"
        if any(outcome.status == "FAILED" for outcome in result.outcomes if outcome.action.startswith("Rollback")):
            result.stack_status = "ROLLBACK_FAILED" if creating else "UPDATE_ROLLBACK_FAILED"
        self._status(result.stack_status)
        return self._finish(result)

    def delete(self) -> StackResult:
        result = StackResult(self.state.stack_name, "DELETE_COMPLETE", succeeded=True)
        self._status("DELETE_IN_PROGRESS")
        for logical_id, record in reversed(list(self.state.resources.items())):
            outcome = self._delete(record, "Delete")
            result.outcomes.append(outcome)
            if outcome.status == "FAILED":
                result.succeeded, result.stack_status = False, "DELETE_FAILED"
            else:
                del self.state.resources[logical_id]
        if result.succeeded:
            self.state.outputs, self.state.exports = {}, {}
        self._status(result.stack_status)
        return self._finish(result)

    # One resource

    def _play(
        self, logical_id: str, renderer: Renderer, previous: ResourceRecord | None
    ) -> tuple[Outcome, tuple[ResourceRecord | None, ResourceRecord] | None]:
        resource = self.template.resources[logical_id]
        resource_type = str(resource["Type"])
        if not is_custom(resource_type):
            return self._play_native(logical_id, resource_type, renderer, previous)
        self.hooks.before_custom(resource_type, self._records)
        before = previous if previous is not None and previous.resource_type == resource_type else None
        try:
            properties = as_cloudformation_sends(renderer.evaluate(resource.get("Properties", {})))
            if "ServiceToken" not in properties:
                raise TemplateError(f"{logical_id} has no ServiceToken")
        except TemplateError as error:
            return Outcome(logical_id, resource_type, "Create" if before is None else "Update", "FAILED",
                           reason=str(error)), None  # fmt: skip
        if before is not None and before.properties == properties:
            self._records[logical_id] = before
            return self._outcome("Unchanged", before, 0.0), None
        if before is None:
            answer = self._send("Create", logical_id, resource_type, properties)
            # A Create that never answered has no physical id: CloudFormation's rollback makes one up.
            physical_id = answer.physical_id or generated_physical_id(self.state.stack_id, logical_id)
            after = ResourceRecord(logical_id, resource_type, physical_id, properties, answer.data)
            action = "Create"
        else:
            answer = self._send(
                "Update",
                logical_id,
                resource_type,
                properties,
                old_properties=before.properties,
                physical_id=before.physical_id,
            )
            # A failed Update leaves the resource as CloudFormation knew it.
            physical_id = answer.physical_id if answer.succeeded else before.physical_id
            after = ResourceRecord(logical_id, resource_type, physical_id, properties, answer.data)
            action = "Update" if physical_id == before.physical_id else "Replace"
        if answer.succeeded:
            self._records[logical_id] = after
        return self._outcome(action, after, answer.seconds, answer), (before, after)

    def _play_native(
        self, logical_id: str, resource_type: str, renderer: Renderer, previous: ResourceRecord | None
    ) -> tuple[Outcome, tuple[ResourceRecord | None, ResourceRecord] | None]:
        """A native resource is given its name, told to the runner (which emulates what the provider relies on) and
        remembered with its properties. A change of a property its resource schema makes create-only replaces it,
        as CloudFormation does: a new one now, the old one deleted in the cleanup phase."""
        try:
            properties = renderer.evaluate(self.template.resources[logical_id].get("Properties", {}))
        except TemplateError:
            properties = {}  # a native property this evaluator cannot resolve matters to no emulated resource
        before = (
            previous if previous is not None and previous.native and previous.resource_type == resource_type else None
        )
        record = self._native_record(logical_id, renderer)
        if before is not None and before.properties and replaces(resource_type, before.properties, properties):
            record.physical_id = next_physical_id(before.physical_id, record.physical_id)
        elif before is not None:
            record.physical_id = before.physical_id
        record.properties = properties
        self.hooks.native(resource_type, record.physical_id, properties)
        outcome = Outcome(logical_id, resource_type, "Native", "NOT EMULATED", physical_id=record.physical_id)
        return outcome, (before, record)

    def _not_reached(self, logical_id: str, previous: ResourceRecord | None) -> Outcome:
        resource_type = str(self.template.resources[logical_id]["Type"])
        physical_id = previous.physical_id if previous else ""
        return Outcome(logical_id, resource_type, "Not reached", "SKIPPED", physical_id=physical_id)

    def _delete(self, record: ResourceRecord, action: str) -> Outcome:
        if record.native:
            self.hooks.native_deleted(record.resource_type, record.physical_id)
            return Outcome(
                record.logical_id, record.resource_type, action, "NOT EMULATED", physical_id=record.physical_id
            )
        answer = self._send(
            "Delete", record.logical_id, record.resource_type, record.properties, physical_id=record.physical_id
        )
        return self._outcome(action, replace(record, attributes={}), answer.seconds, answer)

    def _rollback(
        self, creating: bool, done: list[tuple[ResourceRecord | None, ResourceRecord]], old: dict[str, ResourceRecord]
    ) -> list[Outcome]:
        """Undo the failed operation as CloudFormation does: a failed creation deletes what it created, in reverse
        order (ROLLBACK_IN_PROGRESS); a failed update first updates back each updated resource, the failed or
        cancelled one included, with the properties swapped (UPDATE_ROLLBACK_IN_PROGRESS), then deletes what the
        update created and what its replacements made (UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS)."""
        self._status("ROLLBACK_IN_PROGRESS" if creating else "UPDATE_ROLLBACK_IN_PROGRESS")
        outcomes: list[Outcome] = []
        to_delete: list[tuple[ResourceRecord, str]] = []
        restored = dict(old)
        for before, after in reversed(done):
            if before is None:  # made by the failed operation: deleted with the others, in reverse order
                to_delete.append((after, "Rollback delete"))
                continue
            if after.native:
                self._roll_back_native(before, after)
                continue
            answer = self._send(
                "Update",
                after.logical_id,
                after.resource_type,
                before.properties,
                old_properties=after.properties,
                physical_id=after.physical_id,
            )
            rolled_back = replace(before, physical_id=answer.physical_id or before.physical_id)
            if answer.succeeded:
                rolled_back.attributes = answer.data
                if rolled_back.physical_id != after.physical_id:
                    to_delete.append((after, "Rollback cleanup delete"))
            restored[before.logical_id] = rolled_back
            outcomes.append(self._outcome("Rollback update", rolled_back, answer.seconds, answer))
        if not creating:
            self._status("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        for record, action in to_delete:
            if record.native:
                self._roll_back_native(None, record)
            else:
                outcomes.append(self._delete(record, action))
        # After a failed creation the stack holds nothing; locally the next run simply creates it again.
        self.state.resources = {} if creating else restored
        return outcomes

    def _status(self, status: str) -> None:
        """The stack's status, as DescribeStacks reports it from now on (emulation.stacks)."""
        set_stack_status(self.state.stack_id, status)

    def _roll_back_native(self, before: ResourceRecord | None, after: ResourceRecord) -> None:
        """A native resource goes back to what it was before the failed operation: made by it, it is deleted;
        replaced by it, the replacement is deleted; changed in place, its old properties are back."""
        if before is None or before.physical_id != after.physical_id:
            self.hooks.native_deleted(after.resource_type, after.physical_id)
        if before is not None and (before.properties != after.properties or before.physical_id != after.physical_id):
            self.hooks.native(before.resource_type, before.physical_id, before.properties)

    # Talking to the provider

    def _send(
        self,
        request_type: str,
        logical_id: str,
        resource_type: str,
        properties: dict[str, Any],
        *,
        old_properties: dict[str, Any] | None = None,
        physical_id: str | None = None,
    ) -> Answer:
        """Build the request as CloudFormation does, invoke the handler, and wait for the one answer."""
        request_id = str(uuid.uuid4())
        self._request_ids.append(request_id)
        while datetime.now(UTC) < self._not_before:  # CloudFormation's rollback starts after the cancellation
            time.sleep(0.05)
        issued = datetime.now(UTC)
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": properties.get("ServiceToken", ""),
            "ResponseURL": self.responses.url_for(request_id, issued),
            "StackId": self.state.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": resource_type,
            "ResourceProperties": properties,
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = old_properties
        timeout = float(properties.get("ServiceTimeout") or DEFAULT_SERVICE_TIMEOUT)
        lambda_timeout = self._lambda_timeout(logical_id)

        crashed: list[str] = []

        def invoke() -> None:
            try:
                self.function(event, LambdaContext(lambda_timeout, function_arn=str(event["ServiceToken"])))
            except Exception as error:  # Lambda would log it; CloudFormation only ever sees the response endpoint
                logger.exception("The function raised")
                crashed.append(str(error).splitlines()[0])

        # The handler runs beside the wait, so that the wait can show its work (a backfill) while it happens.
        invocation = threading.Thread(target=invoke, name=f"{request_type} {logical_id}", daemon=True)
        invocation.start()
        cancel_at = None
        if logical_id == self.cancel_during and request_type in CANCELLED and not self._cancelled:
            self._cancelled, cancel_at = True, self.cancel_after  # the first request only: not its rollback's
        with self.progress.step(f"{request_type} {logical_id}", "repositories") as step:
            answer = self._wait(
                request_id, step, timeout, crashed, cancel_at=cancel_at, cancelled=CANCELLED.get(request_type, "")
            )
        if answer.answered:  # one invocation at a time, as one Lambda execution environment runs them
            invocation.join(lambda_timeout)
        else:  # CloudFormation stopped waiting; the work goes on in Lambda while the stack rolls back
            self._running.append((invocation, lambda_timeout))
            # What it sends next is issued in a later second than this request (the X-Amz-Date of its ResponseURL
            # counts whole seconds): the rollback comes after the cancellation, as CloudFormation's does.
            self._not_before = issued.replace(microsecond=0) + timedelta(seconds=1)
        return answer

    def _wait(
        self,
        request_id: str,
        step: Step,
        timeout: float,
        crashed: list[str],
        *,
        cancel_at: float | None = None,
        cancelled: str = "",
    ) -> Answer:
        """The first answer to the request, which may come from a follow-up invocation, up to ServiceTimeout.
        A function that raised without answering (and handed nothing on) is reported at once: CloudFormation would
        wait for ServiceTimeout, which tells a person nothing. With `cancel_at`, a sibling fails that many seconds
        into the request: CloudFormation stops waiting for it."""
        started, invocations_before = time.monotonic(), self.hooks.invocations()
        while True:
            waited = time.monotonic() - started
            with_policy, repositories = self.hooks.backlog()
            invocation = 1 + self.hooks.invocations() - invocations_before
            step.update(with_policy, repositories, f"invocation {invocation}, {waited:.0f} of {timeout:.0f} s")
            if answers := self.responses.answers(request_id):
                break
            if waited >= timeout:
                reason = f"No answer within the ServiceTimeout of {timeout:.0f} s"
                return Answer(False, "", {}, reason, waited, answered=False)
            if cancel_at is not None and waited >= cancel_at:
                return Answer(False, "", {}, f"{cancelled} (a sibling failed)", waited, answered=False)
            if crashed and not self.hooks.busy() and not self.responses.answers(request_id):
                reason = f"The function ended without answering (CloudFormation would wait {timeout:.0f} s)"
                return Answer(False, "", {}, f"{reason}: {crashed[0]}", waited)
            time.sleep(0.05)
        body, seconds = answers[0], time.monotonic() - started
        problem = _invalid_response(body)
        if problem:
            return Answer(False, str(body.get("PhysicalResourceId") or ""), {}, f"Invalid response: {problem}", seconds)
        return Answer(
            succeeded=body["Status"] == "SUCCESS",
            physical_id=str(body["PhysicalResourceId"]),
            data=dict(body.get("Data") or {}),
            reason=str(body.get("Reason") or ""),
            seconds=seconds,
        )

    def _lambda_timeout(self, logical_id: str) -> float:
        """The Timeout of the function the ServiceToken names with Fn::GetAtt <Function>.Arn. A resource the
        template no longer has (deleted in the cleanup of an update) gets the default."""
        resource = self.template.resources.get(logical_id)
        if resource is None:
            return DEFAULT_LAMBDA_TIMEOUT
        token = resource.get("Properties", {}).get("ServiceToken")
        target = token.get("Fn::GetAtt", [""]) if isinstance(token, dict) else [""]
        function = target.split(".")[0] if isinstance(target, str) else str(target[0])
        return float(self.template.lambda_function(function).get("Timeout", DEFAULT_LAMBDA_TIMEOUT))

    # Rendering

    def _renderer(self, parameters: dict[str, Any]) -> Renderer:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.state.stack_name,
            "AWS::StackId": self.state.stack_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        return Renderer(self.template, parameters, pseudo, self._resolve, self.imports)

    def _resolve(self, logical_id: str, attribute: str | None) -> Any:
        record = self._records.get(logical_id)
        resource_type = str(self.template.resources[logical_id]["Type"])
        if record is None and not is_custom(resource_type):
            record = self._native_record(logical_id, None)
        if record is None:
            raise TemplateError(f"{logical_id} has not been created yet (a dependency the template does not declare?)")
        if attribute is None:
            return record.physical_id
        if record.native:
            return native_attribute(resource_type, record.physical_id, attribute)
        if attribute not in record.attributes:
            raise TemplateError(
                f"CustomResource attribute error: Vendor response doesn't contain {attribute} key in object "
                f"{logical_id} (it answered {', '.join(sorted(record.attributes)) or 'no attributes'})"
            )
        return record.attributes[attribute]

    def _native_record(self, logical_id: str, renderer: Renderer | None) -> ResourceRecord:
        if logical_id not in self._records:
            resource = self.template.resources[logical_id]
            evaluate = renderer.evaluate if renderer else (lambda node: node)
            try:
                name = native_physical_id(self.state.stack_name, logical_id, resource, evaluate, self.state.stack_id)
            except TemplateError:
                name = f"{self.state.stack_name}-{logical_id}-LOCAL"
            self._records[logical_id] = ResourceRecord(logical_id, str(resource["Type"]), name, native=True)
        return self._records[logical_id]

    def _outputs(self, renderer: Renderer) -> tuple[dict[str, Any], dict[str, Any]]:
        outputs: dict[str, Any] = {}
        exports: dict[str, Any] = {}
        for name, output in self.template.body.get("Outputs", {}).items():
            if "Condition" in output and not renderer.condition(str(output["Condition"])):
                continue
            outputs[name] = renderer.evaluate(output["Value"])
            if "Export" in output:
                exports[str(renderer.evaluate(output["Export"]["Name"]))] = outputs[name]
        return outputs, exports

    # Small helpers

    def _is_gone(self, logical_id: str, record: ResourceRecord) -> bool:
        current = self._records.get(logical_id)
        return current is None or current.resource_type != record.resource_type

    @staticmethod
    def _in_reverse_creation_order(records: list[ResourceRecord], creation_order: list[str]) -> list[ResourceRecord]:
        return sorted(records, key=lambda record: creation_order.index(record.logical_id), reverse=True)

    @staticmethod
    def _outcome(action: str, record: ResourceRecord, seconds: float, answer: Answer | None = None) -> Outcome:
        status = "SUCCEEDED" if answer is None or answer.succeeded else "FAILED"
        return Outcome(
            logical_id=record.logical_id,
            resource_type=record.resource_type,
            action=action,
            status=status,
            seconds=seconds,
            physical_id=answer.physical_id if answer and answer.physical_id else record.physical_id,
            attributes=record.attributes if status == "SUCCEEDED" else {},
            reason=answer.reason if answer and not answer.succeeded else "",
        )

    def _finish(self, result: StackResult) -> StackResult:
        """Exactly one answer per request: a second one would be ignored by CloudFormation, and is a bug. The run
        ends once the invocations CloudFormation stopped waiting for have ended too (the local AWS goes with it)."""
        for invocation, seconds in self._running:
            invocation.join(seconds)
        self._running.clear()
        self.hooks.settle()
        for request_id in self._request_ids:
            count = len(self.responses.answers(request_id))
            if count > 1:
                result.warnings.append(f"Request {request_id} was answered {count} times")
                result.succeeded = False
        self._request_ids.clear()
        return result


def _invalid_response(body: dict[str, Any]) -> str:
    """Why CloudFormation would reject the response body, or an empty string."""
    if body.get("Status") not in ("SUCCESS", "FAILED"):
        return f"Status {body.get('Status')!r}"
    if not body.get("PhysicalResourceId"):
        return "no PhysicalResourceId"
    if len(json.dumps(body).encode()) > MAX_RESPONSE_BYTES:
        return f"the body is over {MAX_RESPONSE_BYTES} bytes"
    return ""
