"""Image references as `docker pull` takes them, below a cache's prefix: `repository:tag`, `repository@digest` and
`repository:tag@digest` (the distribution spec's grammar: a name is path components of lowercase letters and
digits joined by `.`, `_`, `__` or dashes; a tag is up to 128 word characters, dots and dashes, not starting with
either; a digest is `sha256:` and 64 hexadecimal digits). A platform is `os/architecture[/variant]`."""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
TAG = r"[\w][\w.-]{0,127}"
DIGEST = r"sha256:[a-f0-9]{64}"
REFERENCE = re.compile(rf"^(?P<name>{NAME})(?::(?P<tag>{TAG}))?(?:@(?P<digest>{DIGEST}))?\Z")
PLATFORM = re.compile(r"^(?P<os>[a-z0-9]+)/(?P<architecture>[a-z0-9_]+)(?:/(?P<variant>[a-z0-9]+))?\Z")
# ECR's longest repository name (botocore model: RepositoryName, 256 characters).
REPOSITORY_NAME_LIMIT = 256


class BadReference(ValueError):
    pass


@dataclass(frozen=True)
class ImageReference:
    """One image to warm, as written (`text`), and its repository below the cache prefix."""

    text: str
    repository: str
    tag: str = ""
    digest: str = ""

    def cached_repository(self, prefix: str) -> str:
        return f"{prefix}/{self.repository}"

    @property
    def pulled_by(self) -> str:
        """What the pull asks the registry for: the tag when there is one (a digest alone does not fill a cache:
        containers-roadmap issue 2837), else the digest."""
        return self.tag or self.digest


def parse(text: str, prefix: str) -> ImageReference:
    """The reference, checked; BadReference says what is wrong with it."""
    match = REFERENCE.match(text)
    if match is None:
        raise BadReference("not repository:tag, repository@sha256:<64 hex digits> or repository:tag@sha256:...")
    name, tag, digest = match.group("name"), match.group("tag") or "", match.group("digest") or ""
    if not (tag or digest):
        raise BadReference("names no tag or digest (latest is not assumed)")
    if len(f"{prefix}/{name}") > REPOSITORY_NAME_LIMIT:
        raise BadReference(f"its cached repository name would pass ECR's {REPOSITORY_NAME_LIMIT} characters")
    return ImageReference(text, name, tag, digest)


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def matches(self, described: dict[str, object]) -> bool:
        """Whether an index entry's `platform` is this one (a variant given must match too)."""
        if (described.get("os"), described.get("architecture")) != (self.os, self.architecture):
            return False
        return not self.variant or described.get("variant") == self.variant

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


def parse_platform(text: str) -> Platform:
    match = PLATFORM.match(text)
    if match is None:
        raise BadReference("not os/architecture[/variant], such as linux/amd64 or linux/arm/v7")
    return Platform(match.group("os"), match.group("architecture"), match.group("variant") or "")
