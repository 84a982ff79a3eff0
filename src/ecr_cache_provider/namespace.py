"""The repositories of a cache namespace, worked through in name order by a bounded pool of threads, in batches,
stopping in time to hand the rest to a follow-up invocation.

Throttling slows the work down and never fails it: a repository whose calls ECR still throttles after the
client's own retries goes back in the queue, and the whole pool pauses (jittered, growing while the throttling
lasts) before trying it again with the next batch. Other transient errors (a server error, no answer) are treated
the same way; any other error fails the request."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Literal

from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.ecr import Backoff, EcrGateway
from ecr_cache_provider.failures import DeadlineApproaching, EcrError
from ecr_cache_provider.prefix import covers

logger = logging.getLogger(__name__)

Outcome = Literal["updated", "skipped", "unchanged"]

# Parallel calls to ECR. botocore's adaptive retry mode slows all of them down together when ECR throttles.
CONCURRENCY = 8
# Repositories between two looks at the clock; a batch takes a few seconds even under throttling.
BATCH_SIZE = 64
# Seconds of the invocation kept back (beyond the answer margin) to finish a batch and hand off the rest.
HAND_OFF_SECONDS = 30.0


def work_through(
    ecr: EcrGateway,
    prefix: str,
    work: Callable[[str], Outcome],
    progress: Progress,
    physical_id: str,
    *,
    only_under: tuple[str, ...] | None = None,
) -> Progress:
    """Apply `work` to every repository in the namespace after `progress.cursor`, and to those still waiting for a
    retry, counting what it did. With `only_under`, only the repositories under one of those prefixes.

    Raises ContinueLater, with the progress made, when the invocation's time is nearly up."""
    try:
        listed = ecr.repository_names(keep_seconds=HAND_OFF_SECONDS)
    except (EcrError, DeadlineApproaching) as error:
        if isinstance(error, EcrError) and not error.transient:
            raise
        raise ContinueLater(_counted(progress, progress, ecr), physical_id) from error
    names = [name for name in listed if _in_scope(name, prefix, only_under)]
    earlier = set(progress.waiting)
    waiting = [name for name in names if name in earlier]  # a repository deleted meanwhile is not waited for
    fresh = deque(name for name in names if name > progress.cursor)
    done = progress
    backoff = Backoff(ecr.deadline, keep_seconds=HAND_OFF_SECONDS)

    def time_is_short() -> bool:
        """Every invocation tries at least one batch, so that a chain of invocations always moves forward."""
        return done is not progress and ecr.deadline.remaining() < HAND_OFF_SECONDS

    def attempt(repository: str) -> Outcome | None:
        """What `work` did, or None when it must be tried again: ECR throttled it (or failed transiently), or the
        time ran short. Calls slowed down by throttling can make a batch outlast the time kept for handing off, so
        after the first batch no repository is started once that time is reached."""
        if time_is_short():
            return None
        try:
            return work(repository)
        except EcrError as error:
            if error.transient:
                return None
            raise
        except DeadlineApproaching:
            return None

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        while waiting or fresh:
            if time_is_short():
                raise ContinueLater(_counted(replace(done, waiting=tuple(waiting)), progress, ecr), physical_id)
            batch = waiting + [fresh.popleft() for _ in range(min(len(fresh), BATCH_SIZE - len(waiting)))]
            outcomes = list(pool.map(attempt, batch))
            waiting = [name for name, outcome in zip(batch, outcomes, strict=True) if outcome is None]
            done = replace(
                done,
                cursor=max(batch[-1], done.cursor),
                updated=done.updated + outcomes.count("updated"),
                skipped=done.skipped + outcomes.count("skipped"),
            )
            if waiting:
                logger.info("%d repositories to try again (ECR throttled them or time ran short)", len(waiting))
                backoff.pause()  # when the deadline leaves no time for a pause, the next round hands off
            else:
                backoff.reset()
    done = _counted(replace(done, waiting=()), progress, ecr)
    logger.info(
        "Worked through %d repositories: %d updated, %d skipped; ECR throttled %d calls",
        len(names),
        done.updated,
        done.skipped,
        done.throttled,
    )
    return done


def _in_scope(repository: str, prefix: str, only_under: tuple[str, ...] | None) -> bool:
    if not covers(prefix, repository):
        return False
    return only_under is None or any(covers(included, repository) for included in only_under)


def _counted(done: Progress, start: Progress, ecr: EcrGateway) -> Progress:
    """`done` with the throttled calls of the earlier invocations and of this one."""
    return replace(done, throttled=start.throttled + ecr.throttled_calls)
