"""Cold start of what ships: the `sam build` package, loaded and serving a first Create in a fresh, clean python3.13
whose only packages are the Lambda runtime's SDK (tools/lambda_runtime), against a baseline measured in the same
interpreter in the same run: importing boto3 and creating one ECR client. Also the package's zipped size.

    python bench/cold_start.py [--runs 15] [--runtime newest] [--build-dir .aws-sam/build] [--keep-bytecode]

Target: ratio at most 1.3 (aim 1.15); package under 2 MB zipped. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulation.cloudformation import make_event, start_response_endpoint  # noqa: E402
from emulation.moto_server import FAKE_AWS_ENVIRONMENT, start_moto_server  # noqa: E402
from emulation.ownership import create_ownership_table  # noqa: E402
from tools import lambda_runtime  # noqa: E402

BASELINE = """
import time
started = time.perf_counter()
import boto3
boto3.client("ecr")
print(time.perf_counter() - started)
"""


def baseline_seconds(runtime: str, environment: dict[str, str]) -> float:
    python = str(lambda_runtime.runtime_python(runtime))
    output = subprocess.run([python, "-I", "-c", BASELINE], env=environment, capture_output=True, text=True, check=True)
    return float(output.stdout.strip().splitlines()[-1])


def zipped_size(function_dir: Path) -> int:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as package:
        for path in sorted(function_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                package.write(path, path.relative_to(function_dir))
    return archive.getbuffer().nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--runtime", choices=lambda_runtime.RUNTIMES, default="newest")
    parser.add_argument("--build-dir", type=Path, help="an existing `sam build` output; built afresh when omitted")
    parser.add_argument("--keep-bytecode", action="store_true", help="let the package keep compiled bytecode")
    options = parser.parse_args()

    if options.build_dir:
        function_dir = options.build_dir / lambda_runtime.FUNCTION
    else:
        function_dir = lambda_runtime.sam_build(Path(tempfile.mkdtemp(prefix="sam-build-")) / "build")

    server, endpoint_url = start_moto_server()
    responses = start_response_endpoint()
    os.environ.update(FAKE_AWS_ENVIRONMENT)
    table = create_ownership_table(endpoint_url)
    environment = lambda_runtime.lambda_environment(endpoint_url, responses.ca_file, table)
    if options.keep_bytecode:  # as Lambda does, every run compiles the package afresh unless asked otherwise
        del environment["PYTHONDONTWRITEBYTECODE"]
    # Warm the emulation once (moto builds its ECR backend on first use, which the real ECR does not charge us).
    boto3.client("ecr", endpoint_url=endpoint_url).describe_pull_through_cache_rules()
    baseline, provider = [], []
    try:
        for run in range(options.runs):  # alternating, so that a slow moment of the machine hits both
            baseline.append(baseline_seconds(options.runtime, environment))
            properties = {"EcrRepositoryPrefix": f"ecr-public-{run:02d}", "UpstreamRegistryUrl": "public.ecr.aws"}
            event = make_event(responses, "Create", properties)
            invocation = lambda_runtime.invoke(function_dir, event, environment, options.runtime)
            answer = responses.wait_for(event["RequestId"])
            assert answer["Status"] == "SUCCESS", answer
            provider.append(invocation.seconds)
    finally:
        server.stop()
        responses.close()

    base, first = statistics.median(baseline), statistics.median(provider)
    print(f"runs: {options.runs} fresh processes each, alternating; runtime {options.runtime} ({function_dir})")
    print(f"baseline  import boto3 + one ECR client:                 median {base * 1000:7.1f} ms")
    print(f"provider  load the built handler + first Create answered: median {first * 1000:7.1f} ms")
    print(f"cold start ratio: {first / base:.2f} (target <= 1.30, aim 1.15)")
    print(f"function package: {zipped_size(function_dir) / 1024 / 1024:.2f} MB zipped (target < 2 MB)")


if __name__ == "__main__":
    main()
