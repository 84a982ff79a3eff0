"""Custom::CacheLifecyclePolicy: one lifecycle policy on every repository of a cache namespace, existing and future.

ECR creates a cached repository on its first pull, outside any stack; a repository creation template reaches only
repositories created after it. This resource does both: it owns a creation template for the prefix (future
repositories) and puts the policy on the repositories already there (existing ones).

Properties: RepositoryPrefix (required), LifecyclePolicyText (required; JSON text or an object),
ApplyToExistingRepositories (default true), ApplyToNewRepositories (default true), OverwriteExistingPolicies
(default false), ExistingRepositoryPrefixes (ROOT only; default none). The physical id is the prefix. Attributes:
RepositoryPrefix, RepositoriesUpdated, RepositoriesSkipped (as of the last Create or Update),
ExistingRepositoriesLeftAlone.

ROOT covers every repository of the registry, and a repository ECR cached cannot be told from one an application
pushes to: a ROOT resource owns only the creation template unless ExistingRepositoryPrefixes names the prefixes
whose existing repositories get the policy too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.ecr import CreationTemplate, EcrGateway
from ecr_cache_provider.failures import InvalidProperties, ResourceFailure, reason_for
from ecr_cache_provider.lifecycle_policy import policy_text, read_policy
from ecr_cache_provider.namespace import Outcome, work_through
from ecr_cache_provider.ownership import OwnedByAnother, Owner, Thing
from ecr_cache_provider.prefix import PREFIX_PATTERN, ROOT, is_prefix, without_trailing_slash
from ecr_cache_provider.properties import parse_properties
from ecr_cache_provider.resource_type import Request, RequestContext, Result

logger = logging.getLogger(__name__)

RESOURCE_TYPE = "Custom::CacheLifecyclePolicy"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["RepositoryPrefix", "LifecyclePolicyText"],
    "properties": {
        "RepositoryPrefix": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "pattern": PREFIX_PATTERN,
            "description": "a repository namespace such as docker-hub or team/cache, or ROOT",
        },
        "LifecyclePolicyText": {"type": ["string", "object"]},
        "ApplyToExistingRepositories": {"type": "boolean", "default": True},
        "ApplyToNewRepositories": {"type": "boolean", "default": True},
        "OverwriteExistingPolicies": {"type": "boolean", "default": False},
        "ExistingRepositoryPrefixes": {
            "type": "array",
            "default": [],
            "items": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": PREFIX_PATTERN},
            "description": "repository namespaces such as docker-hub or team/cache, or ROOT for every repository",
        },
    },
}


@dataclass(frozen=True)
class LifecycleProperties:
    prefix: str
    policy: dict[str, Any]
    apply_to_existing: bool
    apply_to_new: bool
    overwrite: bool
    existing_prefixes: tuple[str, ...] = ()

    @property
    def policy_text(self) -> str:
        return policy_text(self.policy)

    @property
    def existing_scope(self) -> tuple[str, ...]:
        """The prefixes whose existing repositories get the policy: under ROOT only those named explicitly."""
        if not self.apply_to_existing:
            return ()
        return self.existing_prefixes if self.prefix == ROOT else (self.prefix,)


def read_properties(raw: dict[str, Any]) -> LifecycleProperties:
    values = parse_properties(raw, SCHEMA)
    wanted = LifecycleProperties(
        prefix=without_trailing_slash(values["RepositoryPrefix"]),
        policy=read_policy(values["LifecyclePolicyText"]),
        apply_to_existing=values["ApplyToExistingRepositories"],
        apply_to_new=values["ApplyToNewRepositories"],
        overwrite=values["OverwriteExistingPolicies"],
        existing_prefixes=tuple(without_trailing_slash(prefix) for prefix in values["ExistingRepositoryPrefixes"]),
    )
    if wanted.existing_prefixes and wanted.prefix != ROOT:
        raise InvalidProperties(
            f"ExistingRepositoryPrefixes applies only with RepositoryPrefix ROOT; with {wanted.prefix!r} every "
            "existing repository under it gets the policy (set ApplyToExistingRepositories to false for none)"
        )
    if wanted.existing_prefixes and not wanted.apply_to_existing:
        raise InvalidProperties(
            "ExistingRepositoryPrefixes names repositories to backfill, but ApplyToExistingRepositories is false"
        )
    return wanted


def create(context: RequestContext) -> Result:
    """Claim the creation template first, so nothing cached meanwhile is missed, then the existing repositories."""
    wanted = read_properties(context.request.properties)
    return _put_in_place(wanted, None, context)


def update(context: RequestContext) -> Result:
    """A new policy reaches the template and every repository carrying the old policy (or none), or every
    repository with OverwriteExistingPolicies. A new RepositoryPrefix is a replacement."""
    request = context.request
    wanted = read_properties(request.properties)
    if wanted.prefix != request.physical_id:
        return create(context)
    old_policy = _policy_or_none(request.old_properties.get("LifecyclePolicyText"))
    return _put_in_place(wanted, old_policy, context)


def delete(context: RequestContext) -> None:
    """Delete the template this resource made, then remove the policy from every repository of the namespace
    that still carries it. Repositories someone changed since are left alone."""
    request, ecr = context.request, context.ecr
    prefix = request.physical_id
    if not is_prefix(prefix):
        logger.info("Nothing to delete: the physical id names no namespace this resource managed")
        return
    progress = request.progress
    if progress is None:
        _release_template(prefix, context)
        progress = Progress()
    policy = _policy_or_none(request.properties.get("LifecyclePolicyText"))
    if policy is None:
        logger.warning("The policy this resource applied cannot be read; repositories are left as they are")
        return

    def remove_if_ours(repository: str) -> Outcome:
        if _parsed(ecr.lifecycle_policy(repository)) != policy:
            return "skipped"
        ecr.delete_lifecycle_policy(repository)
        return "updated"

    work_through(ecr, prefix, remove_if_ours, progress, physical_id=prefix)


# How each part is done


def _put_in_place(wanted: LifecycleProperties, old_policy: dict[str, Any] | None, context: RequestContext) -> Result:
    """The template (in the first invocation only), then the existing repositories, continuing where an earlier
    invocation of this request stopped."""
    progress = context.request.progress
    if progress is None:
        _claim_template(wanted, context)
        progress = Progress()
    if wanted.existing_scope:
        progress = _apply_to_existing(wanted, old_policy, progress, context.ecr)
    elif wanted.apply_to_existing:
        logger.info(
            "RepositoryPrefix ROOT: existing repositories left alone, since a cached repository cannot be told from "
            "one applications push to; name the prefixes to backfill in ExistingRepositoryPrefixes"
        )
    return _result(wanted, progress)


def _claim_template(wanted: LifecycleProperties, context: RequestContext) -> None:
    """Own the repository creation template for the prefix, carrying the policy; none when not wanted.
    The ledger's claim proves ownership; a template another resource owns, or nobody does, is never changed."""
    request, ecr, ledger = context.request, context.ecr, context.ledger
    thing = _template(wanted.prefix)
    existing = ecr.find_template(wanted.prefix)
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
    template = CreationTemplate(
        prefix=wanted.prefix,
        description=_owner_description(request),
        lifecycle_policy=wanted.policy_text,
        applied_for=("PULL_THROUGH_CACHE",),
    )
    try:
        if existing:
            ecr.update_template(template)
        else:
            ecr.create_template(template)
    except ResourceFailure:
        if held_before is None and not existing:
            ledger.release(thing, request.owner)  # nothing was made: the prefix is free again
        raise


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


def _holder(thing: Thing, existing: CreationTemplate | None, context: RequestContext) -> Owner | None:
    """Who owns the template: the claim in the ledger; for a template made before the ledger existed, this
    resource if the owner token it wrote into the description says so (the claim is recorded now)."""
    holder = context.ledger.owner_of(thing)
    if holder is None and existing and existing.description.endswith(_owner_token(context.request)):
        context.ledger.claim(thing, context.request.owner)
        return context.request.owner
    return holder


def _apply_to_existing(
    wanted: LifecycleProperties,
    old_policy: dict[str, Any] | None,
    progress: Progress,
    ecr: EcrGateway,
) -> Progress:
    def apply(repository: str) -> Outcome:
        current = _parsed(ecr.lifecycle_policy(repository))
        if current == wanted.policy:
            return "unchanged"
        if current is not None and current != old_policy and not wanted.overwrite:
            return "skipped"
        ecr.put_lifecycle_policy(repository, wanted.policy_text)
        return "updated"

    try:
        return work_through(
            ecr, wanted.prefix, apply, progress, physical_id=wanted.prefix, only_under=wanted.existing_scope
        )
    except ContinueLater:
        raise
    except Exception as error:
        # The template and some repositories may already carry the policy: the rollback's Delete must find them.
        raise ResourceFailure(reason_for(error), wanted.prefix) from error


def _result(wanted: LifecycleProperties, progress: Progress) -> Result:
    data = {
        "RepositoryPrefix": wanted.prefix,
        "RepositoriesUpdated": str(progress.updated),
        "RepositoriesSkipped": str(progress.skipped),
        "ExistingRepositoriesLeftAlone": str(not wanted.existing_scope).lower(),
    }
    return Result(physical_id=wanted.prefix, data=data)


def _template(prefix: str) -> Thing:
    return Thing("repository creation template", prefix)


def _owner_description(request: Request) -> str:
    """The template's description says which resource owns it, for people. The ledger proves it; the token at its
    end was the proof before the ledger existed, and still lets such a template be recognised and claimed."""
    stack_name = request.stack_id.split("/")[1] if "/" in request.stack_id else request.stack_id
    text = f"Lifecycle policy for cached repositories, managed by {request.logical_id} in stack {stack_name}"
    token = _owner_token(request)
    return f"{text[: 256 - len(token) - 1]} {token}"


def _owner_token(request: Request) -> str:
    digest = hashlib.sha256(f"{request.stack_id}/{request.logical_id}".encode()).hexdigest()[:16]
    return f"[owner:{digest}]"


def _parsed(text: str | None) -> Any:
    """A repository's current policy as a comparable value: None when it has none. Never validated: a policy
    this provider would reject is still someone's policy, and differs from ours."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _policy_or_none(text: Any) -> dict[str, Any] | None:
    """The policy a resource's properties named, as a comparable value; None when there is none or it is invalid."""
    if text is None:
        return None
    try:
        return read_policy(text)
    except InvalidProperties:
        return None
