"""What CloudFormation remembers about a stack between operations, kept as JSON in the state folder:
per logical id the type, physical id, the properties last sent, and the attributes last answered."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.stack_player.aws import ACCOUNT_ID, REGION


@dataclass
class ResourceRecord:
    logical_id: str
    resource_type: str
    physical_id: str
    properties: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    native: bool = False


@dataclass
class StackState:
    stack_name: str
    stack_id: str
    parameters: dict[str, Any] = field(default_factory=dict)
    # In creation order, so that deletes can run in reverse.
    resources: dict[str, ResourceRecord] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    # Export name -> value, for Fn::ImportValue in stacks played after this one (examples/).
    exports: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, stack_name: str) -> StackState:
        stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{stack_name}/{uuid.uuid4()}"
        return cls(stack_name=stack_name, stack_id=stack_id)

    @property
    def exists(self) -> bool:
        return bool(self.resources)


def state_file(state_dir: Path, stack_name: str) -> Path:
    return state_dir / "stacks" / f"{stack_name}.json"


def load_state(state_dir: Path, stack_name: str) -> StackState:
    """The stack as the last run left it, or a new (not yet created) stack."""
    path = state_file(state_dir, stack_name)
    if not path.exists():
        return StackState.new(stack_name)
    data = json.loads(path.read_text())
    resources = {item["logical_id"]: ResourceRecord(**item) for item in data.pop("resources")}
    return StackState(**data, resources=resources)


def load_exports(state_dir: Path, except_stack: str) -> dict[str, Any]:
    """Every export of the other stacks in the state folder."""
    exports: dict[str, Any] = {}
    for path in sorted((state_dir / "stacks").glob("*.json")):
        if path != state_file(state_dir, except_stack):
            exports.update(json.loads(path.read_text()).get("exports", {}))
    return exports


def save_state(state_dir: Path, state: StackState) -> None:
    """Write the stack, or remove its file once the stack has no resources left (it no longer exists)."""
    path = state_file(state_dir, state.stack_name)
    if not state.exists:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(state)
    data["resources"] = list(data["resources"].values())
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
