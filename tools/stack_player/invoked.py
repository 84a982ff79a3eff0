"""What `make invoke` made: the resources the request files of events/ created, kept in the state folder
(`invoked.json`) with their last properties and physical id, as CloudFormation would hold them for the stack the
event names. `make local-delete` deletes them with that stack (before its own resources, while the provider's
function and role still serve them), so that nothing the events made is left behind.

An Update that answers another physical id is a replacement: as CloudFormation does in its cleanup phase, the old
physical id gets a Delete (with the old properties) at once.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

from emulation.cloudformation import LambdaContext
from tools.stack_player.aws import LocalAws

FILE = "invoked.json"
ANSWER_TIMEOUT_SECONDS = 900.0


def stack_name_of(event: dict[str, Any]) -> str:
    """The stack an event's StackId names (arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>)."""
    parts = str(event.get("StackId", "")).split("/")
    return parts[1] if len(parts) > 2 else ""


def request(aws: LocalAws, event: dict[str, Any]) -> dict[str, Any]:
    """The event with a fresh RequestId and a local ResponseURL, through the provider; its one answer."""
    request_id = str(uuid.uuid4())
    event = {**event, "RequestId": request_id, "ResponseURL": aws.responses.url_for(request_id)}
    context = LambdaContext(300.0, function_arn=str(event.get("ServiceToken", "")))
    threading.Thread(target=aws.invoke_provider, args=(event, context), daemon=True).start()
    return aws.responses.wait_for(request_id, timeout=ANSWER_TIMEOUT_SECONDS)


class Invoked:
    """The resources the events made, by stack and logical id."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE
        self.records: dict[str, dict[str, Any]] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def save(self) -> None:
        if self.records:
            self.path.write_text(json.dumps(self.records, indent=2) + "\n")
        else:
            self.path.unlink(missing_ok=True)

    @staticmethod
    def key(event: dict[str, Any]) -> str:
        return f"{stack_name_of(event)}/{event.get('LogicalResourceId', '')}"

    def answered(self, event: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any] | None:
        """Keep what a request left, as CloudFormation would: a Create's resource (a failed Create's too: its
        rollback Delete is owed), an Update's new properties (the old ones when it failed). Returns the cleanup
        Delete a replacement owes (the old physical id, the old properties), None when it owes none."""
        kind, key, physical_id = event.get("RequestType"), self.key(event), answer.get("PhysicalResourceId", "")
        succeeded = answer.get("Status") == "SUCCESS"
        if kind == "Delete":
            if succeeded and self.records.get(key, {}).get("PhysicalResourceId") == event.get("PhysicalResourceId"):
                del self.records[key]
            return None
        properties = event.get("ResourceProperties", {})
        if kind == "Update" and not succeeded:
            properties, physical_id = event.get("OldResourceProperties", {}), event.get("PhysicalResourceId", "")
        self.records[key] = {**_resource(event), "ResourceProperties": properties, "PhysicalResourceId": physical_id}
        old = event.get("PhysicalResourceId")
        if kind == "Update" and succeeded and old and old != physical_id:
            return {**_resource(event), "RequestType": "Delete", "PhysicalResourceId": old,
                    "ResourceProperties": event.get("OldResourceProperties", {})}  # fmt: skip
        return None

    def delete(self, aws: LocalAws, stack_name: str) -> list[str]:
        """Delete every resource the events made in `stack_name`; one line each. A failed Delete keeps its record."""
        notes = []
        for key, record in list(self.records.items()):
            if stack_name_of(record) != stack_name:
                continue
            answer = request(aws, {**record, "RequestType": "Delete"})
            what = f"{record['LogicalResourceId']} ({record['PhysicalResourceId']}), which make invoke made"
            if answer.get("Status") == "SUCCESS":
                del self.records[key]
                notes.append(f"deleted {what}")
            else:
                notes.append(f"could not delete {what}: {answer.get('Reason', '')}")
        self.save()
        return notes


def _resource(event: dict[str, Any]) -> dict[str, Any]:
    """What names a resource in a request: everything but the request's own id, URL, type and old properties."""
    dropped = ("RequestId", "ResponseURL", "RequestType", "OldResourceProperties", "ResourceProperties")
    return {key: value for key, value in event.items() if key not in dropped}
