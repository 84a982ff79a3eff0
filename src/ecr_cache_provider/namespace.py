"""The repositories of a cache namespace, worked through in name order by a bounded pool of threads, in batches,
stopping in time to hand the rest to a follow-up invocation."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Literal

from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.ecr import EcrGateway
from ecr_cache_provider.prefix import covers

Outcome = Literal["updated", "skipped", "unchanged"]

# Parallel calls to ECR. botocore's adaptive retry mode slows all of them down together when ECR throttles.
CONCURRENCY = 8
# Repositories between two looks at the clock; a batch takes a few seconds even under throttling.
BATCH_SIZE = 64
# Seconds of the invocation kept back (beyond the answer margin) to finish a batch and hand off the rest.
HAND_OFF_SECONDS = 30.0


def work_through(
    ecr: EcrGateway, prefix: str, work: Callable[[str], Outcome], progress: Progress, physical_id: str
) -> Progress:
    """Apply `work` to every repository in the namespace after `progress.cursor`, counting what it did.

    Raises ContinueLater, with the progress made, when the invocation's time is nearly up."""
    names = [name for name in ecr.repository_names() if covers(prefix, name) and name > progress.cursor]
    done = progress
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        for start in range(0, len(names), BATCH_SIZE):
            # Every invocation finishes at least one batch, so a chain of invocations always moves forward.
            if start and ecr.deadline.remaining() < HAND_OFF_SECONDS:
                raise ContinueLater(done, physical_id)
            batch = names[start : start + BATCH_SIZE]
            outcomes = list(pool.map(work, batch))
            done = replace(
                done,
                cursor=batch[-1],
                updated=done.updated + outcomes.count("updated"),
                skipped=done.skipped + outcomes.count("skipped"),
            )
    return done
