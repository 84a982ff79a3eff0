"""Cold start: import the handler and serve a first request in a fresh process, against a baseline of importing
boto3 and creating one ECR client, measured in the same run. Also the size of the built function package.

    python bench/cold_start.py [--runs 11] [--build-dir .aws-sam/build]

Target: ratio at most 1.3; package under 2 MB zipped. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
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
sys.path.insert(0, str(ROOT / "src"))

from emulation.cloudformation import make_event, start_response_endpoint  # noqa: E402
from emulation.moto_server import FAKE_AWS_ENVIRONMENT, start_moto_server  # noqa: E402

BASELINE = """
import time
started = time.perf_counter()
import boto3
boto3.client("ecr")
print(time.perf_counter() - started)
"""

FIRST_REQUEST = """
import json, sys, time
started = time.perf_counter()
from ecr_cache_provider import handler
from emulation.cloudformation import LambdaContext
handler.lambda_handler(json.loads(sys.argv[1]), LambdaContext())
print(time.perf_counter() - started)
"""


def timed(script: str, env: dict[str, str], *args: str) -> float:
    output = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(output.stdout.strip().splitlines()[-1])


def package_size(build_dir: Path | None) -> int:
    if build_dir is None:
        build_dir = Path(tempfile.mkdtemp(prefix="sam-build-"))
        env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        subprocess.run(
            ["sam", "build", "--build-dir", str(build_dir), "--template-file", str(ROOT / "template.yaml")],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    function_dir = build_dir / "ProviderFunction"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as package:
        for path in sorted(function_dir.rglob("*")):
            if path.is_file():
                package.write(path, path.relative_to(function_dir))
    return archive.getbuffer().nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--build-dir", type=Path, help="an existing `sam build` output; built afresh when omitted")
    parser.add_argument("--skip-package", action="store_true")
    options = parser.parse_args()

    server, endpoint_url = start_moto_server()
    responses = start_response_endpoint()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
        **FAKE_AWS_ENVIRONMENT,
        "AWS_ENDPOINT_URL": endpoint_url,
        "SSL_CERT_FILE": responses.ca_file,
        "POWERTOOLS_METRICS_NAMESPACE": "EcrPullThroughCache",
        "POWERTOOLS_SERVICE_NAME": "ecr-pull-through-cache",
    }
    baseline, handler = [], []
    # Warm the emulation once (moto builds its ECR backend on first use, which the real ECR does not charge us);
    # each run then creates a rule under its own prefix.
    os.environ.update(FAKE_AWS_ENVIRONMENT)
    boto3.client("ecr", endpoint_url=endpoint_url).describe_pull_through_cache_rules()
    try:
        for run in range(options.runs):
            properties = {"EcrRepositoryPrefix": f"ecr-public-{run:02d}", "UpstreamRegistryUrl": "public.ecr.aws"}
            event = make_event(responses, "Create", properties)
            baseline.append(timed(BASELINE, env))
            handler.append(timed(FIRST_REQUEST, env, json.dumps(event)))
            answer = responses.wait_for(event["RequestId"])
            assert answer["Status"] == "SUCCESS", answer
    finally:
        server.stop()
        responses.close()

    base, first = statistics.median(baseline), statistics.median(handler)
    print(f"runs: {options.runs} (fresh processes, alternating)")
    print(f"baseline  import boto3 + one ECR client:           median {base * 1000:7.1f} ms")
    print(f"provider  import handler + first Create answered:  median {first * 1000:7.1f} ms")
    print(f"cold start ratio: {first / base:.2f} (target <= 1.30)")
    if not options.skip_package:
        size = package_size(options.build_dir)
        print(f"function package: {size / 1024 / 1024:.2f} MB zipped (target < 2 MB)")


if __name__ == "__main__":
    main()
