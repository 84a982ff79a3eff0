"""The repositories of a cache namespace, worked through in name order by a bounded pool of threads, in batches,
stopping in time to hand the rest to a follow-up invocation, and checking between batches that the request is still
the resource's current one (a newer request stops it, and what the last batch changed is put back).

Throttling slows the work down and never fails it: a repository whose calls ECR still throttles after the
client's own retries goes back in the queue, and the whole pool pauses (jittered, growing while the throttling
lasts) before trying it again with the next batch. Other transient errors (a server error, no answer) are treated
the same way; any other error fails the request."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from ecr_cache_provider.aws.ecr import Backoff, EcrGateway
from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.failures import DeadlineApproaching, EcrError, Superseded
from ecr_cache_provider.grammar.prefix import covers

logger = logging.getLogger(__name__)

Outcome = Literal["updated", "skipped", "unchanged"]

# Parallel calls to ECR. botocore's adaptive retry mode slows all of them down together when ECR throttles.
CONCURRENCY = 8
# Repositories between two looks at the clock; a batch takes a few seconds even under throttling.
BATCH_SIZE = 64
# Seconds of the invocation kept back (beyond the answer margin) to finish a batch and hand off the rest.
HAND_OFF_SECONDS = 30.0


class BatchWork(Protocol):
    """Work done on a batch of repositories at a time (recording what will change in one ledger write, say)."""

    def run(self, batch: list[str], workers: Workers) -> list[Outcome | None]:
        """What the work did to each repository of the batch; None for one to try again later. Steps run through
        `workers`, in parallel, with ECR throttling and time running short turned into None."""
        ...

    def confirm(self) -> None:
        """After each batch: raises Superseded when the request is no longer the resource's current one."""
        ...

    def undo_last(self) -> None:
        """Put back what the last batch changed (its request was superseded meanwhile)."""
        ...


@dataclass(frozen=True)
class Workers:
    """The pool of a namespace walk: `map` runs a step on each item in parallel, `guard` runs one step; either
    gives None for a step ECR throttled (or failed transiently), or that the time kept for handing off stopped."""

    pool: ThreadPoolExecutor
    guard: Callable[[Callable[[], Any]], Any]

    def map(self, step: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return list(self.pool.map(lambda item: self.guard(lambda: step(item)), items))


@dataclass
class EachRepository:
    """Work done on one repository at a time, checked between batches by `confirm` (nothing to undo: a step that
    finds its request superseded stops before the next batch)."""

    work: Callable[[str], Outcome]
    confirm: Callable[[], None] = lambda: None

    def run(self, batch: list[str], workers: Workers) -> list[Outcome | None]:
        return workers.map(self.work, batch)

    def undo_last(self) -> None:
        return


def work_through(
    ecr: EcrGateway,
    prefix: str,
    work: BatchWork | Callable[[str], Outcome],
    progress: Progress,
    physical_id: str,
    *,
    only_under: tuple[str, ...] | None = None,
    listed: Callable[[], list[str]] | None = None,
) -> Progress:
    """Apply `work` to every repository in the namespace after `progress.cursor`, and to those still waiting for a
    retry, counting what it did. With `only_under`, only the repositories under one of those prefixes; with
    `listed`, the repositories it names (in the namespace) rather than those ECR lists.

    After each batch, `work.confirm()` checks that the request is still the resource's current one; when it is
    not, the batch is undone and Superseded raised. Raises ContinueLater, with the progress made, when the
    invocation's time is nearly up."""
    batches = EachRepository(work) if callable(work) else work
    try:
        everything = listed() if listed is not None else ecr.repository_names(keep_seconds=HAND_OFF_SECONDS)
    except (EcrError, DeadlineApproaching) as error:
        if isinstance(error, EcrError) and not error.transient:
            raise
        raise ContinueLater(_counted(progress, progress, ecr), physical_id) from error
    names = sorted(name for name in everything if _in_scope(name, prefix, only_under))
    earlier = set(progress.waiting)
    waiting = [name for name in names if name in earlier]  # a repository deleted meanwhile is not waited for
    fresh = deque(name for name in names if name > progress.cursor)
    done = progress
    backoff = Backoff(ecr.deadline, keep_seconds=HAND_OFF_SECONDS)

    def time_is_short() -> bool:
        """Every invocation tries at least one batch, so that a chain of invocations always moves forward."""
        return done is not progress and ecr.deadline.remaining() < HAND_OFF_SECONDS

    def guarded(step: Callable[[], Any]) -> Any:
        """What `step` did, or None when it must be tried again: ECR throttled it (or failed transiently), or the
        time ran short. Calls slowed down by throttling can make a batch outlast the time kept for handing off, so
        after the first batch no repository is started once that time is reached."""
        if time_is_short():
            return None
        try:
            return step()
        except EcrError as error:
            if error.transient:
                return None
            raise
        except DeadlineApproaching:
            return None

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        workers = Workers(pool, guarded)
        while waiting or fresh:
            if time_is_short():
                raise ContinueLater(_counted(replace(done, waiting=tuple(waiting)), progress, ecr), physical_id)
            batch = waiting + [fresh.popleft() for _ in range(min(len(fresh), BATCH_SIZE - len(waiting)))]
            outcomes = batches.run(batch, workers)
            try:
                batches.confirm()
            except Superseded:
                batches.undo_last()
                raise
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
