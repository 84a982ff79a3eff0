"""IAM enforced in the local AWS: every call a registered principal (the provider's role, the scheduler's role, a
consumer) makes is evaluated as IAM would, and a call IAM would deny fails as the service fails it.

Usage::

    from emulation import iam

    iam.install()  # idempotent; before (or inside) mock_aws / ThreadedMotoServer
    credentials = iam.grant(iam.Principal(role_arn, policies))  # environment variables for the principal's process
    ...
    iam.denials()  # what was denied since the last iam.clear()

Who calls is read from the request's SigV4 signature (the access key id), as AWS does. An access key no principal
was granted is the test harness itself (it sets up fixtures and inspects results): its calls are not evaluated,
as an administrator's would all be allowed.

moto can enforce IAM itself (INITIAL_NO_AUTH_ACTION_COUNT), but it evaluates every call but S3's against the
resource `*` (so a statement scoped to an ARN never matches) and treats a condition that does not match as an
explicit Deny. Our evaluator (policy.py) follows the documented evaluation logic, and authorizations.py names each
operation's resource as the Service Authorization Reference does; both plug into moto's own authorization hook,
so mock_aws and moto's server enforce the same way.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote

from emulation.cloudformation import ACCOUNT_ID
from emulation.iam.authorizations import (
    DENIED_403,
    Account,
    Authorization,
    Call,
    UnknownOperation,
    authorizations,
)
from emulation.iam.policy import Decision, Request, evaluate

__all__ = [
    "ADMIN",
    "DENIED_403",
    "Authorization",
    "Denied",
    "Evaluation",
    "Principal",
    "acting_as",
    "admin_client",
    "check",
    "clear",
    "denials",
    "denies_invoke",
    "evaluations",
    "grant",
    "install",
    "revoke",
    "role_session_arn",
]


@dataclass(frozen=True)
class Principal:
    """A caller whose calls are evaluated: its ARN as IAM reports it (for a role, the assumed-role session ARN)
    and its identity-based policies."""

    arn: str
    policies: Sequence[Mapping[str, Any]]
    access_key: str = ""
    # Condition keys of every request the principal makes (e.g. aws:PrincipalOrgID for a member account's).
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """One authorization IAM made: who, which call, which action on which resource, and the decision."""

    principal: str
    call: str  # service:Operation as called
    action: str
    resource: str
    decision: Decision

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOWED

    def __str__(self) -> str:
        return f"{self.action} on {self.resource} ({self.decision.value}; called {self.call} as {self.principal})"


# The test harness's own credentials (an access key no principal holds): what it calls is not evaluated.
ADMIN = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_session_token": "testing"}


def admin_client(service: str, **options: Any) -> Any:
    """A client of the test harness (an administrator, whose calls nothing evaluates), whatever the environment's
    credentials are (a test's own process may hold the provider's)."""
    import boto3

    return boto3.client(service, **ADMIN, **options)  # type: ignore[call-overload]


_lock = threading.Lock()
_principals: dict[str, Principal] = {}
_evaluations: list[Evaluation] = []


def grant(principal: Principal) -> dict[str, str]:
    """Register the principal; the environment variables that make a process call AWS as it."""
    with _lock:
        _principals[principal.access_key] = principal
    return {
        "AWS_ACCESS_KEY_ID": principal.access_key,
        "AWS_SECRET_ACCESS_KEY": "emulated-secret-access-key",
        "AWS_SESSION_TOKEN": "emulated-session-token",
    }


def revoke(access_key: str) -> None:
    with _lock:
        _principals.pop(access_key, None)


def principal_for(access_key: str) -> Principal | None:
    with _lock:
        return _principals.get(access_key)


def evaluations() -> list[Evaluation]:
    with _lock:
        return list(_evaluations)


def denials() -> list[Evaluation]:
    return [evaluation for evaluation in evaluations() if not evaluation.allowed]


def clear() -> None:
    with _lock:
        _evaluations.clear()


class Denied(Exception):
    """IAM denied one of a call's authorizations: the service answers with `authorization.denial`."""

    def __init__(self, principal: Principal, authorization: Authorization, decision: Decision) -> None:
        # IAM's own wording (IAM user guide, troubleshoot_access-denied.html)
        why = (
            "with an explicit deny in an identity-based policy"
            if decision is Decision.EXPLICITLY_DENIED
            else f"because no identity-based policy allows the {authorization.action} action"
        )
        super().__init__(
            f"User: {principal.arn} is not authorized to perform: {authorization.action} on resource: "
            f"{authorization.resource} {why}"
        )
        self.authorization = authorization


def authorize(principal: Principal, call: Call) -> None:
    """Evaluate every authorization the call needs, in order; raise Denied at the first one IAM denies."""
    needed = authorizations(call, Account(call.account, call.region))
    check(principal, f"{call.service}:{call.operation}", needed, call.region)


def check(principal: Principal, call: str, needed: Sequence[Authorization], region: str) -> None:
    """Evaluate authorizations the principal needs for `call` (what it did, as a person would name it), in order;
    raise Denied at the first one IAM denies. Also for what a service does with the principal's credentials
    outside an API call of ours, such as Lambda writing the function's logs with its execution role."""
    for authorization in needed:
        # Keys in every request context (IAM user guide, reference_policies_condition-keys.html).
        context = {"aws:RequestedRegion": region, "aws:PrincipalAccount": principal.arn.split(":")[4]}
        request = Request(principal.arn, authorization.action, authorization.resource,
                          {**context, **principal.context, **authorization.context})  # fmt: skip
        decision = evaluate(principal.policies, request, authorization.resource_policy)
        with _lock:
            _evaluations.append(Evaluation(principal.arn, call, authorization.action, authorization.resource, decision))
        if decision is not Decision.ALLOWED:
            raise Denied(principal, authorization, decision)
        if authorization.then is not None:
            authorization.then()


def denies_invoke(authorization_header: str, function: str) -> str | None:
    """The Lambda Invoke API's check (emulation/lambda_emulator.py serves it, not moto): why IAM denies the signer
    of the request lambda:InvokeFunction on `function` (a name or ARN); None when it allows it, or when the signer
    is the test harness."""
    match = re.search(r"Credential=([^/]+)/\d{8}/([^/]+)/", authorization_header)
    principal = principal_for(match.group(1)) if match else None
    if principal is None or match is None:
        return None
    region = match.group(2)
    call = Call("lambda", "Invoke", {"FunctionName": function}, principal.arn.split(":")[4], region)
    try:
        authorize(principal, call)
    except Denied as denied:
        return str(denied)
    return None


def role_session_arn(role_name: str, session: str) -> str:
    """How IAM names calls made with the role's temporary credentials (Lambda's session is the function's name)."""
    return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/{session}"


@contextmanager
def acting_as(credentials: Mapping[str, str], environment: Mapping[str, str] = {}) -> Iterator[None]:
    """Run the block with this process's AWS clients signing as the principal (and the function's environment):
    what Lambda gives the function's process. boto3's default session caches the credentials it first read, so it
    is made anew on the way in and out."""
    variables = {**credentials, **environment}
    import boto3

    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        boto3.DEFAULT_SESSION = None


# moto's hook: every moto service calls this before it serves a request.

_install_lock = threading.Lock()


def install() -> None:
    """Evaluate the calls of registered principals in every moto service. Safe to call repeatedly."""
    from moto.core.authorization import ActionAuthenticatorMixin

    with _install_lock:
        if getattr(ActionAuthenticatorMixin._authenticate_and_authorize_normal_action, "_emulated_iam", False):
            return
        setattr(ActionAuthenticatorMixin, "_authenticate_and_authorize_normal_action", _moto_hook)  # noqa: B010


def _moto_hook(self: Any, resource: str = "*") -> None:
    principal = principal_for(self.get_access_key())
    if principal is None:
        return  # the test harness
    from moto.core.exceptions import JsonRESTError

    operation = self._get_action()
    call = Call(self.boto3_service_name, operation, request_params(self, operation), self.current_account, self.region)
    try:
        authorize(principal, call)
    except Denied as denied:
        error = JsonRESTError(denied.authorization.denial.code, str(denied))
        error.code = denied.authorization.denial.status
        raise error from None
    except UnknownOperation as unknown:
        error = JsonRESTError("AccessDeniedException", f"{unknown} (emulation/iam: model it before calling it)")
        raise error from None


_moto_hook._emulated_iam = True  # type: ignore[attr-defined]


@cache
def _service_model(service: str) -> Any:
    from botocore.session import get_session

    return get_session().get_service_model(service)


def request_params(response: Any, operation: str) -> dict[str, Any]:
    """The call's parameters as botocore named them: the JSON body, and for REST protocols the members bound to
    the URI, the query string and the headers (botocore's model says where each member travels)."""
    body = response.raw_body if isinstance(response.raw_body, str | bytes) else response.body
    try:
        params: dict[str, Any] = json.loads(body) if body else {}
    except (TypeError, ValueError):
        params = {}
    model = _service_model(response.boto3_service_name)
    if model.protocol in ("json", "query", "ec2"):
        return params
    input_shape = model.operation_model(operation).input_shape
    uri = getattr(response, "uri_match", None) or {}
    for name, member in input_shape.members.items() if input_shape else ():
        location, wire_name = member.serialization.get("location"), member.serialization.get("name", name)
        if location == "uri" and wire_name in uri:
            params[name] = unquote(str(uri[wire_name]))
        elif location == "querystring" and wire_name in response.querystring:
            params[name] = response.querystring[wire_name][0]
        elif location == "header" and wire_name in response.headers:
            params[name] = response.headers[wire_name]
    return params
