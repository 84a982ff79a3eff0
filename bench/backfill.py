"""Backfill at scale under ECR throttling: a Custom::CacheLifecyclePolicy Create over a namespace of cached
repositories on a local moto server, with a latency injected into every ECR call, in three scenarios measured in
the same run: no throttling (the baseline), a sustained request-rate limit on GetLifecyclePolicy and
PutLifecyclePolicy (and DescribeRepositories at one call a second), and recurring bursts of consecutive throttles
longer than botocore's seven attempts on each of those calls.

    python bench/backfill.py [--repositories 3000] [--latency 0.02] [--lambda-timeout 120] [--rate-limit 25]
                             [--burst 48] [--burst-every 500]

For each scenario: the answer, repositories per second and its ratio to the baseline's, the throttled calls as ECR
answered them and as the provider published them (its ThrottledCalls metric), and how many Lambda invocations the
backfill took (the provider hands off to a follow-up invocation when its time runs short). Asserts nothing.

Then the cost of proving ownership: the same namespace, unthrottled, brought to the policy by a bare loop that makes
only the ECR calls (list the repositories; for each, read its lifecycle policy and put ours, with the provider's
concurrency and clients), against the provider, which also records each repository in the ownership ledger before
changing it (a BatchGetItem and a BatchWriteItem per batch). Both measured in this process: the ratio of processor
time is the overhead (the aim: within 1.5x).

ECR is served from a separate process, as the real one is remote: in one process the server's work would compete
with the provider's for the interpreter, and the figure would measure moto rather than the provider.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from emulation import ecr_process, moto_ecr  # noqa: E402
from emulation.cloudformation import ACCOUNT_ID, REGION, make_event, start_response_endpoint  # noqa: E402
from emulation.ecr_process import EcrProcess, serve_until_stdin_closes  # noqa: E402
from emulation.lambda_emulator import published_metrics, start_lambda_emulator  # noqa: E402
from emulation.moto_ecr import faults  # noqa: E402
from emulation.moto_server import start_moto_server  # noqa: E402
from emulation.ownership import create_ownership_table  # noqa: E402

SCENARIOS = ("baseline", "rate-limit", "bursts")
BACKFILL_CALLS = ("DescribeRepositories", "GetLifecyclePolicy", "PutLifecyclePolicy")

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


def arm(scenario: str, options: argparse.Namespace) -> None:
    """The scenario's throttling, on the ECR side."""
    if scenario == "rate-limit":
        faults.rate_limit("DescribeRepositories", 1)
        for operation in BACKFILL_CALLS[1:]:
            faults.rate_limit(operation, options.rate_limit)
    elif scenario == "bursts":
        faults.throttle("DescribeRepositories", times=options.burst)
        for operation in BACKFILL_CALLS[1:]:
            faults.throttle_in_bursts(operation, length=options.burst, every=options.burst_every)


def serve(options: argparse.Namespace) -> None:
    """The ECR side, in its own process: seed the namespace, arm latency and the scenario's throttling, serve
    until stdin closes, then print the call and throttle counts."""
    server, endpoint_url = start_moto_server()
    create_ownership_table(endpoint_url)
    boto3.client("ecr", endpoint_url=endpoint_url).create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="public.ecr.aws"
    )
    for index in range(options.repositories):
        moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, f"docker-hub/library/image-{index:05d}")
    faults.reset()
    faults.latency(options.latency)
    arm(options.scenario, options)
    serve_until_stdin_closes(
        endpoint_url,
        lambda: {
            "calls": {operation: faults.count(operation) for operation in BACKFILL_CALLS},
            "throttled": sum(faults.throttled(operation) for operation in BACKFILL_CALLS),
        },
    )
    server.stop()


@dataclass
class Run:
    scenario: str
    answer: dict[str, Any]
    elapsed: float
    provider_cpu: float
    server: dict[str, Any]
    published_throttled: int
    invocations: int

    @property
    def updated(self) -> int:
        return int(self.answer["Data"].get("RepositoriesUpdated", 0))

    @property
    def throughput(self) -> float:
        return self.updated / self.elapsed


def backfill(scenario: str, options: argparse.Namespace) -> Run:
    """One Create over the namespace against a fresh ECR process armed for `scenario`."""
    ecr = EcrProcess.start(__file__, ["--scenario", scenario, *sys.argv[1:]])
    os.environ["AWS_ENDPOINT_URL"] = ecr.endpoint_url
    responses = start_response_endpoint()
    os.environ["SSL_CERT_FILE"] = responses.ca_file
    lambda_service = start_lambda_emulator(timeout_seconds=options.lambda_timeout)
    os.environ["AWS_ENDPOINT_URL_LAMBDA"] = lambda_service.url

    event = make_event(
        responses,
        "Create",
        {"RepositoryPrefix": "docker-hub", "LifecyclePolicyText": json.dumps(POLICY)},
        resource_type="Custom::CacheLifecyclePolicy",
    )
    started, cpu_at_start = time.monotonic(), time.process_time()
    metrics = io.StringIO()  # the provider's embedded metrics (stdout), among them ThrottledCalls
    with contextlib.redirect_stdout(metrics):
        lambda_service.invoke(event, asynchronous=True)
        answer = responses.wait_for(event["RequestId"], timeout=3600)
        elapsed, provider_cpu = time.monotonic() - started, time.process_time() - cpu_at_start
        lambda_service.wait_idle()  # an invocation writes its metrics after it has answered
    lambda_service.close()
    responses.close()
    server = ecr.finish()
    published = published_metrics(metrics.getvalue()).get("ThrottledCalls", 0)
    return Run(scenario, answer, elapsed, provider_cpu, server, int(published), len(lambda_service.invocations))


@dataclass
class Bare:
    elapsed: float
    cpu: float
    updated: int


def bare_loop(options: argparse.Namespace) -> Bare:
    """Only the ECR calls a backfill needs, with the provider's concurrency and client configuration: no ledger,
    no plan, no answer."""
    from concurrent.futures import ThreadPoolExecutor

    from ecr_cache_provider.aws.ecr import BATCH_WORK_CLIENT_CONFIG as BACKFILL_CLIENT_CONFIG
    from ecr_cache_provider.engine import batches as namespace

    ecr = EcrProcess.start(__file__, ["--scenario", "baseline", *sys.argv[1:]])
    client = boto3.client("ecr", endpoint_url=ecr.endpoint_url, config=BACKFILL_CLIENT_CONFIG)
    text = json.dumps(POLICY, separators=(",", ":"))

    def bring(name: str) -> bool:
        try:
            current = client.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
        except client.exceptions.LifecyclePolicyNotFoundException:
            current = None
        if current is not None and json.loads(current) == POLICY:
            return False
        client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=text)
        return True

    started, cpu_at_start = time.monotonic(), time.process_time()
    names = [repository["repositoryName"] for page in client.get_paginator("describe_repositories").paginate(
        PaginationConfig={"PageSize": 1000}) for repository in page["repositories"]]  # fmt: skip
    with ThreadPoolExecutor(max_workers=namespace.CONCURRENCY) as pool:
        updated = sum(pool.map(bring, names))
    bare = Bare(time.monotonic() - started, time.process_time() - cpu_at_start, updated)
    ecr.finish()
    return bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=3000)
    parser.add_argument("--rate-limit", type=float, default=25.0, help="Get/PutLifecyclePolicy calls a second")
    parser.add_argument("--burst", type=int, default=48, help="consecutive throttles in each burst")
    parser.add_argument("--burst-every", type=int, default=500, help="calls from the start of a burst to the next")
    ecr_process.add_arguments(parser)
    parser.add_argument("--scenario", choices=SCENARIOS, default="baseline", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if ecr_process.serves(options, serve):
        return
    print(f"repositories: {options.repositories}, {ecr_process.settings_line(options)}")
    print(
        f"rate-limit: {options.rate_limit:.0f} calls/s per operation (DescribeRepositories 1/s); "
        f"bursts: {options.burst} consecutive throttles every {options.burst_every} calls"
    )
    baseline: Run | None = None
    runs: list[Run] = []
    for scenario in SCENARIOS:
        run = backfill(scenario, options)
        baseline = baseline or run
        status = f"{run.answer['Status']} {run.answer.get('Reason', '')}".rstrip()
        print(
            f"{scenario:>10}: {status}, {run.updated} updated in {run.elapsed:.1f} s, "
            f"{run.throughput:.0f} repositories/s (ratio to baseline {run.throughput / baseline.throughput:.2f}); "
            f"throttled calls: {run.server['throttled']} answered by ECR, {run.published_throttled} published; "
            f"calls {run.server['calls']}; invocations {run.invocations}; CPU provider {run.provider_cpu:.1f} s, "
            f"ECR emulation {run.server['cpu_seconds']:.1f} s"
        )
        runs.append(run)
    assert baseline is not None
    bare = bare_loop(options)
    print(
        f"  bare ECR loop: {bare.updated} updated in {bare.elapsed:.1f} s, CPU {bare.cpu:.1f} s; the provider (ledger "
        f"records included) {baseline.provider_cpu:.1f} s: CPU ratio to the bare loop "
        f"{baseline.provider_cpu / bare.cpu:.2f}, time ratio {baseline.elapsed / bare.elapsed:.2f}"
    )


if __name__ == "__main__":
    main()
