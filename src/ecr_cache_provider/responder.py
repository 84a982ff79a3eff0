"""crhelper answers CloudFormation; this subclass fixes the defaults and adds the guarantees we promise.

- One answer per invocation: the timeout timer and the handler can both try to answer; only the first is sent.
- Never an empty or random physical id: a failed Create answers a marker that a rollback's Delete recognises.
- No event or ResponseURL in the logs at any level (crhelper logs both at DEBUG), no 120 s sleep on Delete.
- The answer stays under CloudFormation's 4,096-byte limit; FAILED answers carry no attributes.
- An invocation can hand its work to a follow-up invocation and not answer at all.
- When the provider failed to load, every request is answered FAILED with the error, except the rollback's Delete
  of a failed Create, which has nothing to remove and is answered SUCCESS (so the stack does not wedge).
- It imports only the standard library and crhelper: it must exist before anything that could fail to load.
- No clients for crhelper's polling mode, which we do not use (its EventBridge rules would hold the ResponseURL).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

import crhelper

# crhelper's type stubs leave out the internals overridden here, so it is used untyped.
CrHelperResource: Any = crhelper.CfnResource
FAILED = "FAILED"
MAX_RESPONSE_BYTES = 4096
MAX_REASON_CHARACTERS = 256  # crhelper keeps only the tail of a longer Reason; we keep the head, which names the cause

# A failed Create answers this id. It is not a valid name of anything we manage, so the Delete that
# follows in the rollback can recognise it and remove nothing.
FAILED_CREATE_PREFIX = "failed-create:"


class CloudFormationResponder(CrHelperResource):  # type: ignore[misc]
    # crhelper's per-invocation state, as it sets it
    Status: str
    Reason: str
    PhysicalResourceId: str
    Data: dict[str, Any]
    _event: dict[str, Any]
    _init_failed: BaseException | None

    def __init__(self) -> None:
        # crhelper makes Lambda, EventBridge and CloudWatch Logs clients for its polling mode, which we do not use;
        # they cost about 120 ms of every cold start. It skips them when AWS_SAM_LOCAL is set, so set it meanwhile.
        previous = os.environ.get("AWS_SAM_LOCAL")
        os.environ["AWS_SAM_LOCAL"] = "true"
        try:
            super().__init__(json_logging=False, log_level="INFO", boto_level="WARNING", sleep_on_delete=0)
        finally:
            if previous is None:
                del os.environ["AWS_SAM_LOCAL"]
            else:
                os.environ["AWS_SAM_LOCAL"] = previous
        # crhelper's DEBUG lines print the whole event and the ResponseURL: keep its loggers above DEBUG.
        logging.getLogger("crhelper").setLevel(logging.INFO)
        self._answer_lock = threading.Lock()
        self._answered = False
        self._handed_off = False

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        self._answered = False
        self._handed_off = False
        load_failure = self._init_failed
        if load_failure is not None and _deletes_a_failed_create(event):
            self._init_failed = None  # nothing was made, so nothing of the provider is needed to answer
            self.delete(lambda event, context: None)
        try:
            super().__call__(event, context)
        finally:
            self._init_failed = load_failure

    def init_failure(self, error: BaseException) -> None:
        """The provider could not be loaded: every request is answered FAILED with this Reason."""
        super().init_failure(RuntimeError(f"The provider failed to load: {type(error).__name__}: {error}"))

    def hand_off(self) -> None:
        """This invocation passed the request on to another one, which will answer."""
        self._handed_off = True

    def generate_physical_id(self, event: dict[str, Any]) -> str:
        # crhelper calls this when a Create returned no id, which only happens when it failed.
        return FAILED_CREATE_PREFIX + str(event.get("RequestId", ""))

    def _send(self, status: str | None = None, reason: str = "") -> None:
        with self._answer_lock:
            if self._answered or self._handed_off:
                return
            self._answered = True
        if not self.PhysicalResourceId:
            self.PhysicalResourceId = self._event.get("PhysicalResourceId") or self.generate_physical_id(self._event)
        if FAILED in (status, self.Status):
            self.Data = {}
        self.Reason = _shorten(str(self.Reason))
        reason = _shorten(reason)
        if self._size(status, reason) > MAX_RESPONSE_BYTES:
            self.Data = {}
            status, reason = FAILED, "The resource's attributes do not fit in CloudFormation's 4,096-byte response"
        super()._send(status, reason)

    def _size(self, status: str | None, reason: str) -> int:
        body = {
            "Status": status or self.Status,
            "Reason": reason or self.Reason,
            "PhysicalResourceId": str(self.PhysicalResourceId),
            "StackId": self.StackId,
            "RequestId": self.RequestId,
            "LogicalResourceId": self.LogicalResourceId,
            "Data": self.Data,
            "NoEcho": self.NoEcho,
        }
        return len(json.dumps(body).encode())


def _deletes_a_failed_create(event: dict[str, Any]) -> bool:
    return event.get("RequestType") == "Delete" and str(event.get("PhysicalResourceId", "")).startswith(
        FAILED_CREATE_PREFIX
    )


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARACTERS else text[: MAX_REASON_CHARACTERS - 3] + "..."
