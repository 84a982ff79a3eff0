"""Warming a pull-through cache: each image pulled through the cache as `docker pull` pulls it, then ECR asked
until it reports the image and every layer as its own.

Why: on a cache miss ECR answers the manifest at once but redirects the layer downloads to the upstream until it
has imported them (https://github.com/aws/containers-roadmap/issues/2304), so nodes without internet fail a first
pull; and a first pull by digest alone does not reach the upstream at all
(https://github.com/aws/containers-roadmap/issues/2837). A pull made here, with internet, fills the cache first.

The pull: a token from GetAuthorizationToken, the manifest by tag (or by digest), each wanted platform's manifest
of an index, then every layer and config, downloaded in parallel (LAYER_THREADS) and discarded as it streams
(aws/registry.py). `repository:tag@digest` is pulled through its tag, which must resolve to the digest (or to an
index naming it). The wait: DescribeImages for each manifest and BatchCheckLayerAvailability for each layer, with
a growing pause between rounds. Work that does not fit in the invocation continues in the next one: each image's
outcome travels in the progress (`notes`).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

from ecr_cache_provider.aws.ecr import Backoff, EcrGateway
from ecr_cache_provider.aws.registry import Fetched, RegistryClient, RegistryError
from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.deadline import Deadline
from ecr_cache_provider.failures import DeadlineApproaching, aws_message
from ecr_cache_provider.grammar.image_reference import ImageReference, Platform, parse, parse_platform

logger = logging.getLogger(__name__)

LAYER_THREADS = 4
# An image's pull starts only with this much time left before the deadline's margin (the first of an invocation
# always starts: every invocation makes progress).
PULL_KEEP_SECONDS = 60.0
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")

PULLED, WARMED, FAILED = "pulled", "warmed", "failed"


@dataclass(frozen=True)
class WarmUpSettings:
    prefix: str
    images: tuple[ImageReference, ...]
    platforms: tuple[Platform, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What became of one image: pulled (ECR still importing), warmed, or failed (and why)."""

    image: str
    state: str
    repository: str = ""
    digest: str = ""
    manifests: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    reason: str = ""

    def note(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_note(cls, note: str) -> Outcome:
        values: dict[str, Any] = json.loads(note)
        return cls(**{**values, "manifests": tuple(values["manifests"]), "layers": tuple(values["layers"])})


class ImageFailed(Exception):
    pass


def warm(
    ecr: EcrGateway, settings: WarmUpSettings, deadline: Deadline, progress: Progress | None, physical_id: str
) -> list[Outcome]:
    """Pull every image not pulled yet, then wait until ECR reports each pulled one; each image's outcome, in the
    order given. ContinueLater when the invocation's time runs out first."""
    outcomes = {outcome.image: outcome for outcome in map(Outcome.from_note, progress.notes if progress else ())}
    invocation = progress.invocation if progress else 1

    def later(stage: str) -> ContinueLater:
        notes = tuple(outcome.note() for outcome in outcomes.values())
        return ContinueLater(Progress(cursor=str(len(outcomes)), invocation=invocation, stage=stage, notes=notes),
                             physical_id)  # fmt: skip

    todo = [reference for reference in settings.images if reference.text not in outcomes]
    if todo:
        try:
            registry = RegistryClient(*ecr.authorization(), deadline, connections=LAYER_THREADS)
            with registry, ThreadPoolExecutor(LAYER_THREADS, thread_name_prefix="layers") as pool:
                for count, reference in enumerate(todo):
                    if count and deadline.remaining() < PULL_KEEP_SECONDS:
                        raise later("pull")
                    outcomes[reference.text] = pull(registry, reference, settings, pool)
                    logger.info("Pulled", extra={"image": reference.text, "state": outcomes[reference.text].state})
        except DeadlineApproaching:
            raise later("pull") from None
    try:
        _wait_until_reported(ecr, outcomes, deadline)
    except DeadlineApproaching:
        raise later("wait") from None
    if any(outcome.state == PULLED for outcome in outcomes.values()):
        raise later("wait")
    return [outcomes[reference.text] for reference in settings.images]


def pull(registry: RegistryClient, reference: ImageReference, settings: WarmUpSettings, pool: Any) -> Outcome:
    """One image through the cache: its manifests, then its layers; a failed outcome says why."""
    repository = reference.cached_repository(settings.prefix)
    try:
        target = _target(registry, repository, reference)
        manifests = [target]
        if target.media_type in INDEX_TYPES:
            manifests += [registry.manifest(repository, digest) for digest in _platforms(target, settings.platforms)]
        blobs: list[str] = []
        for manifest in manifests:
            document = manifest.json()
            for descriptor in [document.get("config"), *list(document.get("layers") or [])]:
                digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
                if isinstance(digest, str) and digest not in blobs:
                    blobs.append(digest)
        list(pool.map(lambda digest: registry.download_layer(repository, digest), blobs))
    except RegistryError as error:
        return Outcome(reference.text, FAILED, repository, reason=_reason(error, reference))
    except ImageFailed as failed:
        return Outcome(reference.text, FAILED, repository, reason=str(failed))
    digests = tuple(manifest.digest for manifest in manifests)
    return Outcome(reference.text, PULLED, repository, target.digest, digests, tuple(blobs))


def _target(registry: RegistryClient, repository: str, reference: ImageReference) -> Fetched:
    """The manifest to warm: by tag when there is one; with `tag@digest` the tag must resolve to the digest, or to
    an index that names it (then that platform's manifest)."""
    top = registry.manifest(repository, reference.pulled_by)
    if not (reference.tag and reference.digest) or top.digest == reference.digest:
        return top
    if reference.digest in _entries(top):
        return registry.manifest(repository, reference.digest)
    raise ImageFailed(f"its tag {reference.tag} is {top.digest} upstream now, not {reference.digest}")


def _entries(index: Fetched) -> dict[str, dict[str, Any]]:
    """An index's manifests: digest -> platform."""
    if index.media_type not in INDEX_TYPES:
        return {}
    entries = index.json().get("manifests") or []
    return {
        str(entry["digest"]): dict(entry.get("platform") or {})
        for entry in entries if isinstance(entry, dict) and "digest" in entry
    }  # fmt: skip


def _platforms(index: Fetched, platforms: tuple[Platform, ...]) -> list[str]:
    """The digests of the index's manifests for the platforms wanted (all of them when none is named)."""
    entries = _entries(index)
    chosen = [digest for digest, found in entries.items() if not platforms or any(p.matches(found) for p in platforms)]
    if not chosen:
        offered = sorted(
            {"/".join(str(p[k]) for k in ("os", "architecture", "variant") if p.get(k)) for p in entries.values()}
        )
        raise ImageFailed(
            f"its index has none of the platforms {', '.join(map(str, platforms))} (it has {', '.join(offered)})"
        )
    return chosen


def _reason(error: RegistryError, reference: ImageReference) -> str:
    if error.status == 404 and not reference.tag:
        # containers-roadmap issue 2837; a Reason shows 256 characters, so the short name.
        return "ECR's cache fetches no digest alone (aws/containers-roadmap#2837): add its tag, as repo:tag@sha256:..."
    if error.status == 404:
        return f"not found upstream ({error.code})"
    if error.status == 401:
        return "ECR refused the authorization token of GetAuthorizationToken"
    if error.status == 403:
        return f"denied: {aws_message(str(error).partition(': ')[2])}"
    return f"the registry answered {error}"


def _wait_until_reported(ecr: EcrGateway, outcomes: dict[str, Outcome], deadline: Deadline) -> None:
    """Ask ECR, in rounds with a growing pause, until it reports every pulled image's manifests and layers; stops
    without waiting when the deadline leaves no room (the caller hands on)."""
    backoff = Backoff(deadline)
    while True:
        for name, outcome in list(outcomes.items()):
            if outcome.state != PULLED:
                continue
            manifests, layers = list(outcome.manifests), list(outcome.layers)
            if set(manifests) <= ecr.images_present(outcome.repository, manifests) and set(
                layers
            ) <= ecr.layers_available(outcome.repository, layers):
                outcomes[name] = replace(outcome, state=WARMED)
        if all(outcome.state != PULLED for outcome in outcomes.values()) or not backoff.pause():
            return


# The refresh schedule's invocation (Custom::CacheWarmUp with RefreshSchedule): no CloudFormation request, nothing
# to answer. Each image is pulled again, so that a tag that moved upstream is imported; ECR finishes the imports
# by itself, so the refresh does not wait for them.

REFRESH_KEY = "CacheWarmUpRefresh"


def is_refresh(event: dict[str, Any]) -> bool:
    return isinstance(event.get(REFRESH_KEY), dict)


def refresh(event: dict[str, Any], deadline: Deadline, ecr: EcrGateway | None = None) -> list[Outcome]:
    """Pull each image of the schedule's settings again, as long as the invocation lasts; log each outcome."""
    saved = event[REFRESH_KEY]
    prefix = str(saved["prefix"])
    settings = WarmUpSettings(
        prefix,
        tuple(parse(text, prefix) for text in saved["images"]),
        tuple(parse_platform(text) for text in saved.get("platforms", [])),
    )
    ecr = ecr or EcrGateway(deadline)
    registry = RegistryClient(*ecr.authorization(), deadline, connections=LAYER_THREADS)
    outcomes: list[Outcome] = []
    with registry, ThreadPoolExecutor(LAYER_THREADS, thread_name_prefix="layers") as pool:
        for count, reference in enumerate(settings.images):
            if count and deadline.remaining() < PULL_KEEP_SECONDS:
                logger.warning(
                    "Refresh stopped: the invocation ends", extra={"not_refreshed": len(settings.images) - count}
                )
                break
            try:
                outcomes.append(pull(registry, reference, settings, pool))
            except DeadlineApproaching:
                break
    failed = {outcome.image: outcome.reason for outcome in outcomes if outcome.state == FAILED}
    logger.info("Refreshed", extra={"prefix": prefix, "pulled": len(outcomes) - len(failed), "failed": failed})
    return outcomes
