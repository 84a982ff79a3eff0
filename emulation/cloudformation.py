"""Stand-ins for CloudFormation in tests: its request events, a Lambda context, and the pre-signed S3
endpoint its custom resources answer to (a local HTTPS server whose CA is trusted through SSL_CERT_FILE)."""

from __future__ import annotations

import json
import random
import ssl
import string
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

EVENTS = Path(__file__).resolve().parents[1] / "events"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
# The provider function of the tiers that run the handler outside a played stack (tools/shipped_iam.TestStack's).
FUNCTION_NAME = "ecr-pull-through-cache-provider"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/cache-stack/5b1a6c80-0e4c-11ef-9d37-0a1b2c3d4e5f"
# A secret-looking query string: tests assert that it never reaches a log.
SIGNATURE = "7f3c1e0d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e"


@dataclass
class ResponseEndpoint:
    """Local HTTPS server recording every PUT, the way CloudFormation's response bucket receives answers."""

    server: ThreadingHTTPServer
    ca_file: str
    received: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    headers: dict[str, list[dict[str, str]]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url_for(self, request_id: str, issued: datetime | None = None) -> str:
        issued = issued or datetime.now(UTC)
        return (
            f"https://localhost:{self.port}/cloudformation-responses/{request_id}"
            f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={issued:%Y%m%dT%H%M%SZ}"
            f"&X-Amz-Expires=7200&X-Amz-SignedHeaders=host&X-Amz-Signature={SIGNATURE}"
        )

    def answers(self, request_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received.get(request_id, []))

    def wait_for(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The one answer to a request; fails if there is none or more than one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.answers(request_id):
            time.sleep(0.01)
        answers = self.answers(request_id)
        assert len(answers) == 1, f"expected exactly one answer to {request_id}, got {len(answers)}: {answers}"
        return answers[0]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_response_endpoint() -> ResponseEndpoint:
    authority = trustme.CA()
    certificate = authority.issue_cert("localhost", "127.0.0.1")
    ca_file = tempfile.NamedTemporaryFile(prefix="cfn-ca-", suffix=".pem", delete=False)  # noqa: SIM115
    authority.cert_pem.write_to_path(ca_file.name)
    endpoint: ResponseEndpoint

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            request_id = self.path.split("?")[0].rsplit("/", 1)[-1]
            with endpoint.lock:
                endpoint.received[request_id].append(json.loads(body))
                endpoint.headers[request_id].append(dict(self.headers.items()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    endpoint = ResponseEndpoint(server=server, ca_file=ca_file.name)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return endpoint


class LambdaContext:
    """The parts of the Lambda context the handler reads."""

    def __init__(self, remaining_seconds: float = 300.0, function_arn: str = "") -> None:
        self.ends_at = time.monotonic() + remaining_seconds
        self.invoked_function_arn = function_arn or f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION_NAME}"
        self.function_name = self.invoked_function_arn.rsplit(":", 1)[-1]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.ends_at - time.monotonic()) * 1000))


def make_event(
    endpoint: ResponseEndpoint,
    request_type: str,
    properties: dict[str, Any],
    *,
    resource_type: str = "Custom::PullThroughCacheRule",
    logical_id: str = "CacheRule",
    physical_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """A request as CloudFormation sends it: every scalar property a string."""
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:ecr-pull-through-cache-provider",
        "ResponseURL": endpoint.url_for(request_id, issued),
        "StackId": STACK_ID,
        "RequestId": request_id,
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": as_cloudformation_sends(
            {"ServiceToken": "arn:aws:lambda:function", "ServiceTimeout": 600, **properties}
        ),
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if old_properties is not None:
        event["OldResourceProperties"] = as_cloudformation_sends(old_properties)
    return event


def generated_physical_id(stack_id: str, logical_id: str) -> str:
    """The physical id CloudFormation makes up for a custom resource whose Create never answered: the Delete that
    rolls such a Create back (CloudFormation cancelled it when a sibling failed, or stopped waiting at its
    ServiceTimeout) carries it (cloudformation-coverage-roadmap issue 1814; binxio/cfn-certificate-provider issue
    31). Its form is CloudFormation's for names it makes itself: <stack name>-<logical id>-<12 random characters>."""
    stack_name = stack_id.split("/")[1] if stack_id.count("/") >= 2 else stack_id
    suffix = "".join(random.choices(string.ascii_uppercase + string.digits, k=12))  # noqa: S311 - not a secret
    return f"{stack_name}-{logical_id}-{suffix}"


def load_event(endpoint: ResponseEndpoint, name: str, replacements: dict[str, str] | None = None) -> dict[str, Any]:
    """An event from events/, with a fresh RequestId and a ResponseURL pointing at the endpoint."""
    text = (EVENTS / name).read_text()
    for old, new in (replacements or {}).items():
        text = text.replace(old, new)
    event: dict[str, Any] = json.loads(text)
    event["RequestId"] = str(uuid.uuid4())
    event["ResponseURL"] = endpoint.url_for(event["RequestId"])
    return event


def as_cloudformation_sends(value: Any) -> Any:
    """CloudFormation turns every scalar into a string (booleans as "true"/"false")."""
    if isinstance(value, dict):
        return {key: as_cloudformation_sends(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_cloudformation_sends(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
