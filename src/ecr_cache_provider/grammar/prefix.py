"""ECR's rules for repository prefixes, shared by pull-through cache rules and repository creation templates."""

from __future__ import annotations

import re
from collections.abc import Iterable

# The prefix that stands for every repository of the registry.
ROOT = "ROOT"

# ECR's pattern for repository prefixes (botocore model: pull-through cache rules and creation templates alike).
PREFIX_PATTERN = r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)\Z"


def is_prefix(text: str) -> bool:
    """Whether `text` has the form of a repository prefix (a failed Create's physical id does not)."""
    return bool(re.match(PREFIX_PATTERN, text))


def without_trailing_slash(prefix: str) -> str:
    """ECR implies a trailing '/' on a prefix, so 'quay/' and 'quay' are the same namespace."""
    return prefix.rstrip("/") if prefix != ROOT else prefix


def covers(prefix: str, repository: str) -> bool:
    """`docker-hub` covers `docker-hub/library/nginx`, never `docker-hubx/...`; ROOT covers every repository."""
    return prefix == ROOT or repository.startswith(prefix + "/")


def unmanaged(namespaces: Iterable[str], managed: Iterable[str]) -> list[str]:
    """The namespaces none of `managed` holds: `team/a` is held by `team` and by itself; ROOT holds every namespace
    and is held only by ROOT."""
    holders = list(managed)
    return [
        namespace for namespace in namespaces
        if not any(holder in (ROOT, namespace) or covers(holder, namespace) for holder in holders)
    ]  # fmt: skip
