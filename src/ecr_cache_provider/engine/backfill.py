"""Settings on every repository of a cache namespace, existing and future: what Custom::CachedRepositorySettings
does, and Custom::CacheLifecyclePolicy with its one setting.

ECR creates a cached repository on its first pull, outside any stack; a repository creation template reaches only
repositories created after it. So the resource owns the namespace's creation template (claimed in the ownership
ledger before it is made) and brings the repositories already there to the same settings (recorded_settings.py),
in batches, continuing in follow-up invocations (batches.py).

ROOT covers every repository of the registry, and a repository ECR cached cannot be told from one an application
pushes to: a ROOT resource owns only the creation template unless ExistingRepositoryPrefixes names the prefixes
whose existing repositories get the settings too.

The template and its claim: template_claim.py; a resource replacing another (TakeOverFrom): take_over.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from ecr_cache_provider.aws import stacks
from ecr_cache_provider.aws.ledger import (
    SETTINGS_KIND,
    OwnedByAnother,
    Owner,
    SettingsRecord,
    TakeOver,
    settings_record,
)
from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.contract import RequestContext, leaves_behind
from ecr_cache_provider.engine.batches import work_through
from ecr_cache_provider.engine.encryption_count import other_encryption
from ecr_cache_provider.engine.owner_token import owner_description
from ecr_cache_provider.engine.recorded_settings import RecordedBatch, Target
from ecr_cache_provider.engine.settings_request import Done, NamespaceSettings
from ecr_cache_provider.engine.take_over import (
    inherited,
    predecessor_holding,
    put_back_template,
    settings_of,
    take_over_from,
    template_before,
)
from ecr_cache_provider.engine.template_claim import TEMPLATE_KIND, TemplateClaim
from ecr_cache_provider.failures import InvalidProperties, ResourceFailure, Superseded
from ecr_cache_provider.grammar.prefix import ROOT, covers, is_prefix

logger = logging.getLogger(__name__)

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
    claim = TemplateClaim(context, wanted.prefix)
    if request.progress is None:
        _require_managed(wanted, context)
    try:
        if request.progress is None:
            _claim_template(wanted, claim, purpose)
        # The template and some repositories may carry the settings from here on: a failure names the prefix.
        with leaves_behind(wanted.prefix):
            if progress.stage == BACKFILL:
                if wanted.existing_scope:
                    progress = _backfill(wanted, before, progress, claim)
                elif wanted.apply_to_existing:
                    logger.info(
                        "RepositoryPrefix ROOT: existing repositories left alone, since a cached repository cannot "
                        "be told from one applications push to; name the prefixes to backfill in "
                        "ExistingRepositoryPrefixes"
                    )
                progress = replace(progress, stage=TIDY, cursor="", waiting=())
            if before is not None and (before.prefix, before.existing_scope) != (wanted.prefix, wanted.existing_scope):
                progress = _tidy(wanted, before, progress, context)
            return Done(progress, other_encryption(wanted.prefix, wanted.settings, progress, context))
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
    claim = TemplateClaim(context, prefix)
    take_over = claim.take_over
    if take_over is not None and take_over.predecessor.is_same_resource(request.owner):
        logger.info("Replaced by %s: the template and repositories are left to it", take_over.successor.logical_id)
        if request.progress is None:
            context.ledger.settle_take_over(claim.thing, take_over)
        _drain(context, request.progress or Progress(), prefix, Target({}), forget_only=True)
        return
    if take_over is not None and not take_over.settled and take_over.successor.is_same_resource(request.owner):
        _hand_back(claim, take_over)
        return
    progress = request.progress
    if progress is None:
        claim.release()
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
    wanted: NamespaceSettings, before: NamespaceSettings | None, progress: Progress, claim: TemplateClaim
) -> Progress:
    context = claim.context
    predecessor, inherited_values = inherited(claim)
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
        TemplateClaim(context, before.prefix).release()

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
            TemplateClaim(context, item["Name"]["S"]).release()
        logger.info("Removed what the ledger records for a resource CloudFormation never saw answered")
    _drain(context, context.request.progress or Progress(), ROOT, Target({}))


def _undo_rename(prefix: str, context: RequestContext) -> None:
    """A failed Update that moved the resource to a namespace it never had: delete the template it made there and
    put back what it changed, as far as the invocation's time allows (what is left, the rollback's Update finds:
    its old properties name this namespace)."""
    try:
        claim = TemplateClaim(context, prefix)
        if claim.take_over is None:
            claim.release()
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


# The template


def _claim_template(wanted: NamespaceSettings, claim: TemplateClaim, purpose: str) -> None:
    """Own the repository creation template for the prefix, carrying the settings; none when not wanted.
    The ledger's claim proves ownership; a template another resource owns, or nobody does, is never changed."""
    context = claim.context
    request, ledger = context.request, context.ledger
    existing = claim.existing
    template = wanted.settings.template(wanted.prefix, owner_description(request, purpose))
    predecessor = predecessor_holding(claim, wanted.take_over_from)
    if predecessor is not None:
        take_over_from(claim, predecessor, template)
        return
    holder = claim.holder()
    ours = holder is not None and holder.is_same_resource(request.owner)
    if not ours and not wanted.apply_to_new:
        return  # not ours, and not needed: left exactly as it is
    if holder is not None and not ours:
        raise OwnedByAnother(claim.thing, holder)
    if existing and not ours:
        raise ResourceFailure(
            f"A repository creation template for prefix {wanted.prefix!r} already exists and no stack owns it; "
            "delete it, or set ApplyToNewRepositories to false"
        )
    if not wanted.apply_to_new:
        claim.release()
        return
    held_before = ledger.claim(claim.thing, request.owner)  # raises OwnedByAnother, naming the owner
    claim.claim_changed()
    try:
        if held_before is None and wanted.take_over_from:
            # it may own repositories' settings
            ledger.name_predecessor(claim.thing, request.owner, wanted.take_over_from)
            claim.claim_changed()
        claim.write(template)
    except ResourceFailure:
        if held_before is None and not existing:
            ledger.release(claim.thing, request.owner)  # nothing was made: the prefix is free again
        raise
    if not existing:  # a newer request that came in meanwhile may have looked for the template before it existed

        def unmake() -> None:
            context.ecr.delete_template(wanted.prefix)
            ledger.release(claim.thing, request.owner)

        context.still_current(unmake)


def _hand_back(claim: TemplateClaim, take_over: TakeOver) -> None:
    """The stack update that replaced the predecessor rolled back: its template back in place, repositories back
    to its values (where they still carry ours), and the claim back to it, last, so that a follow-up invocation
    still finds the take-over."""
    context = claim.context
    progress = context.request.progress
    if progress is None:
        put_back_template(claim, take_over)
        progress = Progress(stage=DRAIN)
    restore = settings_of(template_before(claim.prefix, take_over)).values
    _drain(context, progress, claim.prefix, Target({}, restore=restore), predecessor=take_over.predecessor)
    context.ledger.hand_back(claim.thing, take_over)
    logger.info("Template and claim handed back to %s", take_over.predecessor.logical_id)
