"""How many existing repositories of a namespace are encrypted otherwise than its creation template will encrypt
new ones: ECR cannot change an existing repository's encryption, so a resource reports them rather than change
them."""

from __future__ import annotations

from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.contract import RequestContext
from ecr_cache_provider.engine.batches import HAND_OFF_SECONDS
from ecr_cache_provider.engine.setting_kinds import Settings
from ecr_cache_provider.failures import DeadlineApproaching, EcrError
from ecr_cache_provider.grammar.prefix import covers


def other_encryption(prefix: str, settings: Settings, progress: Progress, context: RequestContext) -> int | None:
    """The count; None when the settings name no encryption. When time runs out, the request continues in a
    follow-up invocation at `progress`, which only counts."""
    if settings.encryption is None:
        return None
    try:
        repositories = context.ecr.repositories(keep_seconds=HAND_OFF_SECONDS)
    except (EcrError, DeadlineApproaching) as error:
        if isinstance(error, EcrError) and not error.transient:
            raise
        raise ContinueLater(progress, prefix) from error  # the backfill is done: the next one only counts
    return sum(
        1 for repository in repositories if covers(prefix, repository.name) and settings.encryption_differs(repository)
    )
