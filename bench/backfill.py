"""Backfill at scale: a Custom::CacheLifecyclePolicy Create over a namespace of 5,000 cached repositories on a
local moto server, with a latency injected into every ECR call and ECR-like request-rate throttling.

    python bench/backfill.py [--repositories 5000] [--latency 0.02] [--lambda-timeout 120] [--rate-limit 200]

Prints repositories per second against the ideal for that latency and the provider's concurrency (each repository
takes two calls, GetLifecyclePolicy and PutLifecyclePolicy), the throttled calls, and how many Lambda invocations
the backfill took (the provider hands off to a follow-up invocation when its time runs short). Asserts nothing.

ECR is served from a separate process, as the real one is remote: in one process the server's work would compete
with the provider's for the interpreter, and the figure would measure moto rather than the provider.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from emulation import moto_ecr  # noqa: E402
from emulation.cloudformation import ACCOUNT_ID, REGION, make_event, start_response_endpoint  # noqa: E402
from emulation.lambda_emulator import start_lambda_emulator  # noqa: E402
from emulation.moto_ecr import faults  # noqa: E402
from emulation.moto_server import FAKE_AWS_ENVIRONMENT, start_moto_server  # noqa: E402
from emulation.ownership import TABLE_NAME, create_ownership_table  # noqa: E402

POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Keep at most 100 images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 100},
            "action": {"type": "expire"},
        }
    ]
}


def serve(options: argparse.Namespace) -> None:
    """The ECR side, in its own process: seed the namespace, arm latency and throttling, serve until stdin
    closes, then print the call counts."""
    server, endpoint_url = start_moto_server()
    create_ownership_table(endpoint_url)
    boto3.client("ecr", endpoint_url=endpoint_url).create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="public.ecr.aws"
    )
    for index in range(options.repositories):
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, f"docker-hub/library/image-{index:05d}")
    faults.reset()
    faults.latency(options.latency)
    for operation in ("GetLifecyclePolicy", "PutLifecyclePolicy"):
        faults.rate_limit(operation, options.rate_limit)
    print(endpoint_url, flush=True)
    cpu_at_start = time.process_time()
    sys.stdin.read()
    counts = {operation: faults.count(operation) for operation in ("GetLifecyclePolicy", "PutLifecyclePolicy")}
    print("RESULT", json.dumps({"calls": counts, "cpu_seconds": time.process_time() - cpu_at_start}), flush=True)
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added to every ECR call")
    parser.add_argument("--rate-limit", type=float, default=200.0, help="Get/PutLifecyclePolicy calls a second")
    parser.add_argument("--lambda-timeout", type=float, default=120.0, help="seconds each invocation may run")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    os.environ.update(FAKE_AWS_ENVIRONMENT)
    if options.serve:
        serve(options)
        return

    ecr_process = subprocess.Popen(
        [sys.executable, __file__, "--serve", *sys.argv[1:]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert ecr_process.stdout is not None
    assert ecr_process.stdin is not None
    endpoint_url = ecr_process.stdout.readline().strip()
    responses = start_response_endpoint()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "OWNERSHIP_TABLE": TABLE_NAME,
            "SSL_CERT_FILE": responses.ca_file,
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",  # the report, not a line of EMF JSON per invocation
        }
    )
    lambda_service = start_lambda_emulator(timeout_seconds=options.lambda_timeout)
    os.environ["AWS_ENDPOINT_URL_LAMBDA"] = lambda_service.url

    from ecr_cache_provider import namespace

    event = make_event(
        responses,
        "Create",
        {"RepositoryPrefix": "docker-hub", "LifecyclePolicyText": json.dumps(POLICY)},
        resource_type="Custom::CacheLifecyclePolicy",
    )
    started, cpu_at_start = time.monotonic(), time.process_time()
    lambda_service.invoke(event, asynchronous=True)
    answer = responses.wait_for(event["RequestId"], timeout=3600)
    elapsed, provider_cpu = time.monotonic() - started, time.process_time() - cpu_at_start
    lambda_service.close()
    responses.close()
    ecr_process.stdin.close()
    output = ecr_process.stdout.read().splitlines()
    server = json.loads(next(line for line in output if line.startswith("RESULT ")).removeprefix("RESULT "))
    calls = server["calls"]
    ecr_process.wait()

    updated = int(answer["Data"].get("RepositoriesUpdated", 0))
    ideal = min(namespace.CONCURRENCY / (2 * options.latency), options.rate_limit)
    achieved = updated / elapsed
    print(f"answer: {answer['Status']} {answer.get('Reason', '')}".rstrip())
    print(f"repositories: {options.repositories}, updated: {updated}, in {elapsed:.1f} s")
    print(
        f"latency per call: {options.latency * 1000:.0f} ms, concurrency: {namespace.CONCURRENCY}, "
        f"rate limit: {options.rate_limit:.0f} calls/s per operation"
    )
    print(f"throughput: {achieved:.0f} repositories/s; ideal {ideal:.0f}/s; ratio {achieved / ideal:.2f}")
    print(f"calls: {calls} (throttled and retried: {sum(calls.values()) - 2 * updated})")
    print(
        f"CPU: provider process {provider_cpu:.1f} s, ECR emulation process {server['cpu_seconds']:.1f} s "
        f"(of {elapsed:.1f} s wall on {os.cpu_count()} cores: a ratio well below 1 with a busy process is the "
        "emulation's cost, not the provider's wait)"
    )
    print(
        f"invocations: {len(lambda_service.invocations)} (Lambda timeout {options.lambda_timeout:.0f} s, "
        f"hand-off {namespace.HAND_OFF_SECONDS:.0f} s before it)"
    )


if __name__ == "__main__":
    main()
