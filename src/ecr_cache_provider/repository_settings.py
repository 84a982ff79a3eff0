"""The settings a cache namespace's repositories carry, and how one repository is brought to them.

Each setting is optional. For each, a repository's current value is ours (what this resource set before), none,
or someone else's: none and ours are replaced, someone else's only with OverwriteExistingSettings, and a removal
(a setting dropped, or Delete) takes away only a value that is still ours. Ours is recognised by value, as
Custom::CacheLifecyclePolicy always has: the value this resource's properties (or its predecessor's template)
name is the one it put there; a value anyone changed since is theirs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ecr_cache_provider.ecr import DEFAULT_TAG_MUTABILITY, CreationTemplate, EcrGateway, RepositoryRecord
from ecr_cache_provider.namespace import Outcome
from ecr_cache_provider.properties import policy_text

TagMutability = tuple[str, tuple[str, ...]]
Encryption = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Settings:
    """What every repository of the namespace should carry; None where a setting is not managed."""

    lifecycle_policy: dict[str, Any] | None = None
    repository_policy: dict[str, Any] | None = None
    resource_tags: tuple[tuple[str, str], ...] | None = None
    tag_mutability: TagMutability | None = None
    encryption: Encryption | None = None  # new repositories only: ECR cannot change an existing one's
    custom_role_arn: str = ""  # the role ECR assumes to apply a template with KMS encryption or tags

    def template(self, prefix: str, description: str) -> CreationTemplate:
        """The repository creation template that gives new repositories these settings."""
        return CreationTemplate(
            prefix=prefix,
            description=description,
            lifecycle_policy=policy_text(self.lifecycle_policy) if self.lifecycle_policy else "",
            repository_policy=policy_text(self.repository_policy) if self.repository_policy else "",
            resource_tags=self.resource_tags or (),
            tag_mutability=self.tag_mutability or DEFAULT_TAG_MUTABILITY,
            encryption=self.encryption or (),
            custom_role_arn=self.custom_role_arn,
            applied_for=("PULL_THROUGH_CACHE",),
        )

    def encryption_differs(self, repository: RepositoryRecord) -> bool:
        """Whether an existing repository is encrypted otherwise than new ones will be (a KMS key that is not
        named is whichever ECR chose)."""
        if self.encryption is None:
            return False
        wanted, current = dict(self.encryption), dict(repository.encryption)
        if wanted.get("encryptionType") != current.get("encryptionType", "AES256"):
            return True
        return "kmsKey" in wanted and wanted["kmsKey"] != current.get("kmsKey")


def bring_to(
    ecr: EcrGateway, name: str, wanted: Settings | None, previous: Settings | None, overwrite: bool
) -> Outcome:
    """Bring one repository from `previous` (ours before; None when we set nothing) to `wanted` (None: remove
    what is still ours). Skipped when a setting someone else made was left alone, updated when something changed."""
    repository = _Repository(ecr, name)
    outcomes = [
        setting.bring_to(repository, setting.value(wanted), setting.value(previous), overwrite)
        for setting in SETTINGS
        if setting.value(wanted) is not None or setting.value(previous) is not None
    ]
    for outcome in ("skipped", "updated"):
        if outcome in outcomes:
            return outcome
    return "unchanged"


class _Repository:
    """One repository as the settings read it: its name, and its description when a setting needs it."""

    def __init__(self, ecr: EcrGateway, name: str) -> None:
        self.ecr = ecr
        self.name = name

    @cached_property
    def record(self) -> RepositoryRecord | None:
        return self.ecr.repository(self.name)


@dataclass(frozen=True)
class _Document:
    """A setting that is one JSON document per repository (lifecycle policy, repository policy)."""

    value: Callable[[Settings | None], dict[str, Any] | None]
    read: Callable[[EcrGateway, str], str | None]
    write: Callable[[EcrGateway, str, str], None]
    remove: Callable[[EcrGateway, str], None]

    def bring_to(self, repository: _Repository, wanted: Any, previous: Any, overwrite: bool) -> Outcome:
        current = parsed(self.read(repository.ecr, repository.name))
        if current == wanted:
            return "unchanged"
        if current is not None and current != previous and not (overwrite and wanted is not None):
            return "skipped"
        if wanted is None:
            self.remove(repository.ecr, repository.name)
        else:
            self.write(repository.ecr, repository.name, policy_text(wanted))
        return "updated"


class _ResourceTags:
    """Tags, each key on its own: a key is ours when it still has the value we gave it."""

    @staticmethod
    def value(settings: Settings | None) -> tuple[tuple[str, str], ...] | None:
        return settings.resource_tags if settings else None

    @staticmethod
    def bring_to(repository: _Repository, wanted: Any, previous: Any, overwrite: bool) -> Outcome:
        record = repository.record
        if record is None:
            return "unchanged"  # gone meanwhile
        want, had = dict(wanted or ()), dict(previous or ())
        current = repository.ecr.tags(record.arn)
        put: dict[str, str] = {}
        remove: list[str] = []
        skipped = False
        for key in sorted(want.keys() | had.keys()):
            value, now = want.get(key), current.get(key)
            if now == value:
                continue
            if now is None or now == had.get(key) or (overwrite and value is not None):
                if value is None:
                    remove.append(key)
                else:
                    put[key] = value
            else:
                skipped = True
        if put:
            repository.ecr.tag(record.arn, put)
        if remove:
            repository.ecr.untag(record.arn, remove)
        return "skipped" if skipped else "updated" if put or remove else "unchanged"


class _TagMutability:
    """Image tag mutability and its exclusion filters, as one value; none is ECR's default, MUTABLE."""

    @staticmethod
    def value(settings: Settings | None) -> TagMutability | None:
        return settings.tag_mutability if settings else None

    @staticmethod
    def bring_to(repository: _Repository, wanted: Any, previous: Any, overwrite: bool) -> Outcome:
        record = repository.record
        if record is None:
            return "unchanged"
        target = wanted or DEFAULT_TAG_MUTABILITY
        current = record.tag_mutability
        if current == target:
            return "unchanged"
        if current not in (DEFAULT_TAG_MUTABILITY, previous) and not (overwrite and wanted is not None):
            return "skipped"
        repository.ecr.put_tag_mutability(repository.name, target)
        return "updated"


SETTINGS: tuple[Any, ...] = (
    _Document(
        value=lambda settings: settings.lifecycle_policy if settings else None,
        read=EcrGateway.lifecycle_policy,
        write=EcrGateway.put_lifecycle_policy,
        remove=EcrGateway.delete_lifecycle_policy,
    ),
    _Document(
        value=lambda settings: settings.repository_policy if settings else None,
        read=EcrGateway.repository_policy,
        write=EcrGateway.set_repository_policy,
        remove=EcrGateway.delete_repository_policy,
    ),
    _ResourceTags,
    _TagMutability,
)


def parsed(text: str | None) -> Any:
    """A repository's current document as a comparable value: None when it has none. Never validated: a policy
    this provider would reject is still someone's policy, and differs from ours."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
