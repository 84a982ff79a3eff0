"""Settings on every repository of a cache namespace, existing and future: what Custom::CachedRepositorySettings
does, and Custom::CacheLifecyclePolicy with its one setting.

ECR creates a cached repository on its first pull, outside any stack; a repository creation template reaches only
repositories created after it. So the resource owns the namespace's creation template (claimed in the ownership
ledger before it is made) and brings the repositories already there to the same settings (repository_settings.py),
in batches, continuing in follow-up invocations (namespace.py).

ROOT covers every repository of the registry, and a repository ECR cached cannot be told from one an application
pushes to: a ROOT resource owns only the creation template unless ExistingRepositoryPrefixes names the prefixes
whose existing repositories get the settings too.

Replacing one resource by another in the same stack (moving from Custom::CacheLifecyclePolicy to
Custom::CachedRepositorySettings): CloudFormation creates the new resource, then deletes the old one. The new one,
told so by TakeOverFrom, takes the template's claim from the old one (recording what the old one had in place), so
the two never fight: the old one's Delete finds its claim taken over and leaves everything to its successor; if the
stack update rolls back instead, the new one's Delete puts the old template back and hands the claim back.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.ecr import DEFAULT_TAG_MUTABILITY, CreationTemplate
from ecr_cache_provider.failures import DeadlineApproaching, EcrError, InvalidProperties, ResourceFailure
from ecr_cache_provider.namespace import HAND_OFF_SECONDS, Outcome, work_through
from ecr_cache_provider.ownership import OwnedByAnother, Owner, TakeOver, Thing
from ecr_cache_provider.prefix import PREFIX_PATTERN, ROOT, covers, is_prefix
from ecr_cache_provider.repository_settings import Settings, bring_to, parsed
from ecr_cache_provider.resource_type import RequestContext, Result, leaves_behind

logger = logging.getLogger(__name__)

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


def put_in_place(wanted: NamespaceSettings, previous: Settings | None, context: RequestContext, purpose: str) -> Done:
    """The template (in the first invocation only), then the existing repositories, continuing where an earlier
    invocation of this request stopped. `previous`: the settings this resource had in place before (an Update);
    `purpose` opens the template's description."""
    progress = context.request.progress
    if progress is None:
        context.require_managed(wanted.namespaces)
        _claim_template(wanted, context, purpose)
        progress = Progress()
    # The template and some repositories may carry the settings from here on: a failure names the prefix.
    with leaves_behind(wanted.prefix):
        if previous is None and wanted.take_over_from:
            previous = _predecessor_settings(wanted.prefix, context)
        if wanted.existing_scope:
            progress = _backfill(wanted.prefix, wanted, previous, progress, context)
        elif wanted.apply_to_existing:
            logger.info(
                "RepositoryPrefix ROOT: existing repositories left alone, since a cached repository cannot be told "
                "from one applications push to; name the prefixes to backfill in ExistingRepositoryPrefixes"
            )
        return Done(progress, _other_encryption(wanted, progress, context))


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
    return Result(physical_id=wanted.prefix, data=data)


def remove(prefix: str, ours: Settings | None, context: RequestContext) -> None:
    """Delete the template this resource made, then remove its settings from every repository of the namespace
    that still carries them. Settings someone changed since are left alone; so is everything, when a successor
    took this resource's place."""
    request = context.request
    if not is_prefix(prefix):
        logger.info("Nothing to delete: the physical id names no namespace this resource managed")
        return
    thing = _template(prefix)
    take_over = context.ledger.take_over_of(thing)
    if take_over is not None and take_over.predecessor.is_same_resource(request.owner):
        logger.info("Replaced by %s: the template and repositories are left to it", take_over.successor.logical_id)
        context.ledger.settle_take_over(thing, take_over)
        return
    if take_over is not None and not take_over.settled and take_over.successor.is_same_resource(request.owner):
        _hand_back(prefix, take_over, ours, context)
        return
    progress = request.progress
    if progress is None:
        _release_template(prefix, context)
        progress = Progress()
    if ours is None:
        logger.warning("The settings this resource applied cannot be read; repositories are left as they are")
        return

    def remove_if_ours(repository: str) -> Outcome:
        return bring_to(context.ecr, repository, None, ours, overwrite=False)

    work_through(context.ecr, prefix, remove_if_ours, progress, physical_id=prefix)


# How each part is done


def _claim_template(wanted: NamespaceSettings, context: RequestContext, purpose: str) -> None:
    """Own the repository creation template for the prefix, carrying the settings; none when not wanted.
    The ledger's claim proves ownership; a template another resource owns, or nobody does, is never changed."""
    request, ecr, ledger = context.request, context.ecr, context.ledger
    thing = _template(wanted.prefix)
    existing = ecr.find_template(wanted.prefix)
    template = wanted.settings.template(wanted.prefix, _owner_description(context, purpose))
    predecessor = _predecessor_holding(thing, existing, wanted.take_over_from, context)
    if predecessor is not None:
        before = existing or CreationTemplate(prefix=wanted.prefix)
        ledger.take_over(thing, predecessor, request.owner, _snapshot(before))
        try:
            _write_template(template, existing, context)
        except ResourceFailure:
            take_over = ledger.take_over_of(thing)
            if take_over is not None:
                ledger.hand_back(thing, take_over)  # nothing changed: the predecessor keeps what it had
            raise
        return
    holder = _holder(thing, existing, context)
    ours = holder is not None and holder.is_same_resource(request.owner)
    if not ours and not wanted.apply_to_new:
        return  # not ours, and not needed: left exactly as it is
    if holder is not None and not ours:
        raise OwnedByAnother(thing, holder)
    if existing and not ours:
        raise ResourceFailure(
            f"A repository creation template for prefix {wanted.prefix!r} already exists and no stack owns it; "
            "delete it, or set ApplyToNewRepositories to false"
        )
    if not wanted.apply_to_new:
        _release_template(wanted.prefix, context)
        return
    held_before = ledger.claim(thing, request.owner)  # raises OwnedByAnother, naming the owner
    try:
        if held_before is None and wanted.take_over_from:
            ledger.name_predecessor(thing, request.owner, wanted.take_over_from)  # it may own repositories' settings
        _write_template(template, existing, context)
    except ResourceFailure:
        if held_before is None and not existing:
            ledger.release(thing, request.owner)  # nothing was made: the prefix is free again
        raise


def _write_template(template: CreationTemplate, existing: CreationTemplate | None, context: RequestContext) -> None:
    if existing:
        context.ecr.update_template(template, existing)
    else:
        context.ecr.create_template(template)


def _predecessor_holding(
    thing: Thing, existing: CreationTemplate | None, predecessor: str, context: RequestContext
) -> Owner | None:
    """The resource this one replaces, when it holds the template (see _holder); None when this resource
    replaces none."""
    if not predecessor:
        return None
    holder = _holder(thing, existing, context, predecessor)
    named = Owner(context.request.stack_id, predecessor, "")
    return holder if holder is not None and holder.is_same_resource(named) else None


def _predecessor_settings(prefix: str, context: RequestContext) -> Settings | None:
    """What the replaced resource had put in place, as the settings its template carried: repositories carrying
    them are this resource's now."""
    take_over = context.ledger.take_over_of(_template(prefix))
    if take_over is None or not take_over.successor.is_same_resource(context.request.owner) or not take_over.snapshot:
        return None  # none, or one recorded on a free template (Ledger.name_predecessor): nothing was in place
    return _settings_of(_restored(take_over.snapshot))


def _hand_back(prefix: str, take_over: TakeOver, ours: Settings | None, context: RequestContext) -> None:
    """The stack update that replaced the predecessor rolled back: its template back in place, repositories back
    to its settings (those still carrying ours), and the claim back to it, last, so that a follow-up invocation
    still finds the take-over."""
    before = _restored(take_over.snapshot)
    progress = context.request.progress
    if progress is None:
        if not before.applied_for:  # there was no template before the take-over
            context.ecr.delete_template(prefix)
        elif current := context.ecr.find_template(prefix):
            context.ecr.update_template(before, current)
        progress = Progress()
    if ours is not None:
        predecessor = _settings_of(before)

        def give_back(repository: str) -> Outcome:
            return bring_to(context.ecr, repository, predecessor, ours, overwrite=False)

        work_through(context.ecr, prefix, give_back, progress, physical_id=prefix)
    context.ledger.hand_back(_template(prefix), take_over)
    logger.info("Template and claim handed back to %s", take_over.predecessor.logical_id)


def _release_template(prefix: str, context: RequestContext) -> None:
    """Delete the template, then its claim, when this resource owns them; anything else is left as it is."""
    thing = _template(prefix)
    existing = context.ecr.find_template(prefix)
    holder = _holder(thing, existing, context)
    if holder is None or not holder.is_same_resource(context.request.owner):
        if existing:
            logger.warning("Creation template left in place: not this resource's", extra={"prefix": prefix})
        return
    if existing:
        context.ecr.delete_template(prefix)
    context.ledger.release(thing, context.request.owner)


def _holder(
    thing: Thing, existing: CreationTemplate | None, context: RequestContext, logical_id: str = ""
) -> Owner | None:
    """Who owns the template: the claim in the ledger; for a template made before the ledger existed, the resource
    `logical_id` of this stack (this resource by default) if the owner token it wrote into the description says so
    (the claim is recorded now)."""
    request = context.request
    candidate = Owner(request.stack_id, logical_id, "") if logical_id else request.owner
    holder = context.ledger.owner_of(thing)
    if (
        holder is None
        and existing
        and existing.description.endswith(_owner_token(request.stack_id, candidate.logical_id))
    ):
        context.ledger.claim(thing, candidate)
        return candidate
    return holder


def _backfill(
    prefix: str, wanted: NamespaceSettings, previous: Settings | None, progress: Progress, context: RequestContext
) -> Progress:
    def apply(repository: str) -> Outcome:
        return bring_to(context.ecr, repository, wanted.settings, previous, wanted.overwrite)

    return work_through(context.ecr, prefix, apply, progress, physical_id=prefix, only_under=wanted.existing_scope)


def _other_encryption(wanted: NamespaceSettings, progress: Progress, context: RequestContext) -> int | None:
    """How many existing repositories of the namespace are encrypted otherwise than the template will encrypt new
    ones (ECR cannot change an existing repository's encryption)."""
    if wanted.settings.encryption is None:
        return None
    try:
        repositories = context.ecr.repositories(keep_seconds=HAND_OFF_SECONDS)
    except (EcrError, DeadlineApproaching) as error:
        if isinstance(error, EcrError) and not error.transient:
            raise
        raise ContinueLater(progress, wanted.prefix) from error  # the backfill is done: the next one only counts
    return sum(
        1 for repository in repositories
        if covers(wanted.prefix, repository.name) and wanted.settings.encryption_differs(repository)
    )  # fmt: skip


def _template(prefix: str) -> Thing:
    return Thing("repository creation template", prefix)


def _owner_description(context: RequestContext, purpose: str) -> str:
    """The template's description says which resource owns it, for people. The ledger proves it; the token at its
    end was the proof before the ledger existed, and still lets such a template be recognised and claimed."""
    request = context.request
    text = f"{purpose} for cached repositories, managed by {request.owner}"
    token = _owner_token(request.stack_id, request.logical_id)
    return f"{text[: 256 - len(token) - 1]} {token}"


def _owner_token(stack_id: str, logical_id: str) -> str:
    digest = hashlib.sha256(f"{stack_id}/{logical_id}".encode()).hexdigest()[:16]
    return f"[owner:{digest}]"


def _snapshot(template: CreationTemplate) -> str:
    return json.dumps(asdict(template), separators=(",", ":"))


def _restored(snapshot: str) -> CreationTemplate:
    values: dict[str, Any] = json.loads(snapshot)
    mutability, filters = values["tag_mutability"]
    return CreationTemplate(
        prefix=values["prefix"],
        description=values["description"],
        lifecycle_policy=values["lifecycle_policy"],
        repository_policy=values["repository_policy"],
        resource_tags=tuple((key, value) for key, value in values["resource_tags"]),
        tag_mutability=(mutability, tuple(filters)),
        encryption=tuple((key, value) for key, value in values["encryption"]),
        custom_role_arn=values["custom_role_arn"],
        applied_for=tuple(values["applied_for"]),
    )


def _settings_of(template: CreationTemplate) -> Settings:
    """The settings a template gives new repositories, as this provider compares them."""
    return Settings(
        lifecycle_policy=parsed(template.lifecycle_policy) if template.lifecycle_policy else None,
        repository_policy=parsed(template.repository_policy) if template.repository_policy else None,
        resource_tags=template.resource_tags or None,
        tag_mutability=template.tag_mutability if template.tag_mutability != DEFAULT_TAG_MUTABILITY else None,
    )
