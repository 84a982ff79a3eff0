"""How a request fails: every failure is a ResourceFailure, whose message becomes the FAILED answer's Reason."""

from __future__ import annotations

import re

# IAM's denial names the caller's full session ARN first, which would push the action and the resource out of a
# Reason (CloudFormation shows 256 characters of it): "User: arn:aws:sts::...:assumed-role/<role>/<function> is
# not authorized to perform: <action> on resource: <arn> because no identity-based policy allows the <action> action"
_DENIED_CALLER = re.compile(r"User: \S+ is not authorized to perform")
_DENIED_BECAUSE = re.compile(r" because no [a-z-]+ policy allows the \S+ action")


class ResourceFailure(Exception):
    """The request cannot be carried out; the message becomes the FAILED response's Reason.

    `physical_id` is set when the failure leaves something behind that the rollback's Delete must remove.
    """

    def __init__(self, message: str, physical_id: str | None = None) -> None:
        super().__init__(message)
        self.physical_id = physical_id


class InvalidProperties(ResourceFailure):
    """The properties break a rule; nothing was changed."""


class DeadlineApproaching(ResourceFailure):
    """Raised before starting work that might not finish before the Lambda is stopped. A ResourceFailure, so
    that what the request made so far is undone, or handed to the rollback, as for any other failure."""


class Superseded(ResourceFailure):
    """The request is no longer the resource's current one: a newer request of the same resource (a Delete after
    CloudFormation cancelled a Create, an Update's rollback) took over, or CloudFormation stopped waiting for its
    answer (ServiceTimeout passed). The step that finds out stops without changing anything."""


class EcrError(ResourceFailure):
    """An ECR error that botocore's retries did not get past. `transient` when asking again later may succeed
    (throttling, a server error, no answer at all): long work then slows down instead of failing."""

    def __init__(self, code: str, message: str, transient: bool = False) -> None:
        message = aws_message(message)
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.transient = transient


def reason_for(error: Exception) -> str:
    """The Reason for any error: a ResourceFailure's own message; anything else named as unexpected."""
    if isinstance(error, ResourceFailure):
        return str(error)
    return f"Unexpected {type(error).__name__}: {error}"


def aws_message(message: str) -> str:
    """An AWS error message as a Reason shows it: an access denial says which action on which resource, first."""
    shortened = _DENIED_CALLER.sub("The provider's role is not authorized to perform", message)
    return _DENIED_BECAUSE.sub("", shortened)
