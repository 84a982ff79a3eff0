"""TakeOverFrom: one resource replacing another of the same stack (a Custom::CacheLifecyclePolicy by a
Custom::CachedRepositorySettings) on the same namespace.

CloudFormation creates the new resource, then deletes the old one. The new one takes the template's claim from the
old one, recording what the old one had in place (a snapshot of its template), so the two never fight: the old
one's Delete finds its claim taken over and leaves everything to its successor; if the stack update rolls back
instead, the new one's Delete puts the old template back and hands the claim back (backfill.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ecr_cache_provider.aws.ecr import DEFAULT_TAG_MUTABILITY, CreationTemplate
from ecr_cache_provider.aws.ledger import Owner, TakeOver
from ecr_cache_provider.engine.setting_kinds import Settings, parsed
from ecr_cache_provider.engine.template_claim import TemplateClaim
from ecr_cache_provider.failures import ResourceFailure


def predecessor_holding(claim: TemplateClaim, predecessor: str) -> Owner | None:
    """The resource this one replaces (`predecessor`, its logical id), when it holds the template; None when this
    resource replaces none."""
    if not predecessor:
        return None
    holder = claim.holder(predecessor)
    named = Owner(claim.context.request.stack_id, predecessor, "")
    return holder if holder is not None and holder.is_same_resource(named) else None


def take_over_from(claim: TemplateClaim, predecessor: Owner, template: CreationTemplate) -> None:
    """Take the template from its holder `predecessor` and write `template`; when the write fails, the claim goes
    back (nothing changed: the predecessor keeps what it had)."""
    context = claim.context
    before = claim.existing or CreationTemplate(prefix=claim.prefix)
    context.ledger.take_over(claim.thing, predecessor, context.request.owner, _snapshot(before))
    claim.claim_changed()
    try:
        claim.write(template)
    except ResourceFailure:
        take_over = context.ledger.take_over_of(claim.thing)
        if take_over is not None:
            context.ledger.hand_back(claim.thing, take_over)
        raise


def inherited(claim: TemplateClaim) -> tuple[Owner | None, dict[str, Any]]:
    """The resource this one took the namespace over from, whose records of repositories this one inherits; and,
    when the predecessor is older than the ledger's records, the settings its template carried (what it had put
    in place, recognised by value as it then was)."""
    context = claim.context
    take_over = claim.take_over
    if take_over is None or not take_over.successor.is_same_resource(context.request.owner):
        return None, {}
    predecessor = take_over.predecessor
    if not take_over.snapshot:
        return predecessor, {}  # recorded on a free template (Ledger.name_predecessor): no template was in place
    record = context.ledger.resource(predecessor)
    legacy = record is None or not record.issued_complete
    return predecessor, (settings_of(restored(take_over.snapshot)).values if legacy else {})


def template_before(prefix: str, take_over: TakeOver) -> CreationTemplate:
    """The template the predecessor had in place when its claim was taken over (one with no settings when there
    was none)."""
    return restored(take_over.snapshot) if take_over.snapshot else CreationTemplate(prefix=prefix)


def put_back_template(claim: TemplateClaim, take_over: TakeOver) -> None:
    """The predecessor's template back in place; none, when there was none before the take-over."""
    before = template_before(claim.prefix, take_over)
    ecr = claim.context.ecr
    if not before.applied_for:  # there was no template before the take-over
        ecr.delete_template(claim.prefix)
    elif current := claim.existing:
        ecr.update_template(before, current)
    claim.template_changed()


def restored(snapshot: str) -> CreationTemplate:
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


def settings_of(template: CreationTemplate) -> Settings:
    """The settings a template gives new repositories, as this provider compares them."""
    return Settings(
        lifecycle_policy=parsed(template.lifecycle_policy) if template.lifecycle_policy else None,
        repository_policy=parsed(template.repository_policy) if template.repository_policy else None,
        resource_tags=template.resource_tags or None,
        tag_mutability=template.tag_mutability if template.tag_mutability != DEFAULT_TAG_MUTABILITY else None,
    )


def _snapshot(template: CreationTemplate) -> str:
    return json.dumps(asdict(template), separators=(",", ":"))
