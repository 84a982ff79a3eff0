"""CloudFormation's all-strings properties, converted to the schema's types and validated, called directly."""

from __future__ import annotations

from typing import Any

import pytest

from ecr_cache_provider.failures import InvalidProperties
from ecr_cache_provider.grammar.prefix import PREFIX_PATTERN
from ecr_cache_provider.properties import parse_properties

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["Prefix"],
    "properties": {
        "Prefix": {"type": "string", "pattern": PREFIX_PATTERN, "description": "lowercase letters and '/'"},
        "Enabled": {"type": "boolean", "default": True},
        "Count": {"type": "integer", "minimum": 1},
        "Policy": {"type": ["string", "object"]},
        "Settings": {"type": "object"},
        "Tags": {"type": "array"},
    },
}


def test_strings_become_the_declared_types() -> None:
    raw = {"Prefix": "quay", "Enabled": "false", "Count": " 12 ", "Settings": '{"a": 1}', "Tags": '["x"]'}

    assert parse_properties(raw, SCHEMA) == {
        "Prefix": "quay",
        "Enabled": False,
        "Count": 12,
        "Settings": {"a": 1},
        "Tags": ["x"],
    }


@pytest.mark.parametrize("text", ["true", "TRUE", " True "])
def test_true_in_any_case(text: str) -> None:
    assert parse_properties({"Prefix": "quay", "Enabled": text}, SCHEMA)["Enabled"] is True


def test_defaults_are_filled_in_and_cloudformation_properties_left_out() -> None:
    raw = {"Prefix": "quay", "ServiceToken": "arn:aws:lambda:...", "ServiceTimeout": "300"}

    assert parse_properties(raw, SCHEMA) == {"Prefix": "quay", "Enabled": True}


def test_values_already_typed_are_kept() -> None:
    assert parse_properties({"Prefix": "quay", "Enabled": False, "Count": 3}, SCHEMA)["Count"] == 3


def test_a_string_or_object_property_stays_text() -> None:
    """Only object- and array-typed properties are parsed as JSON; a string-or-object one is the type's to read."""
    assert parse_properties({"Prefix": "quay", "Policy": '{"rules": []}'}, SCHEMA)["Policy"] == '{"rules": []}'


REASONS: dict[str, tuple[dict[str, Any], str]] = {
    "a boolean that is not one": ({"Prefix": "quay", "Enabled": "yes"}, "Invalid Enabled 'yes': must be boolean"),
    "an integer that is not one": ({"Prefix": "quay", "Count": "1.5"}, "Invalid Count '1.5': must be integer"),
    "an integer out of range": ({"Prefix": "quay", "Count": "0"}, "Invalid Count 0: must be bigger than or equal"),
    "an object that is not JSON": ({"Prefix": "quay", "Settings": "{a"}, "Invalid Settings '{a': must be object"),
    "a missing property": ({"Enabled": "true"}, "Missing required property: Prefix"),
    "unknown properties, sorted": (
        {"Prefix": "quay", "Zeta": "1", "Alpha": "2"},
        "Unknown property Alpha, Zeta; allowed: Count, Enabled, Policy, Prefix, Settings, Tags",
    ),
    "a pattern, with what it allows": (
        {"Prefix": "Quay"},
        "Invalid Prefix 'Quay': does not match the allowed pattern (lowercase letters and '/')",
    ),
    "a long value, shortened": ({"Prefix": "Q" * 100}, "Invalid Prefix '" + "Q" * 56 + "...'"),
}


@pytest.mark.parametrize(("raw", "reason"), list(REASONS.values()), ids=list(REASONS))
def test_the_reason_names_the_property_at_fault(raw: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidProperties) as raised:
        parse_properties(raw, SCHEMA)

    assert reason in str(raised.value)
