"""Cold start of what ships: the `sam build` package, loaded and serving a first Create in a fresh, clean python3.13
whose only packages are the Lambda runtime's SDK (tools/lambda_runtime), against a baseline run the same way in the
same run: a bare function (bench/bare_function) that imports boto3, makes one ECR client, makes the same ECR calls
and answers CloudFormation. Both answer the same request against the same local endpoints, so the ratio is what the
provider costs beyond a bare `boto3.client("ecr")` doing the same job: its libraries, its checks and its ownership
claim. Also the package's zipped size.

    python bench/cold_start.py [--runs 15] [--runtime newest] [--build-dir .aws-sam/build]

Target: ratio at most 1.3 (aim 1.15); package under 2 MB zipped. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulation.cloudformation import make_event, start_response_endpoint  # noqa: E402
from emulation.moto_server import FAKE_AWS_ENVIRONMENT, start_moto_server  # noqa: E402
from emulation.ownership import create_ownership_table  # noqa: E402
from tools import lambda_runtime  # noqa: E402

BARE_FUNCTION = Path(__file__).with_name("bare_function")
BARE_HANDLER = "bare_handler.lambda_handler"


def first_create(
    responses: Any, function_dir: Path, handler: str, prefix: str, *, environment: dict[str, str], runtime: str
) -> lambda_runtime.Invocation:
    """One cold start: a fresh process loads `handler` and serves a Create of a cache rule, answered SUCCESS."""
    event = make_event(responses, "Create", {"EcrRepositoryPrefix": prefix, "UpstreamRegistryUrl": "public.ecr.aws"})
    invocation = lambda_runtime.invoke(function_dir, event, environment, runtime, handler=handler)
    answer = responses.wait_for(event["RequestId"])
    assert answer["Status"] == "SUCCESS", (answer, invocation.output)
    return invocation


def zipped_size(function_dir: Path) -> int:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as package:
        for path in sorted(function_dir.rglob("*")):
            if path.is_file():
                package.write(path, path.relative_to(function_dir))
    return archive.getbuffer().nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--runtime", choices=lambda_runtime.RUNTIMES, default="newest")
    parser.add_argument("--build-dir", type=Path, help="an existing `sam build` output; built afresh when omitted")
    options = parser.parse_args()

    if options.build_dir:
        function_dir = options.build_dir / lambda_runtime.FUNCTION
    else:
        function_dir = lambda_runtime.sam_build(Path(tempfile.mkdtemp(prefix="sam-build-")) / "build")

    server, endpoint_url = start_moto_server()
    responses = start_response_endpoint()
    os.environ.update(FAKE_AWS_ENVIRONMENT)
    table = create_ownership_table(endpoint_url)
    environment = lambda_runtime.lambda_environment(endpoint_url, responses.ca_file, {"OWNERSHIP_TABLE": table})
    # Warm the emulation once (moto builds its ECR backend on first use, which the real ECR does not charge us).
    boto3.client("ecr", endpoint_url=endpoint_url).describe_pull_through_cache_rules()
    baseline: list[lambda_runtime.Invocation] = []
    provider: list[lambda_runtime.Invocation] = []
    same = {"environment": environment, "runtime": options.runtime}
    try:
        for run in range(options.runs):  # alternating, so that a slow moment of the machine hits both
            baseline.append(first_create(responses, BARE_FUNCTION, BARE_HANDLER, f"bare-{run:02d}", **same))
            provider.append(first_create(responses, function_dir, lambda_runtime.HANDLER, f"cache-{run:02d}", **same))
    finally:
        server.stop()
        responses.close()

    def median_ms(invocations: list[lambda_runtime.Invocation], measure: str) -> float:
        return 1000 * statistics.median(getattr(invocation, measure) or 0.0 for invocation in invocations)

    print(f"runs: {options.runs} fresh processes each, alternating; runtime {options.runtime} ({function_dir})")
    print(f"{'medians, ms':44} {'first Create answered':>24} {'of which loading':>20}")
    print(f"{'':44} {'wall':>11} {'processor':>12} {'wall':>9} {'processor':>10}")
    for label, invocations in (
        ("baseline  bare boto3 ECR client, same job", baseline),
        ("provider  the built handler", provider),
    ):
        figures = [
            median_ms(invocations, measure)
            for measure in ("seconds", "cpu_seconds", "load_seconds", "load_cpu_seconds")
        ]
        print(f"{label:44} {figures[0]:11.1f} {figures[1]:12.1f} {figures[2]:9.1f} {figures[3]:10.1f}")
    wall = median_ms(provider, "seconds") / median_ms(baseline, "seconds")
    processor = median_ms(provider, "cpu_seconds") / median_ms(baseline, "cpu_seconds")
    print(f"cold start ratio: {wall:.2f} wall, {processor:.2f} processor time (target <= 1.30, aim 1.15)")
    uncompiled = sorted({name for invocation in provider for name in invocation.modules_without_bytecode})
    print(f"modules of the package compiled at the cold start (no bytecode shipped): {len(uncompiled)}")
    if uncompiled:
        print("  " + ", ".join(uncompiled))
    print(f"function package: {zipped_size(function_dir) / 1024 / 1024:.2f} MB zipped (target < 2 MB)")


if __name__ == "__main__":
    main()
