"""What the two local registries share: a threaded HTTP server on 127.0.0.1, the distribution API's paths, and its
error bodies (OCI distribution spec, "Error Codes": `{"errors": [{"code", "message", "detail"}]}`)."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .fixtures import Blob, Manifest

# /v2/<name>/manifests/<reference> and /v2/<name>/blobs/<digest>: a name may hold slashes (distribution spec).
API_PATH = re.compile(r"^/v2/(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that closed its kept-alive connection (a pool closed once its pulls end) is no error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class RegistryHandler(BaseHTTPRequestHandler):
    """Request handler base: `registry` is the emulated registry object that serves the requests."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm, a kept-alive connection then waits on the
    # client's delayed ACK (tens of milliseconds) before the body. Registries and S3 do not make a client wait so.
    disable_nagle_algorithm = True
    registry: Any = None

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        with self.registry.lock:
            self.registry.requests.append((method, self.path.split("?")[0]))
        if self.registry.latency:
            time.sleep(self.registry.latency)  # the injected network latency of every request
        try:
            self.registry.serve(self, method)
        except (BrokenPipeError, ConnectionResetError):
            return

    # Answers

    def error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
        self.answer(status, body, {"Content-Type": "application/json", **(headers or {})})

    def answer(self, status: int, body: bytes, headers: dict[str, str], method: str = "GET") -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def manifest(self, manifest: Manifest, method: str) -> None:
        headers = {"Content-Type": manifest.media_type, "Docker-Content-Digest": manifest.digest}
        self.answer(200, manifest.body, headers, method)

    def blob(self, blob: Blob, method: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(blob.size))
        self.send_header("Docker-Content-Digest", blob.digest)
        self.end_headers()
        if method != "HEAD":
            for chunk in _chunks(blob):
                self.wfile.write(chunk)

    def redirect(self, location: str) -> None:
        self.answer(307, b"", {"Location": location})


def _chunks(blob: Blob) -> Iterable[bytes]:
    return blob.chunks()


def start(registry: Any) -> tuple[Server, str]:
    """Serve `registry` on a free port of 127.0.0.1 in a daemon thread; the server and its base URL."""
    handler = type("Handler", (RegistryHandler,), {"registry": registry})
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True, name=f"registry-{server.server_port}").start()
    return server, f"http://127.0.0.1:{server.server_port}"
