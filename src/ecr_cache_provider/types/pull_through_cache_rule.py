"""Custom::PullThroughCacheRule: an ECR pull-through cache rule that updates in place. One module, though long:
a type reads like its documentation, properties then create, update and delete.

Its properties mirror AWS::ECR::PullThroughCacheRule's (SCHEMA, and docs/), with a check that the upstream accepts
the rule, and the adoption of an existing rule no resource owns when its settings equal the properties.

Ownership is proved by the ownership ledger: the prefix is claimed before the rule is made, a rule another
resource owns is never changed or deleted, and an existing rule nobody owns is adopted only on request. The claim
records the adoption: a rollback never deletes a rule that existed before the operation began (see `delete`).

With DeleteCachedRepositoriesOnDelete, a Delete that removes the cache (the stack is deleted, or the resource
left the template) deletes the repositories the cache made, with their images (engine/cache_cleanup.py); one that
rolls back keeps them.

The physical id is the ECR repository prefix.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecr_cache_provider.aws import stacks
from ecr_cache_provider.aws.ecr import CacheRule, EcrGateway, RuleSettings
from ecr_cache_provider.aws.ledger import OwnedByAnother, Owner, Thing
from ecr_cache_provider.contract import Request, RequestContext, Result
from ecr_cache_provider.engine import cache_cleanup
from ecr_cache_provider.engine.declared_state import rule_state
from ecr_cache_provider.failures import EcrError, InvalidProperties, ResourceFailure, Superseded
from ecr_cache_provider.grammar.prefix import PREFIX_PATTERN, ROOT, is_prefix, without_trailing_slash
from ecr_cache_provider.properties import parse_properties

logger = logging.getLogger(__name__)

RESOURCE_TYPE = "Custom::PullThroughCacheRule"
RULE_KIND = "pull-through cache rule"

CREDENTIAL_ARN_PATTERN = (
    r"^arn:aws(-\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\-pullthroughcache\/[a-zA-Z0-9\/_+=.@-]+\Z"
)
ROLE_ARN_PATTERN = r"^arn:aws(-\w+)*:iam::\d{12}:role\/[\w+=,.@\/-]+\Z"

# Each upstream registry, the registry URLs it accepts, and whether it needs a Secrets Manager credential.
UPSTREAMS: dict[str, tuple[str, bool]] = {
    "ecr-public": (r"public\.ecr\.aws", False),
    "quay": (r"quay\.io", False),
    "k8s": (r"registry\.k8s\.io", False),
    "docker-hub": (r"registry-1\.docker\.io", True),
    "github-container-registry": (r"ghcr\.io", True),
    "gitlab-container-registry": (r"registry\.gitlab\.com", True),
    "azure-container-registry": (r"[a-z0-9-]+\.azurecr\.io", True),
    "chainguard": (r"cgr\.dev", True),
    "ecr": (r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?", False),
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["EcrRepositoryPrefix", "UpstreamRegistryUrl"],
    "properties": {
        "EcrRepositoryPrefix": {
            "type": "string",
            "minLength": 2,
            "maxLength": 30,
            "pattern": PREFIX_PATTERN,
            "description": "2 to 30 lowercase letters, digits, '.', '_', '-' and '/', or ROOT",
        },
        "UpstreamRegistryUrl": {"type": "string", "minLength": 1, "maxLength": 255},
        "UpstreamRegistry": {"type": "string", "enum": list(UPSTREAMS)},
        "CredentialArn": {
            "type": "string",
            "minLength": 50,
            "maxLength": 612,
            "pattern": CREDENTIAL_ARN_PATTERN,
            "description": "the ARN of a Secrets Manager secret named ecr-pullthroughcache/... ('' for none)",
        },
        "CustomRoleArn": {
            "type": "string",
            "maxLength": 2048,
            "pattern": ROLE_ARN_PATTERN,
            "description": "the ARN of an IAM role trusting pullthroughcache.ecr.amazonaws.com",
        },
        "UpstreamRepositoryPrefix": {
            "type": "string",
            "minLength": 2,
            "maxLength": 30,
            "pattern": PREFIX_PATTERN,
            "description": "2 to 30 lowercase letters, digits, '.', '_', '-' and '/', or ROOT",
        },
        "Validate": {"type": "boolean", "default": True},
        "AdoptExisting": {"type": "boolean", "default": False},
        "DeleteCachedRepositoriesOnDelete": {"type": "boolean", "default": False},
    },
}


@dataclass(frozen=True)
class RuleProperties(RuleSettings):
    """The rule's settings as the properties give them, and whether ECR should validate the upstream."""

    validate: bool = True
    adopt_existing: bool = False
    delete_cached_repositories: bool = False

    def matches(self, rule: CacheRule) -> bool:
        return (
            rule.upstream_registry_url == self.upstream_registry_url
            and (rule.upstream_registry or self.upstream_registry) == self.upstream_registry
            and (rule.upstream_repository_prefix or ROOT) == (self.upstream_repository_prefix or ROOT)
            and rule.access == self.access
        )


def read_properties(raw: dict[str, Any], request: Request) -> RuleProperties:
    """Validate every property with ECR's own rules, before anything is changed."""
    # An empty CredentialArn is none: template.yaml passes an optional credential parameter straight through.
    values = parse_properties({name: value for name, value in raw.items() if (name, value) != ("CredentialArn", "")},
                              SCHEMA)  # fmt: skip
    prefix = without_trailing_slash(values["EcrRepositoryPrefix"])
    url = values["UpstreamRegistryUrl"].strip().removeprefix("https://").rstrip("/")
    registry = values.get("UpstreamRegistry") or _registry_for_url(url)
    url_pattern, needs_credential = UPSTREAMS[registry]
    url_match = re.fullmatch(url_pattern, url)
    if not url_match:
        raise InvalidProperties(f"Invalid UpstreamRegistryUrl {url!r}: it is not a registry URL for {registry}")

    credential = values.get("CredentialArn")
    role = values.get("CustomRoleArn")
    upstream_prefix = values.get("UpstreamRepositoryPrefix")
    if needs_credential and not credential:
        raise InvalidProperties(f"CredentialArn is required for the {registry} upstream")
    if credential and registry == "ecr":
        raise InvalidProperties("CredentialArn is not used with the ecr upstream; set CustomRoleArn instead")
    if credential and request.region and credential.split(":")[3] != request.region:
        raise InvalidProperties(f"CredentialArn must name a secret in {request.region}, the Region of the rule")
    if role and registry != "ecr":
        raise InvalidProperties("CustomRoleArn is only used with the ecr upstream")
    if upstream_prefix is not None:
        if registry != "ecr":
            raise InvalidProperties("UpstreamRepositoryPrefix is only used with the ecr upstream")
        if prefix == ROOT and upstream_prefix != ROOT:
            raise InvalidProperties("UpstreamRepositoryPrefix can be set only when EcrRepositoryPrefix is not ROOT")
        upstream_prefix = without_trailing_slash(upstream_prefix)
    if registry == "ecr" and not role and url_match.group(1) != request.account_id:
        raise InvalidProperties("CustomRoleArn is required to cache from another account's ECR registry")
    if values["DeleteCachedRepositoriesOnDelete"] and prefix == ROOT:
        raise InvalidProperties(
            "DeleteCachedRepositoriesOnDelete cannot be used with EcrRepositoryPrefix ROOT: every repository of the "
            "registry is under it, and a cached repository cannot be told from one applications push to"
        )
    return RuleProperties(
        ecr_repository_prefix=prefix,
        upstream_registry_url=url,
        upstream_registry=registry,
        credential_arn=credential,
        custom_role_arn=role,
        upstream_repository_prefix=upstream_prefix,
        validate=values["Validate"],
        adopt_existing=values["AdoptExisting"],
        delete_cached_repositories=values["DeleteCachedRepositoriesOnDelete"],
    )


def create(context: RequestContext) -> Result:
    """Claim the prefix, then create the rule. A rule at the prefix that this resource does not own is left exactly
    as it was: the request fails naming its owner (or saying nobody owns it), and the rollback removes nothing.
    An existing rule adopted (AdoptExisting) is recorded as such in the claim."""
    request = context.request
    wanted = read_properties(request.properties, request)
    if wanted.delete_cached_repositories:  # its Delete must be allowed to delete the cache's repositories
        context.require_managed([wanted.ecr_repository_prefix])
    ecr = context.ecr
    thing = _rule(wanted.ecr_repository_prefix)
    held_before = context.ledger.claim(thing, request.owner)  # raises OwnedByAnother, naming the owner
    made = False
    try:
        try:
            rule = _create_and_validate(wanted, ecr)
            made = True
        except EcrError as error:
            if error.code != "PullThroughCacheRuleAlreadyExistsException":
                raise
            rule = _existing_rule(wanted, held_before, ecr)
            if held_before is None:  # it existed before this resource: adopted
                context.ledger.claim(thing, request.owner, adopted=_snapshot(rule))
    except ResourceFailure as failure:
        if held_before is None and failure.physical_id is None:
            context.ledger.release(thing, request.owner)  # nothing was made: the prefix is free again
        raise
    if made:  # a Delete that came in meanwhile (a cancelled Create) may have looked for the rule before it existed
        context.still_current(lambda: _remove(context, wanted.ecr_repository_prefix))
    return _result(rule, request, wanted)


def update(context: RequestContext) -> Result:
    """Change the rule: credentials in place, the upstream by replacement under the same prefix,
    and a new prefix by a new rule (a new physical id; CloudFormation then deletes the old one).

    A rename that fails undoes what it made before answering: CloudFormation keeps the old physical id, rolls
    back to it, and would never delete the new rule. The rollback's Update (old properties: the rename's) removes
    what a rename that never answered (cancelled, timed out) left."""
    request = context.request
    wanted = read_properties(request.properties, request)
    if wanted.delete_cached_repositories:
        context.require_managed([wanted.ecr_repository_prefix])
    ecr = context.ecr
    if wanted.ecr_repository_prefix != request.physical_id:
        renaming = not context.answered_before(wanted.ecr_repository_prefix, _looks_issued)
        try:
            return create(context)  # a rename, or its rollback to the prefix this resource still holds
        except ResourceFailure as failure:
            if renaming and not isinstance(failure, Superseded):
                _remove(context, wanted.ecr_repository_prefix)
            raise
    _remove_unanswered_rename(context, wanted)
    _confirm_ownership(context, wanted)

    current = ecr.find_rule(wanted.ecr_repository_prefix)
    if current is None:
        logger.warning("The rule was deleted outside CloudFormation; creating it again")
        return _result(_create_and_validate(wanted, ecr), request, wanted)
    if wanted.matches(current):
        return _result(current, request, wanted)
    if _can_update_in_place(current, wanted):
        _update_access_in_place(current, wanted, ecr)
        return _result(ecr.find_rule(wanted.ecr_repository_prefix) or current, request, wanted)
    return _result(_replace(current, wanted, ecr), request, wanted)


def delete(context: RequestContext) -> None:
    """Delete the rule, then its claim, when this resource owns it. Already gone, or another's: success, and
    nothing removed. A physical id the provider never answered is CloudFormation's own, sent when it rolls back a
    Create it cancelled or stopped waiting for: the rules that Create claimed are found in the ledger by owner.

    A rule this resource adopted (it existed before: AdoptExisting) is handed back, never deleted, when the Delete
    rolls back a failed stack operation (the stack's status says so: ROLLBACK_IN_PROGRESS, UPDATE_ROLLBACK_*), or
    when the status cannot be read; it is deleted with the stack (DELETE_IN_PROGRESS) or when the resource leaves
    the template (UPDATE_COMPLETE_CLEANUP_IN_PROGRESS), as a rule the stack made: the adoption completed.

    With DeleteCachedRepositoriesOnDelete, the repositories the cache made go with the rule in those two cases
    only: never when the Delete rolls back (the rule's own Create, or an update), nor when the stack's status is
    unknown, nor for a physical id CloudFormation made up (a cancelled Create's)."""
    request = context.request
    if context.answered_before(request.physical_id, _looks_issued):
        _remove(context, request.physical_id, clean_up=_wants_clean_up(request.properties, request.physical_id))
        return
    logger.info("A physical id this resource never answered: removing what the ledger says it claimed")
    for item in context.owned_items(RULE_KIND):
        _remove(context, item["Name"]["S"])


def _remove(context: RequestContext, prefix: str, clean_up: bool = False) -> None:
    """Delete the rule at `prefix` (hand it back, when adopted and the stack rolls back), then its claim; with
    `clean_up` (a Delete of a resource with DeleteCachedRepositoriesOnDelete), the cache's repositories too when
    the stack removes the cache. The claim is held until they are gone (the work may continue in follow-ups)."""
    thing = _rule(prefix)
    if not context.owns(thing):
        return
    if context.ledger.adoption(thing) is not None and _undoing(context):
        logger.info("Adopted rule handed back: it existed before this resource", extra={"prefix": prefix})
    else:
        context.ecr.delete_rule(prefix)
        if clean_up:
            _delete_cached_repositories(context, prefix)
    context.ledger.release(thing, context.request.owner)


def _delete_cached_repositories(context: RequestContext, prefix: str) -> None:
    """The cache's repositories, with their images, when the stack removes the cache (deleted with the stack, or
    the resource left the template); kept when it rolls back, or its status cannot be read. Counted in the
    Reason and one log line."""
    status = context.stack_status
    if not stacks.is_removing(status):
        context.reason = f"Cached repositories under {prefix} kept: the stack is {status or 'of unknown status'}"
        logger.info("Cached repositories kept", extra={"prefix": prefix, "stack_status": status})
        return
    request = context.request
    counts = cache_cleanup.delete_cached_repositories(
        context.ecr, context.ledger, prefix, request.stack_id, request.progress
    )
    context.reason = f"Cache {prefix}: {cache_cleanup.summary(counts)}"
    logger.info("Cached repositories deleted with the cache", extra={"prefix": prefix, **counts})


def _wants_clean_up(properties: dict[str, Any], prefix: str) -> bool:
    """DeleteCachedRepositoriesOnDelete, as the Delete's properties (the resource's last) give it: a string."""
    wanted = str(properties.get("DeleteCachedRepositoriesOnDelete", "false")).strip().lower() == "true"
    return wanted and prefix != ROOT


def _undoing(context: RequestContext) -> bool:
    """Whether the stack is rolling back (or its status is unknown: then a rule that existed before stays)."""
    status = context.stack_status
    return status is None or stacks.is_rolling_back(status)


def _remove_unanswered_rename(context: RequestContext, wanted: RuleProperties) -> None:
    """An Update whose old properties name another prefix than the physical id (its wanted prefix) rolls back a
    rename that never answered: the rule that rename made (or adopted) there is removed (handed back)."""
    old_prefix = str(context.request.old_properties.get("EcrRepositoryPrefix", ""))
    old_prefix = without_trailing_slash(old_prefix)
    if context.request.progress is None and old_prefix != wanted.ecr_repository_prefix and _looks_issued(old_prefix):
        _remove(context, old_prefix)


def _looks_issued(physical_id: str) -> bool:
    """Whether a physical id has the form of the ids this type answers: a repository prefix."""
    return is_prefix(physical_id) and 2 <= len(physical_id) <= 30


def _snapshot(rule: CacheRule) -> str:
    """The rule as it was when it was adopted."""
    return json.dumps({"upstreamRegistryUrl": rule.upstream_registry_url, "upstreamRegistry": rule.upstream_registry})


# Who owns the rule


def _rule(prefix: str) -> Thing:
    return Thing(RULE_KIND, prefix)


def _existing_rule(wanted: RuleProperties, held_before: Owner | None, ecr: EcrGateway) -> CacheRule:
    """The rule already at the prefix, when this resource may have it: it held the claim before this request
    (an earlier attempt of the request, or of the resource, made the rule), or it adopts the rule on request."""
    existing = ecr.find_rule(wanted.ecr_repository_prefix)
    if existing is not None and held_before is not None:
        logger.info("The rule was made by this resource", extra={"claimed_by_request": held_before.request_id})
        return existing
    if existing is not None and wanted.adopt_existing and wanted.matches(existing):
        logger.info("Adopted an existing rule that no resource owned (AdoptExisting)")
        return existing
    upstream = existing.upstream_registry_url if existing else "unknown"
    if wanted.adopt_existing:
        raise ResourceFailure(
            f"The pull-through cache rule for prefix {wanted.ecr_repository_prefix!r} (upstream {upstream}) differs "
            "from this resource's properties; AdoptExisting takes over only a rule with exactly these settings"
        )
    raise ResourceFailure(
        f"A pull-through cache rule for prefix {wanted.ecr_repository_prefix!r} already exists (upstream {upstream}) "
        "and no stack using this provider owns it (made by hand, natively, or through another provider stack); "
        "set AdoptExisting to take it over, or choose another EcrRepositoryPrefix"
    )


def _confirm_ownership(context: RequestContext, wanted: RuleProperties) -> None:
    """An Update changes the rule only when this resource holds its claim. A rule nobody claims (made before the
    ownership ledger existed) is claimed with AdoptExisting; a rule another resource claims is never touched."""
    request, thing = context.request, _rule(wanted.ecr_repository_prefix)
    holder = context.ledger.owner_of(thing)
    if holder is None and wanted.adopt_existing:
        current = context.ecr.find_rule(wanted.ecr_repository_prefix)
        context.ledger.claim(thing, request.owner, adopted=_snapshot(current) if current else "")
    elif holder is None:
        raise ResourceFailure(
            f"No resource owns the pull-through cache rule {wanted.ecr_repository_prefix!r} in the ownership "
            "ledger (it predates the ledger, or was made outside this stack); set AdoptExisting to claim it"
        )
    elif not holder.is_same_resource(request.owner):
        raise OwnedByAnother(thing, holder)


# How each change is made


def _can_update_in_place(current: CacheRule, wanted: RuleProperties) -> bool:
    """UpdatePullThroughCacheRule sets a credential or role; it cannot change the upstream or remove either."""
    same_upstream = (current.upstream_registry_url, current.upstream_repository_prefix or ROOT) == (
        wanted.upstream_registry_url,
        wanted.upstream_repository_prefix or ROOT,
    )
    removes_access = (current.credential_arn and not wanted.credential_arn) or (
        current.custom_role_arn and not wanted.custom_role_arn
    )
    return same_upstream and not removes_access and any(wanted.access)


def _create_and_validate(wanted: RuleProperties, ecr: EcrGateway) -> CacheRule:
    """Create the rule and, when asked, let ECR check the upstream accepts it; a rejected rule is removed again."""
    rule = ecr.create_rule(wanted)
    try:
        _check_with_ecr(wanted, ecr)
    except ResourceFailure as failure:
        _undo(lambda: ecr.delete_rule(wanted.ecr_repository_prefix), failure, physical_id=wanted.ecr_repository_prefix)
        raise
    return rule


def _update_access_in_place(current: CacheRule, wanted: RuleProperties, ecr: EcrGateway) -> None:
    """Rotate the credential or role with UpdatePullThroughCacheRule: the rule never disappears."""
    ecr.update_rule_access(wanted)
    try:
        _check_with_ecr(wanted, ecr)
    except ResourceFailure as failure:
        _undo(lambda: _restore(current, ecr), failure)
        raise


def _replace(current: CacheRule, wanted: RuleProperties, ecr: EcrGateway) -> CacheRule:
    """A new upstream under the same prefix: delete and create within this request; put the old rule back
    if the new one cannot be created or is rejected."""
    ecr.delete_rule(current.ecr_repository_prefix)
    try:
        return _create_and_validate(wanted, ecr)
    except ResourceFailure as failure:
        _undo(lambda: ecr.create_rule(current), failure)
        raise


def _restore(previous: CacheRule, ecr: EcrGateway) -> None:
    """Put the previous credential and role back; a rule that had neither can only be made again."""
    if any(previous.access):
        ecr.update_rule_access(previous)
    else:
        ecr.delete_rule(previous.ecr_repository_prefix)
        ecr.create_rule(previous)


def _check_with_ecr(wanted: RuleProperties, ecr: EcrGateway) -> None:
    if not wanted.validate:
        return
    validation = ecr.validate_rule(wanted.ecr_repository_prefix)
    if not validation.is_valid:
        raise ResourceFailure(
            f"ECR rejected the rule for {wanted.upstream_registry_url}: {validation.failure or 'no reason given'}"
        )


def _undo(action: Callable[[], object], failure: ResourceFailure, physical_id: str | None = None) -> None:
    """Undo a change after `failure`, which the caller then raises. If the undo fails too, raise a failure that
    says so, chained to it, and hand the rollback what to delete."""
    try:
        action()
    except ResourceFailure as undo_failure:
        logger.error("Could not undo the change", extra={"error": str(undo_failure)})
        raise ResourceFailure(
            f"{failure} (and undoing the change failed: {undo_failure})", physical_id
        ) from undo_failure


# Small helpers


def _result(rule: CacheRule, request: Request, wanted: RuleSettings) -> Result:
    prefix = rule.ecr_repository_prefix
    registry_id = rule.registry_id or request.account_id
    suffix = "amazonaws.com.cn" if request.region.startswith("cn-") else "amazonaws.com"
    host = f"{registry_id}.dkr.ecr.{request.region}.{suffix}"
    data = {
        "EcrRepositoryPrefix": prefix,
        "UpstreamRegistryUrl": rule.upstream_registry_url,
        "UpstreamRegistry": rule.upstream_registry or _registry_for_url(rule.upstream_registry_url),
        "RegistryId": registry_id,
        "RepositoryUriPrefix": host if prefix == ROOT else f"{host}/{prefix}",
    }
    return Result(physical_id=prefix, data=data, declared=rule_state(wanted))


def _registry_for_url(url: str) -> str:
    for registry, (pattern, _) in UPSTREAMS.items():
        if re.fullmatch(pattern, url):
            return registry
    raise InvalidProperties(
        f"Unsupported UpstreamRegistryUrl {url!r}: set UpstreamRegistry, or use one of public.ecr.aws, quay.io, "
        "registry.k8s.io, registry-1.docker.io, ghcr.io, registry.gitlab.com, <name>.azurecr.io, cgr.dev"
    )
