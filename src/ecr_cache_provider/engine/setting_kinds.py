"""The kinds of settings a cache namespace's repositories carry, each a Setting read and written by the key the
ownership ledger records it under; what a namespace's repositories should carry (Settings); and one repository as
the settings read and write it (Repository), each value read at most once."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from ecr_cache_provider.aws.ecr import DEFAULT_TAG_MUTABILITY, CreationTemplate, EcrGateway, RepositoryRecord
from ecr_cache_provider.properties import policy_text

TagMutability = tuple[str, tuple[str, ...]]
Encryption = tuple[tuple[str, str], ...]

# The settings as recorded: a key each (a tag is "tag:<key>"), and a JSON value (None for none).
LIFECYCLE_POLICY = "lifecycle_policy"
REPOSITORY_POLICY = "repository_policy"
TAG_MUTABILITY = "tag_mutability"
TAG = "tag:"


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

    @property
    def values(self) -> dict[str, Any]:
        """The managed settings by key, as recorded."""
        found: dict[str, Any] = {}
        if self.lifecycle_policy is not None:
            found[LIFECYCLE_POLICY] = self.lifecycle_policy
        if self.repository_policy is not None:
            found[REPOSITORY_POLICY] = self.repository_policy
        for key, value in self.resource_tags or ():
            found[TAG + key] = value
        if self.tag_mutability is not None:
            found[TAG_MUTABILITY] = self.tag_mutability
        values: dict[str, Any] = recorded(found)
        return values


@dataclass(frozen=True)
class Change:
    """One setting of one repository to change: from the value found there to `target` (None: remove it)."""

    key: str
    found: Any
    target: Any


class Repository:
    """One repository as the settings read and write it, each value read at most once."""

    def __init__(self, ecr: EcrGateway, name: str) -> None:
        self.ecr = ecr
        self.name = name

    @cached_property
    def described(self) -> RepositoryRecord | None:
        return self.ecr.repository(self.name)

    @cached_property
    def tags(self) -> dict[str, str]:
        described = self.described
        return self.ecr.tags(described.arn) if described else {}

    def value(self, key: str) -> Any:
        """The repository's current value of a setting, as recorded (None for none)."""
        return setting_of(key).read(self, key)

    @property
    def exists(self) -> bool:
        return self.described is not None

    def apply(self, changes: list[Change]) -> None:
        """Make the changes, in their order; the tags last, all in one call to add and one to remove."""
        for change in changes:
            setting = setting_of(change.key)
            if setting is not TAGS:
                setting.write(self, [change])
        TAGS.write(self, [change for change in changes if TAGS.holds(change.key)])


class Setting(Protocol):
    """One kind of setting a repository carries, as the ledger records it: by key (a tag's is "tag:<key>"), with a
    JSON value (None for none)."""

    def holds(self, key: str) -> bool:
        """Whether the key is one of this setting's."""
        ...

    def read(self, repository: Repository, key: str) -> Any:
        """The repository's current value, as recorded."""
        ...

    def write(self, repository: Repository, changes: list[Change]) -> None:
        """Make the changes of this setting's keys (a target of None removes the value)."""
        ...


@dataclass(frozen=True)
class PolicyDocument:
    """A repository's lifecycle or repository policy: a JSON document, one call to put it and one to delete it."""

    key: str
    get: Callable[[EcrGateway], Callable[[str], str | None]]
    put: Callable[[EcrGateway], Callable[[str, str], None]]
    delete: Callable[[EcrGateway], Callable[[str], None]]

    def holds(self, key: str) -> bool:
        return key == self.key

    def read(self, repository: Repository, key: str) -> Any:
        return parsed(self.get(repository.ecr)(repository.name))

    def write(self, repository: Repository, changes: list[Change]) -> None:
        for change in changes:
            if change.target is None:
                self.delete(repository.ecr)(repository.name)
            else:
                self.put(repository.ecr)(repository.name, _text(change.target))


class TagMutabilitySetting:
    """The repository's image tag mutability (with its exclusion filters); removing it puts back ECR's default."""

    def holds(self, key: str) -> bool:
        return key == TAG_MUTABILITY

    def read(self, repository: Repository, key: str) -> Any:
        described = repository.described
        return recorded(described.tag_mutability) if described else None

    def write(self, repository: Repository, changes: list[Change]) -> None:
        for change in changes:
            setting, filters = change.target or recorded(DEFAULT_TAG_MUTABILITY)
            repository.ecr.put_tag_mutability(repository.name, (setting, tuple(filters)))


class Tags:
    """The repository's resource tags, one key each: all added in one call, all removed in another."""

    def holds(self, key: str) -> bool:
        return key.startswith(TAG)

    def read(self, repository: Repository, key: str) -> Any:
        return repository.tags.get(key.removeprefix(TAG))

    def write(self, repository: Repository, changes: list[Change]) -> None:
        put = {change.key.removeprefix(TAG): change.target for change in changes if change.target is not None}
        removed = [change.key.removeprefix(TAG) for change in changes if change.target is None]
        described = repository.described if changes else None
        if described is not None and put:
            repository.ecr.tag(described.arn, put)
        if described is not None and removed:
            repository.ecr.untag(described.arn, removed)


TAGS = Tags()
# Every setting a repository carries that the provider manages.
SETTINGS: tuple[Setting, ...] = (
    PolicyDocument(
        LIFECYCLE_POLICY,
        get=lambda ecr: ecr.lifecycle_policy,
        put=lambda ecr: ecr.put_lifecycle_policy,
        delete=lambda ecr: ecr.delete_lifecycle_policy,
    ),
    PolicyDocument(
        REPOSITORY_POLICY,
        get=lambda ecr: ecr.repository_policy,
        put=lambda ecr: ecr.set_repository_policy,
        delete=lambda ecr: ecr.delete_repository_policy,
    ),
    TagMutabilitySetting(),
    TAGS,
)


def setting_of(key: str) -> Setting:
    """The setting a key is one of. A key none holds (none is ever recorded) reads as a tag would, and is never
    written."""
    return next((setting for setting in SETTINGS if setting.holds(key)), TAGS)


def parsed(text: str | None) -> Any:
    """A repository's current document as a comparable value: None when it has none. Never validated: a policy
    this provider would reject is still someone's policy, and differs from ours."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def recorded(value: Any) -> Any:
    """A value as the ledger records it (JSON: tuples become lists), so that values read and recorded compare."""
    return json.loads(json.dumps(value))


def _is_none(key: str, value: Any) -> bool:
    """No value: nothing set (for tag mutability, ECR's default for a repository created without one)."""
    return value is None or (key == TAG_MUTABILITY and value == recorded(DEFAULT_TAG_MUTABILITY))


def _text(document: Any) -> str:
    return document if isinstance(document, str) else policy_text(document)
