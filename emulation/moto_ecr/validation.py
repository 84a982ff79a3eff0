"""Server-side input validation driven by the installed botocore ECR model.

The real service (a Coral/Java service) checks ``min``/``max``/``pattern``/``enum`` constraints
of the request shape and answers ``ValidationException`` with a message such as::

    1 validation error detected: Value 'X' at 'ecrRepositoryPrefix' failed to satisfy
    constraint: Member must satisfy regular expression pattern: ^(...)$

botocore only checks ``required``, types and ``min`` client-side, so requests with
``parameter_validation`` disabled, or values that violate ``max``/``pattern``/``enum``,
reach the server and are rejected here with the same wording.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.session

from .exceptions import ValidationException

if TYPE_CHECKING:
    from botocore.model import OperationModel, Shape


@cache
def _operation_model(operation: str) -> OperationModel:
    return botocore.session.get_session().get_service_model("ecr").operation_model(operation)


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _scalar_problems(shape: Shape, value: Any) -> list[str]:
    meta = shape.metadata
    problems: list[str] = []
    if shape.type_name == "string" and isinstance(value, str):
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"Member must have length less than or equal to {meta['max']}")
        # Smithy/Coral patterns are unanchored searches unless they anchor themselves.
        if "pattern" in meta and not re.search(meta["pattern"], value):
            problems.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
        if "enum" in meta and value not in meta["enum"]:
            problems.append(f"Member must satisfy enum value set: [{', '.join(meta['enum'])}]")
    elif shape.type_name in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        if "min" in meta and value < meta["min"]:
            problems.append(f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            problems.append(f"Member must have value less than or equal to {meta['max']}")
    return problems


def _walk_structure(shape: Shape, value: dict[str, Any], path: str, errors: list[str]) -> None:
    for name in getattr(shape, "required_members", []):
        if value.get(name) is None:
            member_path = f"{path}.{name}" if path else name
            errors.append(f"Value null at '{member_path}' failed to satisfy constraint: Member must not be null")
    for name, member in shape.members.items():  # type: ignore[attr-defined]
        if name in value:
            _walk(member, value[name], f"{path}.{name}" if path else name, errors)


def _walk_list(shape: Shape, value: list[Any], path: str, errors: list[str]) -> None:
    meta = shape.metadata
    if "min" in meta and len(value) < meta["min"]:
        errors.append(
            f"Value '{_fmt(value)}' at '{path}' failed to satisfy constraint: "
            f"Member must have length greater than or equal to {meta['min']}"
        )
    if "max" in meta and len(value) > meta["max"]:
        errors.append(
            f"Value '{_fmt(value)}' at '{path}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {meta['max']}"
        )
    member = shape.member  # type: ignore[attr-defined]
    if member.type_name in ("structure", "list"):
        for index, item in enumerate(value, start=1):
            _walk(member, item, f"{path}.{index}.member", errors)
        return
    inner = sorted({p for item in value for p in _scalar_problems(member, item)})
    if inner:
        errors.append(
            f"Value '{_fmt(value)}' at '{path}' failed to satisfy constraint: "
            f"Member must satisfy constraint: [{', '.join(inner)}]"
        )


def _walk(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if value is None:
        return
    if shape.type_name == "structure" and isinstance(value, dict):
        _walk_structure(shape, value, path, errors)
    elif shape.type_name == "list" and isinstance(value, list):
        _walk_list(shape, value, path, errors)
    else:
        problems = _scalar_problems(shape, value)
        if problems:
            errors.append(f"Value '{_fmt(value)}' at '{path}' failed to satisfy constraint: {'; '.join(problems)}")


def validate_request(operation: str, params: dict[str, Any]) -> None:
    """Raise ``ValidationException`` if ``params`` violate the model of ``operation``."""
    shape = _operation_model(operation).input_shape
    if shape is None:
        return
    errors: list[str] = []
    _walk(shape, params, "", errors)
    if errors:
        plural = "s" if len(errors) > 1 else ""
        raise ValidationException(f"{len(errors)} validation error{plural} detected: " + "; ".join(errors))
