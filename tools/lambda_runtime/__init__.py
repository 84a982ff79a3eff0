"""What ships, run as Lambda runs it: the `sam build` output in a clean python3.13 whose only packages are the
Lambda runtime's SDK, at the oldest version the provider supports and at the newest (oldest.txt, newest.txt).

`make lambda-runtimes` creates those interpreters (.venv-lambda-oldest, .venv-lambda-newest). Each invocation is
a fresh process (a cold start), so nothing leaks between invocations or from the caller's process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
RUNTIMES = ("oldest", "newest")
FUNCTION = "ProviderFunction"
HANDLER = "ecr_cache_provider.handler.lambda_handler"


class RuntimeMissing(RuntimeError):
    """The clean interpreter for a runtime has not been created."""


@dataclass(frozen=True)
class Invocation:
    """How one invocation ended, what it printed, and what the clean interpreter saw."""

    outcome: str
    seconds: float  # loading the handler and serving the event
    load_seconds: float | None  # loading the handler alone (None when it did not load)
    cpu_seconds: float  # the processor time the interpreter spent on the same
    load_cpu_seconds: float | None
    botocore: str | None
    foreign_modules: list[str]
    modules_without_bytecode: list[str]  # compiled at every cold start: the package should ship their bytecode
    output: str
    returned: Any = None  # what the handler returned (JSON), as Lambda's Invoke gives it back


def runtime_python(runtime: str = "newest") -> Path:
    python = ROOT / f".venv-lambda-{runtime}" / "bin" / "python"
    if not python.exists():
        raise RuntimeMissing(f"{python} does not exist: run `make lambda-runtimes` first")
    return python


def python_command(runtime: str = "newest") -> list[str]:
    """The runtime's interpreter as Lambda runs it: isolated from this machine's environment (-I) and never writing
    bytecode (-B), since /var/task is read-only: what the package does not ship compiled is compiled at every cold
    start."""
    return [str(runtime_python(runtime)), "-I", "-B"]


def sam_build(build_dir: Path) -> Path:
    """`sam build` into build_dir; the built function's folder. python3.13 (the function's runtime) must be on PATH."""
    venv_bin = Path(sys.executable).parent
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    environment.update(PATH=f"{venv_bin}{os.pathsep}{environment.get('PATH', '')}", SAM_CLI_TELEMETRY="0")
    command = [str(venv_bin / "sam"), "build", "--template-file", str(ROOT / "template.yaml")]
    # Not cached: samconfig.toml's cache lives in the project's .aws-sam, which parallel builds would share.
    command += ["--build-dir", str(build_dir), "--no-cached"]
    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{result.stdout}\n{result.stderr}")
    return build_dir / FUNCTION


def lambda_environment(
    aws_endpoint: str,
    ca_file: str,
    variables: Mapping[str, str],
    credentials: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What the function's process is given, and nothing else of this machine's: the function's environment
    variables (template.yaml's), the credentials of its role (emulation/iam evaluates what they may do; without
    them the harness's, which nothing evaluates), the local AWS endpoint and the CA of the local response endpoint."""
    return {
        **variables,
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        **(credentials or {}),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": "ecr-pull-through-cache-provider",
        "SSL_CERT_FILE": ca_file,
        "POWERTOOLS_SERVICE_NAME": "ecr-pull-through-cache",
        "POWERTOOLS_METRICS_NAMESPACE": "EcrPullThroughCache",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


# Loads the handler as Lambda would, and says why it cannot serve requests when it cannot.
LOAD_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
from ecr_cache_provider import handler
sys.exit(0 if handler.dispatch is not None else str(handler.helper._init_failed))
"""


def load_error(function_dir: Path, runtime: str = "newest") -> str | None:
    """Why the built function cannot serve requests in the clean interpreter; None when it can."""
    if not (function_dir / "ecr_cache_provider" / "handler.py").is_file():
        return f"{function_dir} holds no built provider (run `make build`)"
    command = [*python_command(runtime), "-c", LOAD_CHECK, str(function_dir)]
    environment = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode == 0:
        return None
    return (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]


def refuses_to_load(function_dir: Path | None) -> bool:
    """Say on stderr why the built provider cannot serve requests; True when it cannot (the command then stops).
    No folder (the handler from src/ in-process) is never refused."""
    problem = load_error(function_dir) if function_dir is not None else None
    if problem:
        print(f"error: the built provider does not load as Lambda would load it: {problem}", file=sys.stderr)
    return problem is not None


def invoke(
    function_dir: Path,
    event: dict[str, Any],
    environment: dict[str, str],
    runtime: str = "newest",
    *,
    timeout_seconds: float = 300.0,
    handler: str = HANDLER,
) -> Invocation:
    """Run one event through the built function (or another `handler` in function_dir) in a fresh, clean
    interpreter of the runtime."""
    with tempfile.TemporaryDirectory(prefix="lambda-invocation-") as scratch:
        report_file = Path(scratch) / "report.json"
        command = [*python_command(runtime), str(BOOTSTRAP), str(function_dir.resolve()), handler]
        command += [str(timeout_seconds), str(report_file)]
        result = subprocess.run(  # noqa: S603 - our own interpreter and bootstrap, no shell
            command,
            input=json.dumps(event),
            env=environment,
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=timeout_seconds + 30,
            check=False,
        )
        output = result.stdout + result.stderr
        if result.returncode != 0 or not report_file.exists():
            raise RuntimeError(f"the {runtime} Lambda runtime stopped (exit {result.returncode}):\n{output}")
        report = json.loads(report_file.read_text())
    return Invocation(
        report["outcome"],
        report["seconds"],
        report.get("load_seconds"),
        report["cpu_seconds"],
        report.get("load_cpu_seconds"),
        report["botocore"],
        report["foreign_modules"],
        report["modules_without_bytecode"],
        output,
        report.get("returned"),
    )
