"""CloudFormation's stacks as DescribeStacks reports them, for a provider that asks which operation a stack is in.

The custom resources' requests come from our own player (tools/stack_player) or from tests, not from moto's
CloudFormation, so moto knows no stack of ours. `set_stack_status` puts one in moto's CloudFormation backend (the
same objects serve moto in-process and moto's server) under the StackId the requests carry, with the status the
stack operation is in, so that DescribeStacks answers as CloudFormation does:

- by StackId (an ARN), a stack is found in every status, DELETE_COMPLETE included (deleted stacks stay
  describable by their unique id, API reference: DescribeStacks, StackName);
- by name, a deleted stack is not found (ValidationError "Stack with id <name> does not exist").

moto's own describe_stacks does exactly that once the stack is in its `stacks` or `deleted_stacks`.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.models import Stack, cloudformation_backends

# The statuses a stack passes through while CloudFormation sends its custom resources requests (API reference:
# StackStatus), and the final ones.
STATUSES = frozenset(
    {
        "CREATE_IN_PROGRESS",
        "CREATE_COMPLETE",
        "ROLLBACK_IN_PROGRESS",
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE",
        "UPDATE_ROLLBACK_FAILED",
        "DELETE_IN_PROGRESS",
        "DELETE_COMPLETE",
        "DELETE_FAILED",
    }
)


def set_stack_status(stack_id: str, status: str) -> None:
    """Make DescribeStacks report the stack `stack_id` (arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>)
    in `status`; DELETE_COMPLETE moves it among the deleted stacks, where only its id finds it."""
    if status not in STATUSES:
        raise ValueError(f"Not a stack status: {status}")
    _, _, _, region, account, resource = stack_id.split(":", 5)
    name = resource.split("/")[1]
    backend: Any = cloudformation_backends[account][region]
    stack = backend.stacks.get(stack_id) or backend.deleted_stacks.get(stack_id)
    if stack is None:
        make_stack: Any = Stack  # an empty template: moto makes no resources for it
        stack = make_stack(stack_id, name, {}, {}, account_id=account, region_name=region)
    stack.status = status
    if status == "DELETE_COMPLETE":
        backend.stacks.pop(stack_id, None)
        backend.deleted_stacks[stack_id] = stack
    else:
        backend.deleted_stacks.pop(stack_id, None)
        backend.stacks[stack_id] = stack


def stack_status(stack_id: str) -> str | None:
    """The status set for the stack, or None when there is none."""
    _, _, _, region, account, _ = stack_id.split(":", 5)
    backend: Any = cloudformation_backends[account][region]
    stack = backend.stacks.get(stack_id) or backend.deleted_stacks.get(stack_id)
    return str(stack.status) if stack is not None else None
