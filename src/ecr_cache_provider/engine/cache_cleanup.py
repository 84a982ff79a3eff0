"""A deleted cache takes its copies with it, on request (Custom::PullThroughCacheRule's
DeleteCachedRepositoriesOnDelete): the repositories under the rule's prefix are deleted with their images
(DeleteRepository with force), except those that are not the cache's to delete:
- under a nested prefix another pull-through cache rule covers (that cache's copies);
- under a namespace another stack's resource claims in the ownership ledger (a consumer stack's cache rule or
  repository creation template: its repositories are its business);
- tagged aws:cloudformation:stack-id: a CloudFormation stack manages them (a pre-created AWS::ECR::Repository of a
  consumer stack). CloudFormation puts this tag, with aws:cloudformation:logical-id and :stack-name, on the
  resources it creates (CloudFormation template reference, aws-properties-resource-tags.html: "CloudFormation
  automatically creates the following stack-level tags"); their propagation "varies by resource type", and
  AWS::ECR::Repository takes Tags, so it carries them.

The repositories are worked through in batches (engine/batches.py) and the work continues in follow-up invocations
when the deadline nears; the counts, per reason, travel in the request's Progress (`stage` names the part).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import replace

from ecr_cache_provider.aws.ecr import EcrGateway
from ecr_cache_provider.aws.ledger import Ledger
from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.engine.batches import Outcome, work_through
from ecr_cache_provider.failures import EcrError
from ecr_cache_provider.grammar.prefix import covers

logger = logging.getLogger(__name__)

STAGE = "cached-repositories"
# The tag CloudFormation puts on what a stack made.
STACK_TAG = "aws:cloudformation:stack-id"
# The kinds of claims whose namespaces, nested in (or equal to) the rule's, another stack may hold.
CLAIMING_KINDS = ("pull-through cache rule", "repository creation template")

# Why a repository was left, as the Reason and the log line say it.
DELETED = "deleted"
OTHER_RULE = "another cache rule's"
OTHER_STACK = "claimed by another stack"
CLOUDFORMATION = "managed by a CloudFormation stack"
FAILED = "could not be deleted"  # ECR refused (AccessDenied, say): logged; the Delete goes on and succeeds
REASONS = (OTHER_RULE, OTHER_STACK, CLOUDFORMATION, FAILED)


def delete_cached_repositories(
    ecr: EcrGateway, ledger: Ledger, prefix: str, stack_id: str, progress: Progress | None
) -> Counter[str]:
    """Delete the repositories of the cache at `prefix` (its rule already deleted: nothing caches there any more).
    Returns the counts, per outcome, of every invocation's work; raises ContinueLater, the counts so far in its
    progress's stage, when the invocation's time runs short."""
    start = progress if progress is not None and is_under_way(progress) else Progress(stage=STAGE)
    counts = _decode(start)
    nested_rules = [rule for rule in ecr.rule_prefixes() if rule != prefix and covers(prefix, rule)]
    claimed = sorted({thing.name for thing, owner in ledger.claims(*CLAIMING_KINDS) if owner.stack_id != stack_id})
    lock = threading.Lock()

    def work(repository: str) -> Outcome:
        try:
            reason = _left_because(repository, nested_rules, claimed) or _delete(ecr, repository)
        except EcrError as error:
            if error.transient:
                raise  # tried again after a pause (engine/batches.py)
            logger.warning("Cached repository not deleted", extra={"repository": repository, "error": str(error)})
            reason = FAILED
        if reason == "":
            return "unchanged"  # gone meanwhile
        with lock:
            counts[reason] += 1
        return "updated" if reason == DELETED else "skipped"

    try:
        work_through(ecr, prefix, work, start, physical_id=prefix)
    except ContinueLater as pending:
        raise ContinueLater(replace(pending.progress, stage=_encode(counts)), prefix) from None
    return counts


def is_under_way(progress: Progress) -> bool:
    """Whether a follow-up invocation's progress is this clean-up's."""
    return progress.stage == STAGE or progress.stage.startswith(STAGE + ":")


def summary(counts: Counter[str]) -> str:
    """`deleted N repositories; left M (why)`, for the Reason and the log line."""
    left = [f"{counts[reason]} {reason}" for reason in REASONS if counts[reason]]
    text = f"deleted {counts[DELETED]} cached repositories with their images"
    return text + (f"; left {sum(counts[r] for r in REASONS)} ({', '.join(left)})" if left else "; left none")


def _delete(ecr: EcrGateway, repository: str) -> str:
    """Delete the repository with its images unless a CloudFormation stack manages it: DELETED, CLOUDFORMATION, or
    "" when it is gone already."""
    record = ecr.repository(repository)
    if record is None:
        return ""
    if STACK_TAG in ecr.tags(record.arn):
        return CLOUDFORMATION
    return DELETED if ecr.delete_repository_with_images(repository) else ""


def _left_because(repository: str, nested_rules: list[str], claimed: list[str]) -> str | None:
    if any(covers(rule, repository) for rule in nested_rules):
        return OTHER_RULE
    if any(covers(namespace, repository) for namespace in claimed):
        return OTHER_STACK
    return None


def _encode(counts: Counter[str]) -> str:
    """The stage, with the counts so far: `cached-repositories:deleted=3,claimed by another stack=1`."""
    return STAGE + ":" + ",".join(f"{reason}={number}" for reason, number in sorted(counts.items()))


def _decode(progress: Progress) -> Counter[str]:
    _, _, saved = progress.stage.partition(":")
    counts: Counter[str] = Counter()
    for pair in filter(None, saved.split(",")):
        reason, _, number = pair.rpartition("=")
        counts[reason] = int(number)
    return counts
