"""An image expiry sweep at scale: a scheduled Custom::CacheImageExpiry sweep over 1,000 cached repositories holding
100,000 images on a local moto server, with a latency injected into every ECR call, against a bare boto3 loop
making the same calls (DescribeRepositories, DescribeImages, BatchGetImage of the old image indexes,
BatchDeleteImage of the expired images), measured in the same run. Two conditions: latency only, and latency with a
sustained request-rate limit on every call of the sweep (as ECR throttles its control plane without a published
rate).

    python bench/image_expiry.py [--repositories 1000] [--images 100] [--latency 0.02] [--rate-limit 20]
                                 [--lambda-timeout 120] [--quick]

The cache: nine repositories in ten hold single-architecture images whose last pulls are spread over 140 days (some
never pulled since they were cached); the tenth hold multi-architecture images (an index and two manifests each),
half of them unpulled for 60 days, half pulled lately. ExpireAfterDaysWithoutPull is 30.

For each run: how it ended, images scanned per second and the provider's ratio to the bare loop in the same
condition, images expired, the throttled calls (as ECR answered them and as the sweep's SweepThrottledCalls metric
counted them) and the Lambda invocations the sweep used (it hands off to a follow-up invocation when its time runs
short). Asserts nothing.

ECR is served from a separate process, as the real one is remote, and a fresh one for each run (a sweep deletes).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from emulation import ecr_process  # noqa: E402
from emulation.cloudformation import ACCOUNT_ID, REGION  # noqa: E402
from emulation.ecr_process import EcrProcess, serve_until_stdin_closes  # noqa: E402
from emulation.lambda_emulator import published_metrics, start_lambda_emulator  # noqa: E402
from emulation.moto_ecr import faults, seed_image  # noqa: E402
from emulation.moto_server import start_moto_server  # noqa: E402
from emulation.ownership import create_ownership_table  # noqa: E402

PREFIX = "docker-hub"
EXPIRE_AFTER_DAYS = 30
SWEEP_CALLS = ("DescribeRepositories", "DescribeImages", "BatchGetImage", "BatchDeleteImage")
CONDITIONS = ("latency", "rate-limit")
SWEEPERS = ("bare boto3", "provider")
INDEX_MEDIA_TYPES = ("application/vnd.oci.image.index.v1+json",)


# The ECR side


def seed(repositories: int, images: int) -> None:
    """The cache, as the module's docstring describes it. Ages are whole days plus a half, far from the cut-off."""
    now = datetime.now(UTC)

    def days(count: float) -> datetime:
        return now - timedelta(days=count + 0.5)

    for number in range(repositories):
        repository = f"{PREFIX}/library/image-{number:05d}"
        if number % 10 != 9:
            for image in range(images):
                pulled = None if image % 7 == 0 else days((image * 13 + number) % 140)
                seed_image(ACCOUNT_ID, REGION, repository, pushed_at=days(150), last_pulled_at=pulled, name=str(image))
            continue
        for group in range(images // 3):
            age = days(60) if group % 2 else days(5)
            children = tuple(
                seed_image(ACCOUNT_ID, REGION, repository, pushed_at=days(150), last_pulled_at=age, name=f"{group}-{a}")
                for a in ("amd64", "arm64")
            )
            seed_image(ACCOUNT_ID, REGION, repository, pushed_at=days(150), last_pulled_at=age, references=children)
        for image in range(images % 3):  # recent: an unread (recent) index may reference any manifest
            seed_image(ACCOUNT_ID, REGION, repository, pushed_at=days(150), last_pulled_at=days(1), name=str(image))


def serve(options: argparse.Namespace) -> None:
    """The ECR side, in its own process: seed the cache, arm latency and the condition's throttling, serve until
    stdin closes, then print the call and throttle counts and the images left."""
    server, endpoint_url = start_moto_server()
    create_ownership_table(endpoint_url)
    ecr_client: Any = boto3.client("ecr", endpoint_url=endpoint_url)
    ecr_client.create_pull_through_cache_rule(ecrRepositoryPrefix=PREFIX, upstreamRegistryUrl="public.ecr.aws")
    seed(options.repositories, options.images)
    faults.reset()
    faults.latency(options.latency)
    if options.condition == "rate-limit":
        faults.rate_limit("DescribeRepositories", 1)
        for operation in SWEEP_CALLS[1:]:
            faults.rate_limit(operation, options.rate_limit)

    def report() -> dict[str, Any]:
        result: dict[str, Any] = {
            "calls": {operation: faults.count(operation) for operation in SWEEP_CALLS},
            "throttled": sum(faults.throttled(operation) for operation in SWEEP_CALLS),
        }
        faults.reset()  # no latency or throttling for counting what is left
        ecr: Any = boto3.client("ecr", endpoint_url=endpoint_url)
        result["left"] = sum(
            len(ecr.describe_images(repositoryName=name, maxResults=1000)["imageDetails"])
            for name in (f"{PREFIX}/library/image-{number:05d}" for number in range(options.repositories))
        )
        return result

    serve_until_stdin_closes(endpoint_url, report)
    server.stop()


# The two sweepers


@dataclass
class Sweep:
    outcome: str
    scanned: int
    expired: int
    throttled_published: int = 0
    invocations: int = 1


def bare_boto3(endpoint_url: str, options: argparse.Namespace) -> Sweep:
    """The same calls in a plain loop, with boto3's default client: no threads, no deadline, no ledger, no
    hand-off; images expire by the simple rule the seeded cache allows (each group's members share their age)."""
    ecr: Any = boto3.client("ecr", endpoint_url=endpoint_url)
    cutoff = datetime.now(UTC) - timedelta(days=EXPIRE_AFTER_DAYS)
    scanned = expired = 0
    try:
        names: list[str] = []
        arguments: dict[str, Any] = {"maxResults": 1000}
        while True:
            page = ecr.describe_repositories(**arguments)
            names += [item["repositoryName"] for item in page["repositories"]]
            if not page.get("nextToken"):
                break
            arguments["nextToken"] = page["nextToken"]
        for name in sorted(names):
            if not name.startswith(PREFIX + "/"):
                continue
            details: list[dict[str, Any]] = []
            arguments = {"repositoryName": name, "maxResults": 1000}
            while True:
                page = ecr.describe_images(**arguments)
                details += page["imageDetails"]
                if not page.get("nextToken"):
                    break
                arguments["nextToken"] = page["nextToken"]
            scanned += len(details)
            old = [item for item in details if item.get("lastRecordedPullTime", item["imagePushedAt"]) < cutoff]
            indexes = [item["imageDigest"] for item in old if item.get("imageManifestMediaType") in INDEX_MEDIA_TYPES]
            manifests = [item["imageDigest"] for item in old if item["imageDigest"] not in indexes]
            for start in range(0, len(indexes), 100):
                ids = [{"imageDigest": digest} for digest in indexes[start : start + 100]]
                ecr.batch_get_image(repositoryName=name, imageIds=ids, acceptedMediaTypes=list(INDEX_MEDIA_TYPES))
            for wave in (indexes, manifests):
                for start in range(0, len(wave), 100):
                    ids = [{"imageDigest": digest} for digest in wave[start : start + 100]]
                    expired += len(ecr.batch_delete_image(repositoryName=name, imageIds=ids)["imageIds"])
    except Exception as error:  # a bare loop stops at the first error its client does not retry away
        return Sweep(f"FAILED ({type(error).__name__})", scanned, expired)
    return Sweep("DONE", scanned, expired)


def provider(endpoint_url: str, options: argparse.Namespace) -> Sweep:
    """What the schedule does: invoke the provider function with the sweep's input, asynchronously, through a local
    Lambda Invoke endpoint that serves its follow-up invocations too."""
    from ecr_cache_provider.engine.expiry_sweep import ExpirySettings, sweep_event

    lambda_service = start_lambda_emulator(timeout_seconds=options.lambda_timeout)
    os.environ["AWS_ENDPOINT_URL_LAMBDA"] = lambda_service.url
    settings = ExpirySettings(prefix=PREFIX, expire_after_days=EXPIRE_AFTER_DAYS)
    stack = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/bench/1"
    _record_the_resource(stack, settings)
    output = io.StringIO()  # the provider's embedded metrics (stdout)
    with contextlib.redirect_stdout(output):
        lambda_service.invoke(sweep_event("cache-image-expiry-bench", settings, stack, "Expiry"), asynchronous=True)
        lambda_service.wait_idle(timeout=3600)
    lambda_service.close()
    metrics = published_metrics(output.getvalue())
    if lambda_service.errors or "SweepImagesExpired" not in metrics:
        return Sweep(f"FAILED ({lambda_service.errors[:1]})", 0, 0, invocations=len(lambda_service.invocations))
    return Sweep(
        "DONE",
        scanned=options.repositories * options.images,  # the sweep counts repositories, not images described
        expired=int(metrics["SweepImagesExpired"]),
        throttled_published=int(metrics["SweepThrottledCalls"]),
        invocations=int(metrics["SweepInvocationsUsed"]),
    )


def _record_the_resource(stack: str, settings: Any) -> None:
    """The Custom::CacheImageExpiry whose schedule invokes the sweep, as its Create records it in the ledger: the
    sweep reads its settings there, and stops when the resource is gone."""
    from ecr_cache_provider.aws.ledger import Ledger, Owner
    from ecr_cache_provider.deadline import Deadline

    ledger = Ledger(Deadline(time.monotonic() + 60))
    owner = Owner(stack, "Expiry", "bench-create", "Custom::CacheImageExpiry")
    ledger.begin(owner, "Create", datetime.now(UTC))
    ledger.keep_settings(owner, json.dumps(settings.to_input()))


@dataclass
class Run:
    sweeper: str
    condition: str
    sweep: Sweep
    elapsed: float
    server: dict[str, Any]

    @property
    def throughput(self) -> float:
        return self.sweep.scanned / self.elapsed


def measure(sweeper: str, condition: str, options: argparse.Namespace) -> Run:
    """One sweep of the seeded cache, against a fresh ECR process armed for `condition`."""
    ecr = EcrProcess.start(__file__, ["--condition", condition, *sys.argv[1:]])
    os.environ["AWS_ENDPOINT_URL"] = ecr.endpoint_url
    started = time.monotonic()
    sweep = (bare_boto3 if sweeper == "bare boto3" else provider)(ecr.endpoint_url, options)
    elapsed = time.monotonic() - started
    return Run(sweeper, condition, sweep, elapsed, ecr.finish())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=1000)
    parser.add_argument("--images", type=int, default=100, help="images per repository")
    parser.add_argument("--rate-limit", type=float, default=20.0, help="calls a second of each image operation")
    parser.add_argument("--quick", action="store_true", help="20 repositories of 30 images: to see it run")
    ecr_process.add_arguments(parser)
    parser.add_argument("--condition", choices=CONDITIONS, default="latency", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.quick:
        options.repositories, options.images = 20, 30
    if ecr_process.serves(options, serve):
        return
    print(f"repositories: {options.repositories} of {options.images} images, {ecr_process.settings_line(options)}")
    print(
        f"rate-limit: {options.rate_limit:.0f} calls/s for each of DescribeImages, BatchGetImage and "
        f"BatchDeleteImage, DescribeRepositories 1/s"
    )
    for condition in CONDITIONS:
        bare: Run | None = None
        for sweeper in SWEEPERS:
            run = measure(sweeper, condition, options)
            bare = bare or run
            print(
                f"{condition:>10}, {sweeper:>10}: {run.sweep.outcome}, {run.sweep.scanned} images scanned in "
                f"{run.elapsed:.1f} s, {run.throughput:.0f} images/s (ratio to bare boto3 "
                f"{run.throughput / max(bare.throughput, 1e-9):.2f}); {run.sweep.expired} expired, "
                f"{run.server['left']} left; throttled calls: {run.server['throttled']} answered by ECR, "
                f"{run.sweep.throttled_published} published; invocations {run.sweep.invocations}; "
                f"calls {run.server['calls']}; CPU ECR emulation {run.server['cpu_seconds']:.1f} s"
            )


if __name__ == "__main__":
    main()
