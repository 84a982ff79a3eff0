"""What every resource type shares: the request it is given, the result it returns, how it fails,
and how CloudFormation's all-strings properties become validated, typed values."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate

from ecr_cache_provider.continuation import Progress
from ecr_cache_provider.responder import FAILED_CREATE_PREFIX

if TYPE_CHECKING:
    from ecr_cache_provider.deadline import Deadline

# Properties CloudFormation itself adds or reads; never passed to a resource type.
CLOUDFORMATION_PROPERTIES = ("ServiceToken", "ServiceTimeout")

# ECR's pattern for repository prefixes (botocore model: pull-through cache rules and creation templates alike).
PREFIX_PATTERN = r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)\Z"


def without_trailing_slash(prefix: str) -> str:
    """ECR implies a trailing '/' on a prefix, so 'quay/' and 'quay' are the same namespace."""
    return prefix.rstrip("/") if prefix != "ROOT" else prefix


class ResourceFailure(Exception):
    """The request cannot be carried out; the message becomes the FAILED response's Reason.

    `physical_id` is set when the failure leaves something behind that the rollback's Delete must remove.
    """

    def __init__(self, message: str, physical_id: str | None = None) -> None:
        super().__init__(message)
        self.physical_id = physical_id


class InvalidProperties(ResourceFailure):
    """The properties break a rule; nothing was changed."""


@dataclass(frozen=True)
class Request:
    """One CloudFormation request, as a resource type needs it."""

    request_type: str
    resource_type: str
    logical_id: str
    stack_id: str
    request_id: str
    properties: dict[str, Any]
    old_properties: dict[str, Any]
    physical_id: str
    deadline: Deadline
    # When CloudFormation issued the request, read from its pre-signed ResponseURL (never the URL itself).
    issued_at: datetime | None = None
    # Progress handed over by an earlier invocation of the same request; None in the first.
    progress: Progress | None = None
    region: str = field(init=False)
    account_id: str = field(init=False)

    def __post_init__(self) -> None:
        # StackId is arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>
        parts = self.stack_id.split(":")
        object.__setattr__(self, "region", parts[3] if len(parts) > 4 else "")
        object.__setattr__(self, "account_id", parts[4] if len(parts) > 4 else "")

    @property
    def failed_create_id(self) -> str:
        return FAILED_CREATE_PREFIX + self.request_id


@dataclass(frozen=True)
class Result:
    """What Create and Update answer: the physical id and the attributes for Fn::GetAtt."""

    physical_id: str
    data: dict[str, str]


def is_failed_create_id(physical_id: str) -> bool:
    return physical_id.startswith(FAILED_CREATE_PREFIX)


def issued_at(response_url: str) -> datetime | None:
    """The signing time of CloudFormation's pre-signed (SigV4) ResponseURL, or None when it has none."""
    values = parse_qs(urlsplit(response_url).query).get("X-Amz-Date")
    if not values:
        return None
    try:
        return datetime.strptime(values[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_properties(raw: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Convert CloudFormation's strings to the types the schema declares, then validate with the schema.

    CloudFormation sends every scalar as a string, so "false" must become False (it is truthy as a string).
    Values that do not convert are left as they are, and the schema names them.
    """
    declared = schema["properties"]
    converted: dict[str, Any] = {}
    for name, value in raw.items():
        if name in CLOUDFORMATION_PROPERTIES:
            continue
        kind = declared.get(name, {}).get("type")
        converted[name] = _convert(value, kind)
    try:
        return dict(validate(event=converted, schema=schema))
    except SchemaValidationError as error:
        raise InvalidProperties(_describe(error, declared)) from None


def _convert(value: Any, kind: str | None) -> Any:
    if not isinstance(value, str):
        return value
    if kind == "boolean" and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if kind == "integer" and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if kind in ("object", "array"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _describe(error: SchemaValidationError, declared: dict[str, Any]) -> str:
    """A short Reason naming the property and what it allows."""
    message = str(error.validation_message)
    if "must not contain" in message:
        unknown = sorted(set(error.value or {}) - set(declared))
        return f"Unknown property {', '.join(unknown)}; allowed: {', '.join(sorted(declared))}"
    missing = re.search(r"must contain \[(.*)\] properties", message)
    if missing:
        return f"Missing required property: {missing.group(1).replace("'", '')}"
    path = [str(part) for part in (error.path or [])[1:]]
    name = ".".join(path) or "properties"
    shown = repr(error.value) if len(repr(error.value)) <= 60 else repr(error.value)[:57] + "...'"
    what = message.removeprefix(f"data.{name} ").removeprefix("data ")
    if what.startswith("must match pattern"):
        what = "does not match the allowed pattern"
    allowed = declared.get(path[0], {}).get("description") if path else None
    reason = f"Invalid {name} {shown}: {what}"
    return f"{reason} ({allowed})" if allowed else reason
