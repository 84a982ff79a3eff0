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
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from ecr_cache_provider.aws import stacks
from ecr_cache_provider.aws.ecr import DEFAULT_TAG_MUTABILITY, CreationTemplate
from ecr_cache_provider.aws.ledger import (
    SETTINGS_KIND,
    OwnedByAnother,
    Owner,
    SettingsRecord,
    TakeOver,
    Thing,
    settings_record,
)
from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.contract import RequestContext, Result, leaves_behind
from ecr_cache_provider.engine.batches import HAND_OFF_SECONDS, work_through
from ecr_cache_provider.engine.recorded_settings import RecordedBatch, Settings, Target, parsed
from ecr_cache_provider.failures import DeadlineApproaching, EcrError, InvalidProperties, ResourceFailure, Superseded
from ecr_cache_provider.grammar.prefix import PREFIX_PATTERN, ROOT, covers, is_prefix

logger = logging.getLogger(__name__)

TEMPLATE_KIND = "repository creation template"
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


# The stages of a request's work on repositories, as its Progress records them across invocations.
BACKFILL = ""  # Create and Update: the repositories in scope
TIDY = "tidy"  # Update: records left outside the scope, or in another namespace (a rename that never answered)
LEGACY = ""  # Delete of a resource older than the ledger's records: its namespace, by value
DRAIN = "drain"  # Delete: every record of the namespace


def put_in_place(
    wanted: NamespaceSettings, before: NamespaceSettings | None, context: RequestContext, purpose: str
) -> Done:
    """The template (in the first invocation only), then the existing repositories, continuing where an earlier
    invocation of this request stopped. `before`: what the resource's properties were (an Update), or None;
    `purpose` opens the template's description.

    An Update that moves the resource to a namespace it never had (a rename) and fails undoes what it made there
    before it answers: CloudFormation then rolls back to the old physical id, and would never delete the new one."""
    request = context.request
    progress = request.progress or Progress()
    renaming = request.request_type == "Update" and not context.answered_before(wanted.prefix, is_prefix)
    if request.progress is None:
        _require_managed(wanted, context)
    try:
        if request.progress is None:
            _claim_template(wanted, context, purpose)
        # The template and some repositories may carry the settings from here on: a failure names the prefix.
        with leaves_behind(wanted.prefix):
            if progress.stage == BACKFILL:
                if wanted.existing_scope:
                    progress = _backfill(wanted, before, progress, context)
                elif wanted.apply_to_existing:
                    logger.info(
                        "RepositoryPrefix ROOT: existing repositories left alone, since a cached repository cannot "
                        "be told from one applications push to; name the prefixes to backfill in "
                        "ExistingRepositoryPrefixes"
                    )
                progress = replace(progress, stage=TIDY, cursor="", waiting=())
            if before is not None and (before.prefix, before.existing_scope) != (wanted.prefix, wanted.existing_scope):
                progress = _tidy(wanted, before, progress, context)
            return Done(progress, _other_encryption(wanted, progress, context))
    except ResourceFailure as failure:
        if renaming and not isinstance(failure, Superseded):
            _undo_rename(wanted.prefix, context)
        raise


def _require_managed(wanted: NamespaceSettings, context: RequestContext) -> None:
    """The namespaces must be among those the provider manages, except when an Update rolls the resource back to
    the namespace it had (its physical id): CloudFormation rolls a failed update back from the dependents up, so the
    provider function still has the failed update's environment then, while its role still holds the old namespace's
    permissions (what a replaced policy grants goes only in the cleanup)."""
    try:
        context.require_managed(wanted.namespaces)
    except InvalidProperties:
        request = context.request
        back = request.request_type == "Update" and wanted.prefix == request.physical_id
        if not (back and stacks.is_rolling_back(context.stack_status)):
            raise
        logger.info(
            "Rolling back to a namespace the provider's environment no longer names", extra={"prefix": wanted.prefix}
        )


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


def remove(prefix: str, properties: NamespaceSettings | None, context: RequestContext) -> None:
    """Delete the template this resource made, then put back what it changed on repositories (the ledger's records
    say which, and what was there before): only where a repository still carries the value it set. Everything is
    left as it is when a successor took this resource's place.

    A physical id the provider never answered is CloudFormation's own, sent when it rolls back a Create it
    cancelled (a sibling failed first) or stopped waiting for (ServiceTimeout): whatever that Create made, found by
    owner in the ledger, is removed. `properties`: the resource's, when they can still be read."""
    request = context.request
    if not context.answered_before(prefix, is_prefix):
        _remove_everything(context)
        return
    thing = _template(prefix)
    take_over = context.ledger.take_over_of(thing)
    if take_over is not None and take_over.predecessor.is_same_resource(request.owner):
        logger.info("Replaced by %s: the template and repositories are left to it", take_over.successor.logical_id)
        if request.progress is None:
            context.ledger.settle_take_over(thing, take_over)
        _drain(context, request.progress or Progress(), prefix, Target({}), forget_only=True)
        return
    if take_over is not None and not take_over.settled and take_over.successor.is_same_resource(request.owner):
        _hand_back(prefix, take_over, context)
        return
    progress = request.progress
    if progress is None:
        _release_template(prefix, context)
        progress = Progress(stage=LEGACY if _legacy(context) else DRAIN)
    if progress.stage == LEGACY:
        ours = properties.settings.values if properties is not None else {}
        scope = properties.existing_scope if properties is not None else ()
        if scope and ours:  # what this resource set before the ledger recorded it, by value, within its scope
            batch = _recorded_batch(context, prefix, Target({}, legacy=ours))
            progress = work_through(context.ecr, prefix, batch, progress, physical_id=prefix, only_under=scope)
        progress = replace(progress, stage=DRAIN, cursor="", waiting=())
    _drain(context, progress, prefix, Target({}))


# Repositories: the backfill, and putting back what the ledger records


def _backfill(
    wanted: NamespaceSettings, before: NamespaceSettings | None, progress: Progress, context: RequestContext
) -> Progress:
    predecessor, inherited_values = _predecessor(wanted, context)
    legacy = {**(before.settings.values if before is not None and _legacy(context) else {}), **inherited_values}
    target = Target(wanted.settings.values, wanted.overwrite, legacy=legacy)
    batch = _recorded_batch(context, wanted.prefix, target, predecessor)
    return work_through(
        context.ecr, wanted.prefix, batch, progress, physical_id=wanted.prefix, only_under=wanted.existing_scope
    )


def _tidy(
    wanted: NamespaceSettings, before: NamespaceSettings, progress: Progress, context: RequestContext
) -> Progress:
    """After an Update that narrowed the scope, or that rolls back a rename CloudFormation never saw answered:
    put back what the resource changed outside its scope or namespace, and delete the template it made for the
    other namespace. (The physical id is the prefix, so old properties naming another prefix than it are those of
    an Update that never answered: cancelled, timed out, or failed without undoing everything.)"""
    if progress.cursor == "" and before.prefix != wanted.prefix and is_prefix(before.prefix):
        _release_template(before.prefix, context)

    def kept(record: SettingsRecord) -> bool:
        in_scope = any(covers(scope, record.repository) for scope in wanted.existing_scope)
        return record.namespace == wanted.prefix and in_scope

    return _drain(context, progress, ROOT, Target({}), keep=kept)


def _drain(
    context: RequestContext,
    progress: Progress,
    namespace: str,
    target: Target,
    *,
    keep: Callable[[SettingsRecord], bool] | None = None,
    predecessor: Owner | None = None,
    forget_only: bool = False,
) -> Progress:
    """Put back what this resource's records in `namespace` (ROOT: any) say it changed, where the repositories
    still carry its values, and remove the records; with `keep`, only the records it does not keep; with
    `forget_only`, remove the records and change nothing (a successor took the repositories over)."""
    records = [
        settings_record(item)
        for item in context.owned_items(SETTINGS_KIND)
        if namespace in (ROOT, item.get("Namespace", {}).get("S"))
    ]
    names = [record.repository for record in records if keep is None or not keep(record)]
    if forget_only:
        context.ledger.drop_settings_records(context.request.owner, names)
        return progress
    batch = _recorded_batch(context, namespace, target, predecessor)
    return work_through(
        context.ecr, ROOT, batch, progress, physical_id=context.request.physical_id, listed=lambda: names
    )


def _remove_everything(context: RequestContext) -> None:
    """Whatever this resource holds in the ledger: every template it claimed, and every repository record."""
    if context.request.progress is None:
        for item in context.owned_items(TEMPLATE_KIND):
            _release_template(item["Name"]["S"], context)
        logger.info("Removed what the ledger records for a resource CloudFormation never saw answered")
    _drain(context, context.request.progress or Progress(), ROOT, Target({}))


def _undo_rename(prefix: str, context: RequestContext) -> None:
    """A failed Update that moved the resource to a namespace it never had: delete the template it made there and
    put back what it changed, as far as the invocation's time allows (what is left, the rollback's Update finds:
    its old properties name this namespace)."""
    try:
        take_over = context.ledger.take_over_of(_template(prefix))
        if take_over is None:
            _release_template(prefix, context)
        _drain(context, Progress(), prefix, Target({}))
    except (ResourceFailure, ContinueLater) as error:
        logger.warning("Could not undo everything the failed Update made", extra={"error": str(error)})


def _recorded_batch(
    context: RequestContext, namespace: str, target: Target, predecessor: Owner | None = None
) -> RecordedBatch:
    return RecordedBatch(
        context.ecr,
        context.ledger,
        context.request.owner,
        namespace,
        target,
        confirm=context.ensure_current,
        predecessor=predecessor,
    )


def _legacy(context: RequestContext) -> bool:
    """Whether the resource is older than the ledger's repository records (its record does not go back to its
    Create): what it set before then is recognised by value, as the provider then did."""
    return context.record is None or not context.record.issued_complete


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
    if not existing:  # a newer request that came in meanwhile may have looked for the template before it existed

        def unmake() -> None:
            context.ecr.delete_template(wanted.prefix)
            ledger.release(thing, request.owner)

        context.still_current(unmake)


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


def _predecessor(wanted: NamespaceSettings, context: RequestContext) -> tuple[Owner | None, dict[str, Any]]:
    """The resource this one took the namespace over from (TakeOverFrom), whose records of repositories this one
    inherits; and, when the predecessor is older than the ledger's records, the settings its template carried (what
    it had put in place, recognised by value as it then was)."""
    take_over = context.ledger.take_over_of(_template(wanted.prefix))
    if take_over is None or not take_over.successor.is_same_resource(context.request.owner):
        return None, {}
    predecessor = take_over.predecessor
    if not take_over.snapshot:
        return predecessor, {}  # recorded on a free template (Ledger.name_predecessor): no template was in place
    record = context.ledger.resource(predecessor)
    legacy = record is None or not record.issued_complete
    return predecessor, (_settings_of(_restored(take_over.snapshot)).values if legacy else {})


def _hand_back(prefix: str, take_over: TakeOver, context: RequestContext) -> None:
    """The stack update that replaced the predecessor rolled back: its template back in place, repositories back
    to its values (where they still carry ours), and the claim back to it, last, so that a follow-up invocation
    still finds the take-over."""
    before = _restored(take_over.snapshot) if take_over.snapshot else CreationTemplate(prefix=prefix)
    progress = context.request.progress
    if progress is None:
        if not before.applied_for:  # there was no template before the take-over
            context.ecr.delete_template(prefix)
        elif current := context.ecr.find_template(prefix):
            context.ecr.update_template(before, current)
        progress = Progress(stage=DRAIN)
    target = Target({}, restore=_settings_of(before).values)
    _drain(context, progress, prefix, target, predecessor=take_over.predecessor)
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
    return Thing(TEMPLATE_KIND, prefix)


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
