"""The image expiry sweep: which cached images nobody has pulled for N days, and deleting them. One module, though
long: the decision and the sweep that carries it out are read together.

`decide` is the decision, pure and tested directly; `sweep` works through a namespace's repositories with
it. What the decision never does:
- expire an image within FLOOR (2 days) of its last recorded pull or push, whatever N says: ECR refreshes
  lastRecordedPullTime at most about once a day;
- separate an image index from the manifests it references: they live and die together, judged by the most recent
  pull of any of them, so a manifest a kept index references is kept;
- touch an image that is not ACTIVE (ARCHIVED images are left to lifecycle policies), or the group it belongs to;
- read a recently pulled index (ECR counts the read as a pull), or expire a manifest such an index may reference;
- expire an image in use (a Lambda function's, an ECS service's or running task's: aws/workloads.py) or tagged with
  one of ProtectedTags, or any image of its group.
"""

from __future__ import annotations

import difflib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from ecr_cache_provider import continuation
from ecr_cache_provider.aws import sdk
from ecr_cache_provider.aws.ecr import EcrGateway, ImageRecord
from ecr_cache_provider.aws.ledger import Ledger, Owner, Thing
from ecr_cache_provider.aws.scheduler import SchedulerGateway
from ecr_cache_provider.aws.workloads import ImagesInUse, WorkloadsGateway, WorkloadsUnknown
from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.deadline import Deadline
from ecr_cache_provider.engine.batches import EachRepository, Outcome, work_through
from ecr_cache_provider.failures import Superseded
from ecr_cache_provider.grammar.prefix import ROOT, covers
from ecr_cache_provider.observability import logger as structured_logger
from ecr_cache_provider.observability import metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = logging.getLogger(__name__)

# The key of a scheduled sweep's event (the schedule's input): no CloudFormation request, nothing to answer.
SWEEP_KEY = "CacheProviderImageExpiry"
# The kinds of claims whose namespaces, nested in a sweep's, belong to another resource and are never swept.
PROTECTING_KINDS = ("pull-through cache rule", "repository creation template")
# The claim on a resource's schedule.
SCHEDULE_KIND = "image expiry schedule"
METRIC_DIMENSION = "Custom::CacheImageExpiry"

# Never expire an image pulled (or cached) less than this long ago, whatever ExpireAfterDaysWithoutPull says.
FLOOR = timedelta(days=2)
# At most this many images are named in a dry run's log line and in the sweep's summary.
LISTED_IMAGES = 20


@dataclass(frozen=True)
class ExpirySettings:
    """What a sweep does, as the resource's properties say (and the schedule's input carries)."""

    prefix: str
    expire_after_days: int
    keep_latest: int = 0
    delete_empty_repositories: bool = False
    dry_run: bool = False
    # Under ROOT, only repositories under these prefixes are swept (a cached repository cannot be told from one
    # an application pushes to).
    root_prefixes: tuple[str, ...] = ()
    # Images in use (Lambda functions, ECS services and running tasks) are never expired; nor are these tags.
    protect_images_in_use: bool = True
    protected_tags: tuple[str, ...] = ()

    @property
    def expire_after(self) -> timedelta:
        return max(timedelta(days=self.expire_after_days), FLOOR)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The namespaces swept: the prefix, or under ROOT those named."""
        return self.root_prefixes if self.prefix == ROOT else (self.prefix,)

    def sweeps(self, repository: str) -> bool:
        """Whether the repository is in this sweep's namespace."""
        if self.prefix == ROOT:
            return any(covers(prefix, repository) for prefix in self.root_prefixes)
        return covers(self.prefix, repository)

    def to_input(self) -> dict[str, Any]:
        return asdict(self) | {"root_prefixes": list(self.root_prefixes), "protected_tags": list(self.protected_tags)}

    @classmethod
    def from_input(cls, saved: dict[str, Any]) -> ExpirySettings:
        known = {item.name for item in fields(cls)}
        values = {name: value for name, value in saved.items() if name in known}
        values["root_prefixes"] = tuple(values.get("root_prefixes", ()))
        values["protected_tags"] = tuple(values.get("protected_tags", ()))
        return cls(**values)


# The decision


def decide(
    images: list[ImageRecord],
    children: dict[str, tuple[str, ...]],
    settings: ExpirySettings,
    now: datetime,
    protected: frozenset[str] = frozenset(),
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """The images of one repository to delete, and those kept only because they are `protected` (digests in use,
    or tagged with a protected tag) or in a protected image's group (an index and its manifests). Indexes come
    first (ECR refuses to delete a manifest an index still references), then the manifests. `children` maps the
    digest of each index that was read to the digests it references. An index that was not read (recently pulled,
    so not worth a read that ECR counts as a pull) may reference any manifest: while one exists, a manifest no read
    index references is kept."""
    unread = any(image.is_index and image.digest not in children for image in images)
    referenced = {child for references in children.values() for child in references}
    groups = _groups(images, children)
    by_recent_use = sorted(groups, key=lambda group: max(image.last_used_at for image in group), reverse=True)
    expired: list[ImageRecord] = []
    kept_in_use: list[ImageRecord] = []
    for rank, group in enumerate(by_recent_use):
        if rank < settings.keep_latest or any(image.status != "ACTIVE" for image in group):
            continue
        if any(image.is_index and image.digest not in children for image in group):
            continue  # an index whose manifests are unknown: its group cannot be judged
        if unread and len(group) == 1 and group[0].digest not in referenced:
            continue  # perhaps a manifest of an index not read
        if now - max(image.last_used_at for image in group) > settings.expire_after:
            if any(image.digest in protected for image in group):
                kept_in_use += group
            else:
                expired += group
    return sorted(expired, key=lambda image: (not image.is_index, image.digest)), kept_in_use


def indexes_to_read(images: list[ImageRecord], settings: ExpirySettings, now: datetime) -> list[str]:
    """The indexes whose manifests the sweep reads: only those old enough to expire on their own, since ECR counts
    the read (BatchGetImage) as a pull and a recently pulled index is kept whatever its manifests say."""
    return [image.digest for image in images if image.is_index and _old_enough(image, settings, now)]


def _groups(images: list[ImageRecord], children: dict[str, tuple[str, ...]]) -> list[list[ImageRecord]]:
    """Images that live and die together: each index with the manifests it references, joined when two indexes
    share a manifest; every other image alone."""
    by_digest = {image.digest: image for image in images}
    parent = {digest: digest for digest in by_digest}  # each image's way to its group's first-joined member

    def root(digest: str) -> str:
        while parent[digest] != digest:
            parent[digest] = parent[parent[digest]]  # halve the way for the next lookup
            digest = parent[digest]
        return digest

    for index, referenced in children.items():
        for child in referenced:
            if index in parent and child in parent:
                parent[root(child)] = root(index)
    members: dict[str, list[ImageRecord]] = {}
    for digest, image in by_digest.items():
        members.setdefault(root(digest), []).append(image)
    return list(members.values())


def has_candidates(images: Iterable[ImageRecord], settings: ExpirySettings, now: datetime) -> bool:
    """Whether any image is old enough to expire on its own: if none is, no group can be, and no index needs
    reading."""
    return any(_old_enough(image, settings, now) for image in images)


def _old_enough(image: ImageRecord, settings: ExpirySettings, now: datetime) -> bool:
    return image.status == "ACTIVE" and now - image.last_used_at > settings.expire_after


# The sweep


@dataclass
class SweepTotals:
    """What a sweep did (or, in a dry run, would do), across all its invocations."""

    repositories_scanned: int = 0
    images_expired: int = 0
    bytes_freed: int = 0
    repositories_deleted: int = 0
    failed_deletions: int = 0
    images_protected: int = 0  # kept only because they (or their group) are in use or carry a protected tag
    started_at: str = ""  # when the sweep's first invocation started: every invocation decides as of then
    listed: list[str] = field(default_factory=list)  # the first LISTED_IMAGES images, as repository@digest (tags)
    failures: list[str] = field(default_factory=list)  # the first LISTED_IMAGES failures ECR reported
    protected: list[str] = field(default_factory=list)  # the first LISTED_IMAGES images kept in use, and by whom
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def to_saved(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self) if not item.name.startswith("_")}

    @classmethod
    def from_saved(cls, saved: dict[str, Any] | None) -> SweepTotals:
        known = {item.name for item in fields(cls) if not item.name.startswith("_")}
        return cls(**{name: value for name, value in (saved or {}).items() if name in known})

    def add(
        self,
        expired: list[ImageRecord],
        deleted: set[str],
        failures: Iterable[tuple[str, str]],
        repository: str,
        repository_deleted: bool,
    ) -> None:
        with self._lock:
            self.repositories_scanned += 1
            self.repositories_deleted += int(repository_deleted)
            for image in expired:
                if image.digest not in deleted:
                    continue
                self.images_expired += 1
                self.bytes_freed += 0 if image.is_index else image.size_bytes  # an index reports its largest child
                if len(self.listed) < LISTED_IMAGES:
                    self.listed.append(f"{repository}@{image.digest} ({','.join(image.tags) or 'untagged'})")
            for digest, reason in failures:
                self.failed_deletions += 1
                if len(self.failures) < LISTED_IMAGES:
                    self.failures.append(f"{repository}@{digest}: {reason}")

    def add_protected(self, kept: list[ImageRecord], repository: str, users: list[str]) -> None:
        with self._lock:
            self.images_protected += len(kept)
            for image in kept:
                if len(self.protected) < LISTED_IMAGES:
                    self.protected.append(f"{repository}@{image.digest} ({', '.join(users[:3]) or 'ProtectedTags'})")


def protected_digests(
    images: list[ImageRecord], repository: str, settings: ExpirySettings, in_use: ImagesInUse | None
) -> tuple[frozenset[str], list[str]]:
    """The digests of the repository's images never to expire: those in use, by digest or by a tag they carry
    (now), and those tagged with one of ProtectedTags; and who uses them."""
    tags_in_use = in_use.tags(repository) if in_use else set()
    digests = in_use.digests(repository) if in_use else set()
    tags = set(settings.protected_tags) | tags_in_use
    digests |= {image.digest for image in images if tags.intersection(image.tags)}
    users = in_use.users(repository, digests, tags_in_use) if in_use else []
    return frozenset(digests), users


class IndexesNotRead(Exception):
    """A sweep told not to read image indexes met one it would have to read to decide."""


def sweep_repository(
    ecr: EcrGateway,
    repository: str,
    settings: ExpirySettings,
    now: datetime,
    totals: SweepTotals,
    *,
    read_indexes: bool = True,
    in_use: ImagesInUse | None = None,
) -> Outcome:
    """Expire what the decision says in one repository (nothing in a dry run), and delete it when it is left
    empty and DeleteEmptyRepositories is set. Without `read_indexes`, raises IndexesNotRead rather than read one
    (a read is a pull to ECR, which would keep the index alive for another N days)."""
    images = ecr.images(repository)
    expired: list[ImageRecord] = []
    if has_candidates(images, settings, now):
        indexes = indexes_to_read(images, settings, now)
        if indexes and not read_indexes:
            raise IndexesNotRead(repository)
        protected, users = protected_digests(images, repository, settings, in_use)
        children = ecr.index_children(repository, indexes) if indexes else {}
        expired, kept = decide(images, children, settings, now, protected)
        totals.add_protected(kept, repository, users)
    if settings.dry_run:
        totals.add(expired, {image.digest for image in expired}, (), repository, False)
        return "updated" if expired else "unchanged"
    deleted: set[str] = set()
    failures: list[tuple[str, str]] = []
    for wave in ([image for image in expired if image.is_index], [image for image in expired if not image.is_index]):
        if wave:
            result = ecr.delete_images(repository, [image.digest for image in wave])
            deleted |= set(result.deleted)
            failures += result.failures
    left_empty = bool(deleted) and len(deleted) == len(images)  # only a repository this sweep emptied
    repository_deleted = settings.delete_empty_repositories and left_empty and ecr.delete_repository(repository)
    totals.add(expired, deleted, failures, repository, repository_deleted)
    return "updated" if deleted or repository_deleted else "unchanged"


def sweep(
    ecr: EcrGateway,
    settings: ExpirySettings,
    now: datetime,
    progress: Progress,
    totals: SweepTotals,
    *,
    protected: tuple[str, ...] = (),
    read_indexes: bool = True,
    confirm: Callable[[], ExpirySettings] | None = None,
    in_use: ImagesInUse | None = None,
) -> Progress:
    """Sweep every repository of the namespace after `progress.cursor`, except those under a `protected` prefix
    (a namespace another resource claims). With `confirm`, the resource's settings are read again after each batch
    (DryRun turned on stops the deleting at once); it raises Superseded to stop the sweep (the resource was deleted,
    or moved to another namespace). Raises ContinueLater (from work_through) when the invocation's time runs short;
    `totals` then holds what was done so far."""
    current = [settings]

    def work(repository: str) -> Outcome:
        now_settings = current[0]
        if not now_settings.sweeps(repository) or any(covers(prefix, repository) for prefix in protected):
            return "skipped"
        return sweep_repository(ecr, repository, now_settings, now, totals, read_indexes=read_indexes, in_use=in_use)

    def confirmed() -> None:
        if confirm is not None:
            current[0] = confirm()

    return work_through(ecr, settings.prefix, EachRepository(work, confirmed), progress, physical_id=settings.prefix)


def covered_by_a_cache(namespace: str, rule_prefixes: Iterable[str]) -> bool:
    """Whether a pull-through cache rule covers the whole namespace: every repository under it is a cache's, which
    the cache can pull again (a ROOT rule covers every namespace)."""
    return any(rule in (ROOT, namespace) or namespace.startswith(rule + "/") for rule in rule_prefixes)


def uncached(settings: ExpirySettings, rule_prefixes: list[str]) -> list[str]:
    """The namespaces the settings sweep that no pull-through cache rule covers."""
    namespaces = settings.root_prefixes if settings.prefix == ROOT else (settings.prefix,)
    return [namespace for namespace in namespaces if not covered_by_a_cache(namespace, rule_prefixes)]


def nearest_rules(namespace: str, rule_prefixes: list[str]) -> list[str]:
    """The rule prefixes most like the namespace, for a Reason that points at the likely one."""
    return difflib.get_close_matches(namespace, rule_prefixes, n=3, cutoff=0.0)


def protected_namespaces(ledger: Ledger, settings: ExpirySettings, stack_id: str) -> tuple[str, ...]:
    """Namespaces nested in the sweep's that another stack's resource claims (its own cache rule, its own
    creation template): their repositories are that resource's business, never this sweep's."""
    swept = settings.namespaces
    nested = set()
    for thing, owner in ledger.claims(*PROTECTING_KINDS):
        if owner.stack_id != stack_id and any(thing.name.startswith(prefix + "/") for prefix in swept):
            nested.add(thing.name)
    return tuple(sorted(nested))


# The scheduled invocation


def sweep_event(schedule: str, settings: ExpirySettings, stack_id: str, logical_id: str) -> dict[str, Any]:
    """The event a schedule invokes the provider with: the namespace settings, and whose schedule it is."""
    return {
        SWEEP_KEY: {
            "schedule": schedule,
            "settings": settings.to_input(),
            "stack_id": stack_id,
            "logical_id": logical_id,
        }
    }


def is_sweep(event: dict[str, Any]) -> bool:
    return isinstance(event.get(SWEEP_KEY), dict)


def run(event: dict[str, Any], context: LambdaContext) -> SweepTotals | None:
    """Carry out (part of) a scheduled sweep. Nothing answers CloudFormation: there is no request. When time runs
    short, the rest goes to a follow-up invocation with the totals so far; the last one logs and counts the sweep.
    Returns the totals when the sweep finished in this invocation.

    The settings come from the resource's record in the ledger, read again at each step: a sweep stops when its
    resource was deleted (a schedule left behind removes itself), or moved to another namespace, and a namespace
    no pull-through cache rule covers any more is skipped (metric SweepSkippedNoCacheRule)."""
    job = event[SWEEP_KEY]
    totals = SweepTotals.from_saved(job.get("totals"))
    totals.started_at = totals.started_at or datetime.now(UTC).isoformat()
    progress = Progress.from_event(event) or Progress()
    deadline = Deadline.from_context(context)
    ecr = EcrGateway(deadline)
    sdk.require_image_expiry_api(ecr.client)
    ledger = Ledger(deadline)
    watch = _Watch(ledger, Owner(job.get("stack_id", ""), job.get("logical_id", ""), ""), job)
    settings = watch.start()
    if settings is None:
        _stop_orphan(job["schedule"], ledger, deadline)
        return None
    gone = uncached(settings, ecr.rule_prefixes())
    if gone:
        structured_logger.warning(
            "Namespaces skipped: no pull-through cache rule covers them any more, so their images could not be "
            "pulled again",
            extra={"schedule": job["schedule"], "namespaces": gone},
        )
        _count("SweepSkippedNoCacheRule", len(gone))
        settings = replace(settings, root_prefixes=tuple(p for p in settings.root_prefixes if p not in gone))
        if settings.prefix in gone or (settings.prefix == ROOT and not settings.root_prefixes):
            return None
    protected = protected_namespaces(ledger, settings, job.get("stack_id", ""))
    try:
        in_use = images_in_use(settings, deadline, context.invoked_function_arn)
    except WorkloadsUnknown as unknown:
        structured_logger.error(
            "Sweep skipped: the images in use could not be read, and none may be expired on a guess",
            extra={"schedule": job["schedule"], "reason": str(unknown)},
        )
        _count("SweepSkippedImagesInUseUnknown")
        return None
    try:
        progress = sweep(
            ecr,
            settings,
            datetime.fromisoformat(totals.started_at),
            progress,
            totals,
            protected=protected,
            confirm=watch.confirm,
            in_use=in_use,
        )
    except ContinueLater as pending:
        if pending.progress.invocation < continuation.MAX_INVOCATIONS:
            structured_logger.info("Sweep continues in a follow-up invocation", extra={"progress": pending.progress})
            follow_up = {**event, SWEEP_KEY: job | {"totals": totals.to_saved()}}
            continuation.hand_off(follow_up, context.invoked_function_arn, pending.progress)
            _count("SweepContinued")
            return None
        structured_logger.error("Sweep stopped: it used every invocation it may", extra={"progress": pending.progress})
        progress = pending.progress
    except Superseded as stopped:
        structured_logger.warning("Sweep stopped", extra={"schedule": job["schedule"], "reason": str(stopped)})
        _count("SweepStopped")
    _report(job["schedule"], watch.settings or settings, totals, progress)
    return totals


class _Watch:
    """The sweep's resource, as its record in the ledger says at each step (one read)."""

    def __init__(self, ledger: Ledger, owner: Owner, job: dict[str, Any]) -> None:
        self.ledger = ledger
        self.owner = owner
        self.job = job
        self.settings: ExpirySettings | None = None

    def start(self) -> ExpirySettings | None:
        """The settings to sweep with; None when the resource is gone (its schedule was left behind)."""
        try:
            self.settings = self._read()
        except Superseded as gone:
            structured_logger.warning("No sweep", extra={"schedule": self.job["schedule"], "reason": str(gone)})
            return None
        return self.settings

    def confirm(self) -> ExpirySettings:
        """The settings now; raises Superseded when the resource was deleted or moved to another namespace."""
        settings = self._read()
        if self.settings is not None and (settings.prefix, settings.root_prefixes) != (
            self.settings.prefix,
            self.settings.root_prefixes,
        ):
            raise Superseded("The resource now sweeps another namespace: the next scheduled sweep will")
        self.settings = settings
        return settings

    def _read(self) -> ExpirySettings:
        record = self.ledger.resource(self.owner)
        if record is None:  # made before the ledger recorded resources: its schedule's claim says whose it is
            holder = self.ledger.owner_of(_schedule_thing(self.job["schedule"]))
            if holder is None or not holder.is_same_resource(self.owner):
                raise Superseded("Nobody owns this schedule any more")
            return ExpirySettings.from_input(self.job["settings"])
        if record.deleted:
            raise Superseded("The schedule's resource was deleted")
        saved = json.loads(record.settings) if record.settings else self.job["settings"]
        return ExpirySettings.from_input(saved)


def images_in_use(settings: ExpirySettings, deadline: Deadline, function_arn: str) -> ImagesInUse | None:
    """The images Lambda functions and ECS services and tasks of this function's account and Region use; None when
    ProtectImagesInUse is off. Raises WorkloadsUnknown when they could not all be read."""
    if not settings.protect_images_in_use:
        return None
    parts = function_arn.split(":")  # arn:<partition>:lambda:<region>:<account>:function:<name>
    region, account = (parts[3], parts[4]) if len(parts) > 4 else ("", "")
    keep = deadline.remaining() / 2  # at least half the invocation's time is the sweep's
    return WorkloadsGateway(deadline, account, region or None, keep_seconds=keep).images_in_use()


def _stop_orphan(schedule: str, ledger: Ledger, deadline: Deadline) -> None:
    """A schedule whose resource is gone keeps invoking the sweep: delete it, when nobody claims it (a cancelled
    Create made it after its rollback's Delete had run)."""
    if ledger.owner_of(_schedule_thing(schedule)) is not None:
        return
    SchedulerGateway(deadline).delete(schedule)
    structured_logger.warning("Deleted a schedule nobody owns", extra={"schedule": schedule})
    _count("SweepScheduleRemoved")


def _schedule_thing(name: str) -> Thing:
    return Thing(SCHEDULE_KIND, name)


def _count(name: str, value: int = 1) -> None:
    metrics.add_dimension(name="ResourceType", value=METRIC_DIMENSION)
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _report(schedule: str, settings: ExpirySettings, totals: SweepTotals, progress: Progress) -> None:
    """One structured log line and the sweep's metrics (EMF)."""
    counts = {
        "RepositoriesScanned": totals.repositories_scanned,
        "ImagesExpired": totals.images_expired,
        "BytesFreed": totals.bytes_freed,
        "RepositoriesDeleted": totals.repositories_deleted,
        "ImagesProtectedInUse": totals.images_protected,
        "ThrottledCalls": progress.throttled,  # all the sweep's invocations' (work_through counts and carries them)
        "InvocationsUsed": progress.invocation,
    }
    structured_logger.info(
        "Dry run: images that would expire" if settings.dry_run else "Image expiry sweep finished",
        extra={
            "schedule": schedule,
            "repository_prefix": settings.prefix,
            "dry_run": settings.dry_run,
            **counts,
            "FailedDeletions": totals.failed_deletions,
            "images": totals.listed,  # at most LISTED_IMAGES
            "failures": totals.failures,
            "protected": totals.protected,  # at most LISTED_IMAGES, each with who uses it
        },
    )
    metrics.add_dimension(name="ResourceType", value=METRIC_DIMENSION)
    for name, value in counts.items():
        unit = MetricUnit.Bytes if name == "BytesFreed" else MetricUnit.Count
        metrics.add_metric(name=f"Sweep{name}", unit=unit, value=value)
