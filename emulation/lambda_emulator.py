"""A local stand-in for the Lambda Invoke API, which moto can only serve with Docker: it runs our handler
in-process, asynchronously for InvocationType Event as Lambda does. boto3 reaches it through
AWS_ENDPOINT_URL_LAMBDA, so the provider's self-invocation travels over real HTTP.

Every other Lambda API call (ListFunctions, GetFunction: what the image expiry reads of the functions in use) is
passed on, as signed, to moto's server (AWS_ENDPOINT_URL when the emulator starts), which serves and authorizes it.

One execution environment: invocations run one at a time, as each Lambda environment does. (Lambda would start
another environment for an overlapping invocation; in one process that would share the handler's module state,
which no two real environments do.)"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from emulation import iam
from emulation.cloudformation import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaEmulator:
    server: ThreadingHTTPServer
    handler: Handler
    timeout_seconds: float
    invocations: list[dict[str, Any]] = field(default_factory=list)
    running: list[threading.Thread] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    environment: threading.Lock = field(default_factory=threading.Lock)
    # What Lambda does at each invocation besides running the handler (writing its logs as the function's role).
    on_invocation: Callable[[], None] = lambda: None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def invoke(self, event: dict[str, Any], asynchronous: bool, function: str = "") -> None:
        """Run the handler on the event, as the function named (its ARN or name) would be invoked."""
        with self.lock:
            self.invocations.append(event)
        if not asynchronous:
            self._run(event, function)
            return
        thread = threading.Thread(target=self._run, args=(event, function), daemon=True)
        with self.lock:
            self.running.append(thread)
        thread.start()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every invocation started so far, and any it started, has finished."""
        while True:
            with self.lock:
                pending = [thread for thread in self.running if thread.is_alive()]
            if not pending:
                return
            for thread in pending:
                thread.join(timeout)

    def close(self) -> None:
        self.wait_idle()
        self.server.shutdown()
        self.server.server_close()

    def _run(self, event: dict[str, Any], function: str) -> None:
        arn = function if function.startswith("arn:") else ""
        try:
            with self.environment:
                self.on_invocation()
                self.handler(event, LambdaContext(self.timeout_seconds, function_arn=arn))
        except BaseException as error:
            with self.lock:
                self.errors.append(error)


def start_lambda_emulator(
    handler: Handler | None = None,
    timeout_seconds: float = 300.0,
    on_invocation: Callable[[], None] | None = None,
    forward_to: str | None = None,
) -> LambdaEmulator:
    """Serve the Invoke API for `handler` (by default the provider's) on a free local port. A caller holding an
    emulation/iam principal's credentials is allowed to invoke it only as IAM would allow lambda:InvokeFunction."""
    if handler is None:
        from ecr_cache_provider.handler import lambda_handler

        handler = lambda_handler
    emulator: LambdaEmulator
    moto_url = forward_to or os.environ.get("AWS_ENDPOINT_URL", "")

    class Endpoint(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            if not (self.path.startswith("/2015-03-31/functions/") and self.path.endswith("/invocations")):
                self._forward()
                return
            event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            function = unquote(self.path.removeprefix("/2015-03-31/functions/").removesuffix("/invocations"))
            denied = iam.denies_invoke(self.headers.get("Authorization", ""), function)
            if denied is not None:
                self._answer(403, json.dumps({"Type": "User", "message": denied}).encode(),
                             {"x-amzn-ErrorType": "AccessDeniedException"})  # fmt: skip
                return
            asynchronous = self.headers.get("X-Amz-Invocation-Type") == "Event"
            emulator.invoke(event, asynchronous, function)
            self._answer(202 if asynchronous else 200, b"", {})

        def _forward(self) -> None:
            """Any other Lambda API call: moto's server answers it (the signature's access key names the caller)."""
            if not moto_url:
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length) if length else None
            headers = {name: value for name, value in self.headers.items() if name.lower() != "host"}
            forwarded = urllib.request.Request(moto_url + self.path, data=body, headers=headers, method=self.command)  # noqa: S310
            try:
                with urllib.request.urlopen(forwarded, timeout=30) as answer:  # noqa: S310 - moto's local URL
                    status, content, answer_headers = answer.status, answer.read(), dict(answer.headers)
            except urllib.error.HTTPError as error:
                status, content, answer_headers = error.code, error.read(), dict(error.headers)
            kept = {k: v for k, v in answer_headers.items() if k.lower().startswith("x-amz") or k == "Content-Type"}
            self._answer(status, content, kept)

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    emulator = LambdaEmulator(server=server, handler=handler, timeout_seconds=timeout_seconds)
    if on_invocation is not None:
        emulator.on_invocation = on_invocation
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return emulator


def published_metrics(output: str) -> dict[str, float]:
    """The totals of the metrics invocations wrote as CloudWatch embedded metrics: one JSON document a line, naming
    its metrics under _aws; each a value, or a list of values."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        if not (line.startswith("{") and '"_aws"' in line):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                name, value = metric["Name"], document[metric["Name"]]
                totals[name] = totals.get(name, 0) + (sum(value) if isinstance(value, list) else value)
    return totals
