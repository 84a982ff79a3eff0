"""IAM policy evaluation, as AWS documents it, for the requests our tests make: identity-based policies and, for
the calls that have one, a resource-based policy, within one account or across accounts.

The rules (IAM user guide, reference_policies_evaluation-logic.html):
- An explicit Deny in any policy that applies wins.
- Otherwise the request is allowed when a statement allows it: in the same account an identity-based policy or the
  resource-based policy suffices; across accounts both must allow it.
- Otherwise it is denied (implicitly).

A statement applies when its Action (or NotAction), its Resource (or NotResource), its Principal (resource-based
policies) and every one of its Conditions match. A condition that does not match makes the statement not apply: it
never turns an Allow into a Deny (moto's evaluator gets this wrong, one reason we do not use it).

Matching (reference_policies_elements_action.html, _resource.html, _condition_operators.html):
- Actions are case-insensitive; `*` and `?` are wildcards.
- Resource ARNs are case-sensitive. Wildcards stay inside one ARN segment (the parts between colons), except a `*`
  that ends the last segment of the pattern, which may match beyond colons.
- Condition keys are case-insensitive; values are compared as each operator says. A key absent from the request
  makes a condition false, except for the ...IfExists operators (true) and the negated string and ARN operators
  (true as well: nothing equals the absent value).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any

Context = Mapping[str, str | Sequence[str]]


class Decision(Enum):
    ALLOWED = "allowed"
    EXPLICITLY_DENIED = "explicitly denied"
    IMPLICITLY_DENIED = "implicitly denied"


@dataclass(frozen=True)
class Request:
    """One authorization IAM makes: who asks to do what to which resource, with which condition keys."""

    principal: str  # the caller's ARN (for a role: arn:aws:sts::<account>:assumed-role/<role>/<session>)
    action: str  # service:Operation, e.g. ecr:DescribeRepositories
    resource: str  # an ARN, or * for actions IAM defines no resource type for
    context: Context = field(default_factory=dict)

    @property
    def principal_account(self) -> str:
        return _account_of(self.principal)


@dataclass(frozen=True)
class ResourcePolicy:
    """A resource-based policy (a repository policy, the registry policy) and the account that owns the resource."""

    document: Mapping[str, Any]
    account: str


def evaluate(identity_policies: Iterable[Mapping[str, Any]], request: Request,
             resource_policy: ResourcePolicy | None = None) -> Decision:  # fmt: skip
    """The decision for `request`, made by the caller's identity-based policies and the resource's policy."""
    identity = [statement for document in identity_policies for statement in _statements(document)]
    resource = list(_statements(resource_policy.document)) if resource_policy else []
    applying_identity = [statement for statement in identity if _applies(statement, request, resource_policy=False)]
    applying_resource = [statement for statement in resource if _applies(statement, request, resource_policy=True)]
    if any(statement.get("Effect") == "Deny" for statement in applying_identity + applying_resource):
        return Decision.EXPLICITLY_DENIED
    identity_allows = any(statement.get("Effect") == "Allow" for statement in applying_identity)
    resource_allows = any(statement.get("Effect") == "Allow" for statement in applying_resource)
    owner = resource_policy.account if resource_policy else _account_of(request.resource) or request.principal_account
    same_account = owner == request.principal_account
    allowed = (identity_allows or resource_allows) if same_account else (identity_allows and resource_allows)
    return Decision.ALLOWED if allowed else Decision.IMPLICITLY_DENIED


def statement_allows(statement: Mapping[str, Any], request: Request) -> bool:
    """Whether this one identity-policy statement allows the request (used to name the statement in reports)."""
    return statement.get("Effect") == "Allow" and _applies(statement, request, resource_policy=False)


# Statements


def _statements(document: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else statements


def _applies(statement: Mapping[str, Any], request: Request, *, resource_policy: bool) -> bool:
    if not _element_matches(statement, "Action", request.action, action_matches):
        return False
    if not _element_matches(statement, "Resource", request.resource, arn_matches):
        return False
    if resource_policy and not _principal_matches(statement, request.principal):
        return False
    return all(
        condition_matches(operator, key, values, request.context)
        for operator, keys in (statement.get("Condition") or {}).items()
        for key, values in keys.items()
    )


def _element_matches(statement: Mapping[str, Any], name: str, value: str, matches: Any) -> bool:
    """Action/NotAction or Resource/NotResource. A statement with neither Resource nor NotResource is a resource
    policy's, which is about its own resource: it matches."""
    if name in statement:
        return any(matches(pattern, value) for pattern in _listed(statement[name]))
    if f"Not{name}" in statement:
        return not any(matches(pattern, value) for pattern in _listed(statement[f"Not{name}"]))
    return name == "Resource"


def _principal_matches(statement: Mapping[str, Any], principal: str) -> bool:
    if "Principal" not in statement:
        return False
    wanted = statement["Principal"]
    if wanted == "*":
        return True
    names = _listed(wanted.get("AWS", [])) if isinstance(wanted, Mapping) else []
    account = _account_of(principal)
    role = _role_of(principal)
    return any(
        name == "*"
        or name in (account, f"arn:aws:iam::{account}:root", principal)
        or (role is not None and name == role)
        for name in names
    )


def _listed(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def _role_of(principal: str) -> str | None:
    """The role ARN of an assumed-role session ARN (a policy names the role, a request comes from its session)."""
    match = re.fullmatch(
        r"arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+", principal
    )
    if match is None:
        return None
    return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"


# Matching


def action_matches(pattern: str, action: str) -> bool:
    """Actions are case-insensitive; * and ? are wildcards."""
    return _wildcard(pattern.lower(), crosses_colons=True).fullmatch(action.lower()) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """Resource ARNs are case-sensitive; a wildcard stays inside its segment, except a * ending the pattern's last
    segment, which matches the rest of the ARN, colons included."""
    if pattern == "*":
        return True
    wanted, given = pattern.split(":"), arn.split(":")
    if len(given) < len(wanted):
        return False
    last = len(wanted) - 1
    for index, part in enumerate(wanted[:last]):
        if _wildcard(part, crosses_colons=False).fullmatch(given[index]) is None:
            return False
    rest = ":".join(given[last:])
    if wanted[last].endswith("*"):
        return _wildcard(wanted[last], crosses_colons=True).fullmatch(rest) is not None
    return len(given) == len(wanted) and _wildcard(wanted[last], crosses_colons=False).fullmatch(rest) is not None


@cache
def _wildcard(pattern: str, *, crosses_colons: bool) -> re.Pattern[str]:
    any_run, any_one = (".*", ".") if crosses_colons else ("[^:]*", "[^:]")
    parts = [any_run if char == "*" else any_one if char == "?" else re.escape(char) for char in pattern]
    return re.compile("".join(parts), re.DOTALL)


# Conditions

_STRING: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda value, wanted: value == wanted,
    "StringEqualsIgnoreCase": lambda value, wanted: value.lower() == wanted.lower(),
    "StringLike": lambda value, wanted: _wildcard(wanted, crosses_colons=True).fullmatch(value) is not None,
    "ArnEquals": lambda value, wanted: value == wanted,
    "ArnLike": lambda value, wanted: arn_matches(wanted, value),
    "Bool": lambda value, wanted: value.lower() == wanted.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


class UnsupportedCondition(Exception):
    """A condition operator this emulation does not evaluate: a test must not pass by ignoring it."""


def condition_matches(operator: str, key: str, wanted: Any, context: Context) -> bool:
    """One key of one condition operator: true when the request's value(s) for `key` match one of `wanted`."""
    values = _context_value(context, key)
    wanted_values = _listed(wanted)
    qualifier, _, operator = operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    if operator == "Null":
        return (values is None) == (wanted_values[0].lower() == "true")
    if values is None:
        return if_exists or operator in _NEGATED
    negated = operator in _NEGATED
    compare = _STRING.get(_NEGATED.get(operator, operator))
    if compare is None:
        raise UnsupportedCondition(f"condition operator {operator!r} is not emulated")

    def one(value: str) -> bool:
        matched = any(compare(value, item) for item in wanted_values)
        return not matched if negated else matched

    if qualifier == "ForAllValues":
        return all(one(value) for value in values)
    if qualifier == "ForAnyValue" or len(values) == 1:
        return any(one(value) for value in values)
    raise UnsupportedCondition(f"{operator} on the multi-valued key {key!r} needs ForAnyValue or ForAllValues")


def _context_value(context: Context, key: str) -> list[str] | None:
    for name, value in context.items():
        if name.lower() == key.lower():
            return [value] if isinstance(value, str) else list(value)
    return None
