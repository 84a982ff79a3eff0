"""What a settings resource (Custom::CachedRepositorySettings, Custom::CacheLifecyclePolicy) asks of a namespace,
and what it answers: the settings, for which repositories (its template's namespace, and the existing repositories
in scope), how to treat what is there; the answer's physical id (the prefix) and counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecr_cache_provider.continuation import Progress
from ecr_cache_provider.contract import Result
from ecr_cache_provider.engine.declared_state import repositories_state, template_state
from ecr_cache_provider.engine.setting_kinds import Settings
from ecr_cache_provider.failures import InvalidProperties
from ecr_cache_provider.grammar.prefix import PREFIX_PATTERN, ROOT

PREFIX = {"type": "string", "minLength": 1, "maxLength": 256, "pattern": PREFIX_PATTERN}
# The properties both resource types share: which repositories, existing and new (JSON schema).
NAMESPACE_PROPERTIES: dict[str, Any] = {
    "RepositoryPrefix": PREFIX | {"description": "a repository namespace such as docker-hub or team/cache, or ROOT"},
    "ApplyToExistingRepositories": {"type": "boolean", "default": True},
    "ApplyToNewRepositories": {"type": "boolean", "default": True},
    "ExistingRepositoryPrefixes": {
        "type": "array",
        "default": [],
        "items": PREFIX,
        "description": "repository namespaces such as docker-hub or team/cache, or ROOT for every repository",
    },
}


@dataclass(frozen=True)
class NamespaceSettings:
    """What a resource asks for: the settings, for which repositories, and how to treat what is there."""

    prefix: str
    settings: Settings
    apply_to_existing: bool
    apply_to_new: bool
    overwrite: bool
    existing_prefixes: tuple[str, ...] = ()
    take_over_from: str = ""  # the logical id of the resource of this stack being replaced by this one

    @property
    def existing_scope(self) -> tuple[str, ...]:
        """The prefixes whose existing repositories get the settings: under ROOT only those named explicitly."""
        if not self.apply_to_existing:
            return ()
        return self.existing_prefixes if self.prefix == ROOT else (self.prefix,)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """What the resource touches: its template's namespace (a ROOT template reaches every repository created
        later), and the existing repositories it brings to the settings."""
        template = (self.prefix,) if self.apply_to_new or self.prefix != ROOT else ()
        return template + self.existing_scope

    def check(self, what: str) -> NamespaceSettings:
        """The rules between properties; `what` names the settings in Reasons ("the policy", "the settings")."""
        if self.existing_prefixes and self.prefix != ROOT:
            raise InvalidProperties(
                f"ExistingRepositoryPrefixes applies only with RepositoryPrefix ROOT; with {self.prefix!r} every "
                f"existing repository under it gets {what} (set ApplyToExistingRepositories to false for none)"
            )
        if self.existing_prefixes and not self.apply_to_existing:
            raise InvalidProperties(
                "ExistingRepositoryPrefixes names repositories to backfill, but ApplyToExistingRepositories is false"
            )
        if self.take_over_from and not self.apply_to_new:
            raise InvalidProperties("TakeOverFrom takes over a creation template: ApplyToNewRepositories must be true")
        return self


@dataclass(frozen=True)
class Done:
    """What Create or Update did: the backfill's progress; how many existing repositories are encrypted otherwise
    than new ones will be (None when no encryption was asked for)."""

    progress: Progress
    other_encryption: int | None = None


def result(wanted: NamespaceSettings, done: Done) -> Result:
    """The answer to Create and Update: the prefix as physical id, the counts as attributes."""
    data = {
        "RepositoryPrefix": wanted.prefix,
        "RepositoriesUpdated": str(done.progress.updated),
        "RepositoriesSkipped": str(done.progress.skipped),
        "ExistingRepositoriesLeftAlone": str(not wanted.existing_scope).lower(),
    }
    if done.other_encryption is not None:
        data["ExistingRepositoriesWithOtherEncryption"] = str(done.other_encryption)
    # The template it declared (none when it makes none); its description names the request, and is not compared.
    declared = template_state(wanted.settings.template(wanted.prefix, "")) if wanted.apply_to_new else {}
    # The settings its existing repositories carry (sampled by the health check where the ledger says it set them).
    declared |= repositories_state(wanted.existing_scope, wanted.settings.values)
    return Result(physical_id=wanted.prefix, data=data, declared=declared)


def readable(
    read: Callable[[dict[str, Any]], NamespaceSettings], properties: dict[str, Any]
) -> NamespaceSettings | None:
    """What a resource's earlier (or a Delete's) properties said, as `read` reads them; None when they no longer
    validate."""
    try:
        return read(properties)
    except InvalidProperties:
        return None
