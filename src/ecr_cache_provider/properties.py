"""CloudFormation's all-strings properties as validated, typed values, and Reasons that name the property at fault."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate

from ecr_cache_provider.failures import InvalidProperties

# Properties CloudFormation itself adds or reads; never passed to a resource type.
CLOUDFORMATION_PROPERTIES = ("ServiceToken", "ServiceTimeout")


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
    what = re.sub(r"^data\S* ", "", message)  # data.Name, data.Name[0] or data
    if what.startswith("must match pattern"):
        what = "does not match the allowed pattern"
    allowed = declared.get(path[0], {}).get("description") if path else None
    reason = f"Invalid {name} {shown}: {what}"
    return f"{reason} ({allowed})" if allowed else reason


def json_document(name: str, value: str | dict[str, Any]) -> Any:
    """A property given as JSON text or as an object (then a copy, free to change)."""
    if not isinstance(value, str):
        return copy.deepcopy(value)
    try:
        return json.loads(value)
    except ValueError as error:
        raise InvalidProperties(f"{name} is not valid JSON: {error}") from None


def policy_text(document: Any) -> str:
    """The text sent to ECR: compact JSON, so that length checks and comparisons are stable."""
    return json.dumps(document, separators=(",", ":"))


def compact_json(name: str, document: Any, maximum: int) -> str:
    """The document as ECR is sent it (policy_text), when ECR accepts its length."""
    text = policy_text(document)
    if len(text) > maximum:
        raise InvalidProperties(f"{name} is {len(text)} characters; ECR accepts at most {maximum}")
    return text
