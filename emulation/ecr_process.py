"""ECR served from a process of its own, as the real one is remote: the benchmarks' provider and the emulation do not
compete for one interpreter, so a figure measures the provider rather than moto.

The benchmark starts its own script again with `--serve`: that process seeds moto, arms the faults, prints the
endpoint's URL, serves until its stdin closes, then prints one `RESULT {json}` line (the counts it kept)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulation.moto_server import FAKE_AWS_ENVIRONMENT
from emulation.ownership import TABLE_NAME


@dataclass
class EcrProcess:
    process: subprocess.Popen[str]
    endpoint_url: str

    @classmethod
    def start(cls, script: str, arguments: list[str]) -> EcrProcess:
        """Run `script --serve arguments...` and wait for the endpoint it serves."""
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, script, "--serve", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        return cls(process, process.stdout.readline().strip())

    def finish(self) -> dict[str, Any]:
        """Tell the process to stop serving; what it reported."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        output = self.process.stdout.read().splitlines()
        self.process.wait()
        result: dict[str, Any] = json.loads(next(line for line in output if line.startswith("RESULT "))[7:])
        return result


def serve_until_stdin_closes(endpoint_url: str, report: Callable[[], dict[str, Any]]) -> None:
    """The serving side: announce the endpoint, serve until stdin closes, then print `report()` with the CPU time
    the emulation spent meanwhile."""
    print(endpoint_url, flush=True)
    cpu_at_start = time.process_time()
    sys.stdin.read()
    cpu_seconds = time.process_time() - cpu_at_start
    print("RESULT", json.dumps(report() | {"cpu_seconds": cpu_seconds}), flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every such benchmark takes: the latency of each ECR call, the Lambda timeout, and `--serve`."""
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added to every ECR call")
    parser.add_argument("--lambda-timeout", type=float, default=120.0, help="seconds each invocation may run")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)


def serves(options: argparse.Namespace, serve: Callable[[argparse.Namespace], None]) -> bool:
    """Give this process its AWS environment; in the `--serve` process, serve ECR and say so (True)."""
    os.environ.update(FAKE_AWS_ENVIRONMENT)
    if options.serve:
        serve(options)
        return True
    os.environ.update({"POWERTOOLS_LOG_LEVEL": "WARNING", "OWNERSHIP_TABLE": TABLE_NAME})
    return False


def settings_line(options: argparse.Namespace) -> str:
    """The latency, the provider's concurrency and its Lambda timeout, for the report's first line."""
    from ecr_cache_provider.engine import batches as namespace

    return (
        f"latency per call: {options.latency * 1000:.0f} ms, provider concurrency: {namespace.CONCURRENCY}, "
        f"Lambda timeout {options.lambda_timeout:.0f} s (hand-off {namespace.HAND_OFF_SECONDS:.0f} s before it)"
    )
