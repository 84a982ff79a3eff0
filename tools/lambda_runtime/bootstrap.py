"""Run one event through a sam-built function the way the Lambda python3.13 runtime does: the function's folder
first on sys.path, then only what the runtime's interpreter has (its boto3 and botocore). Standard library only:
this file runs inside that clean interpreter, started with -I so that no PYTHONPATH or user site leaks in, and
with -B: Lambda cannot write bytecode to /var/task.

    python -I -B bootstrap.py FUNCTION_DIR MODULE.FUNCTION TIMEOUT_SECONDS REPORT_FILE < event.json

The handler's own output (its logs) goes to stdout and stderr as on Lambda. REPORT_FILE receives a JSON report:
how the invocation ended, how long loading the handler and serving the event took (wall and processor time), the
botocore it ran with, any module loaded from outside the function's folder, the runtime's packages and the standard
library (which would not exist on Lambda), and any module of the function's folder loaded without bytecode.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import sysconfig
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
FUNCTION_NAME = "ecr-pull-through-cache-provider"


class LambdaContext:
    """What the Lambda runtime hands a function: its identity and the time it has left."""

    def __init__(self, timeout_seconds: float) -> None:
        self.ends_at = time.monotonic() + timeout_seconds
        self.function_name = FUNCTION_NAME
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION_NAME}"
        self.memory_limit_in_mb = 1024
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{FUNCTION_NAME}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.ends_at - time.monotonic()) * 1000))


def foreign_modules(function_dir: Path) -> list[str]:
    """Modules loaded from anywhere but the function's folder, the runtime's site-packages and the standard library."""
    allowed = [function_dir.resolve(), *(Path(sysconfig.get_path(key)).resolve() for key in ("stdlib", "platstdlib"))]
    allowed += [Path(path).resolve() for path in sys.path if "site-packages" in path]
    allowed.append(Path(__file__).resolve())  # this bootstrap, which stands for the runtime's own
    foreign = []
    for name, module in list(sys.modules.items()):
        location = getattr(module, "__file__", None)
        if location and not any(Path(location).resolve().is_relative_to(place) for place in allowed):
            foreign.append(f"{name} ({location})")
    return sorted(foreign)


def modules_without_bytecode(function_dir: Path) -> list[str]:
    """Modules of the function's folder loaded without bytecode that matches their source: Lambda compiles them at
    every cold start, since it cannot write bytecode to /var/task."""
    uncompiled = []
    for name, module in list(sys.modules.items()):
        location = getattr(module, "__file__", None)
        if not location or not location.endswith(".py") or not Path(location).resolve().is_relative_to(function_dir):
            continue
        cached = Path(importlib.util.cache_from_source(location))
        # A hash-based pyc holds the source's hash at bytes 8 to 16; a timestamp-based one would not survive a zip.
        source_hash = importlib.util.source_hash(Path(location).read_bytes())
        if not cached.is_file() or cached.read_bytes()[8:16] != source_hash:
            uncompiled.append(name)
    return sorted(uncompiled)


def main() -> int:
    function_dir, handler, timeout, report_file = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
    sys.path.insert(0, str(function_dir))
    event = json.load(sys.stdin)
    module_name, _, function_name = handler.rpartition(".")
    report: dict[str, Any] = {"outcome": "returned"}
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # Lambda reports Runtime.ImportModuleError and the function never runs
        traceback.print_exc()
        report["outcome"] = f"import error: {type(error).__name__}: {error}"
    else:
        report["load_seconds"] = time.perf_counter() - started  # Lambda's Init Duration
        report["load_cpu_seconds"] = time.process_time() - cpu_started
        try:
            returned = function(event, LambdaContext(timeout))
            report["returned"] = json.loads(json.dumps(returned))  # Lambda serialises it as JSON, or fails
        except Exception as error:  # Lambda reports the error; an asynchronous invocation is retried
            traceback.print_exc()
            report["outcome"] = f"raised: {type(error).__name__}: {error}"
    report["seconds"] = time.perf_counter() - started  # the cold start: loading the handler and serving the event
    # The processor time of the same: what the function itself spent, whatever else the machine was doing.
    report["cpu_seconds"] = time.process_time() - cpu_started
    botocore = sys.modules.get("botocore")
    report["botocore"] = getattr(botocore, "__version__", None)
    report["foreign_modules"] = foreign_modules(function_dir)
    report["modules_without_bytecode"] = modules_without_bytecode(function_dir.resolve())
    Path(report_file).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
