"""Custom::CacheImageExpiry: delete cached images nobody has pulled for N days, on a schedule.

ECR lifecycle policies can expire by push age or count, and move images unpulled for N days to the archive, but
never delete by last pull. In a cache, deleting an unused image is always safe: it is pulled again on demand.

The resource owns one EventBridge Scheduler schedule in the provider's schedule group, claimed in the ownership
ledger before it is made. The schedule invokes the provider function with the namespace settings as its input, and
that invocation sweeps the namespace (engine/expiry_sweep.py). Delete removes the schedule; it never deletes images.

The physical id is the schedule's name. Its properties: SCHEMA, and docs/.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ecr_cache_provider.aws import sdk
from ecr_cache_provider.aws.ecr import EcrGateway
from ecr_cache_provider.aws.ledger import Thing
from ecr_cache_provider.aws.scheduler import Schedule
from ecr_cache_provider.aws.workloads import WorkloadsUnknown
from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.contract import Request, RequestContext, Result, leaves_behind
from ecr_cache_provider.deadline import Deadline
from ecr_cache_provider.engine import expiry_sweep
from ecr_cache_provider.engine.declared_state import schedule_state
from ecr_cache_provider.engine.expiry_sweep import ExpirySettings, SweepTotals
from ecr_cache_provider.failures import InvalidProperties, ResourceFailure
from ecr_cache_provider.grammar.prefix import PREFIX_PATTERN, ROOT, without_trailing_slash
from ecr_cache_provider.properties import parse_properties

logger = logging.getLogger(__name__)

RESOURCE_TYPE = "Custom::CacheImageExpiry"

# rate(...) or cron(...): a recurring schedule (a one-time at(...) would sweep once and never again).
SCHEDULE_PATTERN = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))\Z"
NAMESPACE = {"type": "string", "minLength": 1, "maxLength": 256, "pattern": PREFIX_PATTERN}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["RepositoryPrefix", "ExpireAfterDaysWithoutPull"],
    "properties": {
        "RepositoryPrefix": NAMESPACE
        | {"description": "a repository namespace such as docker-hub or team/cache, or ROOT"},
        "ExpireAfterDaysWithoutPull": {
            "type": "integer",
            "minimum": 1,
            "maximum": 3650,
            "description": "a whole number of days from 1 to 3650",
        },
        "KeepLatestImages": {
            "type": "integer",
            "minimum": 0,
            "maximum": 100000,
            "default": 0,
            "description": "a whole number of images from 0 to 100000",
        },
        "DeleteEmptyRepositories": {"type": "boolean", "default": False},
        "DryRun": {"type": "boolean", "default": False},
        "ScheduleExpression": {
            "type": "string",
            "maxLength": 256,
            "pattern": SCHEDULE_PATTERN,
            "default": "rate(1 day)",
            "description": "rate(N days|hours|minutes) or cron(...)",
        },
        "ExistingRepositoryPrefixes": {
            "type": "array",
            "default": [],
            "items": NAMESPACE,
            "description": "repository namespaces such as docker-hub or team/cache",
        },
        "ProtectImagesInUse": {"type": "boolean", "default": True},
        "ProtectedTags": {
            "type": "array",
            "default": [],
            "maxItems": 100,
            "items": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[\w][\w.-]{0,127}\Z"},
            "description": "image tags (letters, digits, '_', '.', '-'; up to 128 characters) never expired",
        },
    },
}

# How long the deploy-time dry run may take before its preview is given up as `unknown`.
PREVIEW_SECONDS = 60.0
UNKNOWN = "unknown"


@dataclass(frozen=True)
class ExpiryProperties:
    settings: ExpirySettings
    schedule_expression: str


def read_properties(raw: dict[str, Any]) -> ExpiryProperties:
    values = parse_properties(raw, SCHEMA)
    prefix = without_trailing_slash(values["RepositoryPrefix"])
    root_prefixes = tuple(without_trailing_slash(name) for name in values["ExistingRepositoryPrefixes"])
    if prefix == ROOT and not root_prefixes:
        raise InvalidProperties(
            "RepositoryPrefix ROOT covers every repository, and a cached repository cannot be told from one "
            "applications push to: name the namespaces to sweep in ExistingRepositoryPrefixes"
        )
    if prefix != ROOT and root_prefixes:
        raise InvalidProperties(f"ExistingRepositoryPrefixes applies only with RepositoryPrefix ROOT, not {prefix!r}")
    if ROOT in root_prefixes:
        raise InvalidProperties("ExistingRepositoryPrefixes names namespaces; ROOT is not one")
    settings = ExpirySettings(
        prefix=prefix,
        expire_after_days=values["ExpireAfterDaysWithoutPull"],
        keep_latest=values["KeepLatestImages"],
        delete_empty_repositories=values["DeleteEmptyRepositories"],
        dry_run=values["DryRun"],
        root_prefixes=root_prefixes,
        protect_images_in_use=values["ProtectImagesInUse"],
        protected_tags=tuple(dict.fromkeys(values["ProtectedTags"])),
    )
    return ExpiryProperties(settings, values["ScheduleExpression"])


def create(context: RequestContext) -> Result:
    """Claim the schedule's name, then make the schedule. Once the name is claimed, a failure answers with the
    schedule's name, so that the rollback's Delete removes the schedule (if there is one) and then the claim: a
    call that timed out may have made the schedule even so, and a schedule left behind would go on deleting.

    Refused when a namespace to sweep is no pull-through cache's: deleted images could not be pulled again."""
    wanted, name = _claimed(context)
    with leaves_behind(name):
        _put(name, wanted, context)
        return _result(name, wanted, context)


def update(context: RequestContext) -> Result:
    """Every property changes in place: the schedule keeps its name and gets the new settings (a sweep under way
    reads them at its next step)."""
    wanted, name = _claimed(context)  # an Update finds the claim this resource's already
    _put(name, wanted, context)
    return _result(name, wanted, context)


def delete(context: RequestContext) -> None:
    """Delete the schedule, then its claim, when this resource owns them. Images are never deleted. The schedule
    is the one named for this resource (stack and logical id), whatever the physical id: CloudFormation may send
    one of its own, after cancelling a Create. A sweep under way stops at its next step (the resource's record
    says it was deleted)."""
    name = schedule_name(context.request)
    context.remove_if_owned(schedule_thing(name), lambda: context.scheduler.delete(name))


def _claimed(context: RequestContext) -> tuple[ExpiryProperties, str]:
    """The properties, checked (namespaces the provider manages, each a pull-through cache's, an SDK that can
    sweep), and the schedule's name, claimed for this resource (OwnedByAnother, naming the owner, when another
    holds it)."""
    request = context.request
    wanted = read_properties(request.properties)
    context.require_managed(wanted.settings.namespaces)
    sdk.require_image_expiry_api(context.ecr.client)
    _require_a_cache(wanted.settings, context)
    name = schedule_name(request)
    context.ledger.claim(schedule_thing(name), request.owner)
    return wanted, name


def _put(name: str, wanted: ExpiryProperties, context: RequestContext) -> None:
    """Keep the settings in the resource's record (what its sweeps read at each step), then make or change the
    schedule; undone when a newer request came in meanwhile (a Delete may have looked for it before it existed)."""
    request = context.request
    context.ledger.keep_settings(request.owner, json.dumps(wanted.settings.to_input()))
    made = context.scheduler.find(name) is None
    context.scheduler.put(_schedule(name, wanted, context))
    if made:
        context.still_current(
            lambda: context.remove_if_owned(schedule_thing(name), lambda: context.scheduler.delete(name))
        )


def _require_a_cache(settings: ExpirySettings, context: RequestContext) -> None:
    """Expiry deletes images: only in a namespace a pull-through cache rule covers can they be pulled again."""
    rules = context.ecr.rule_prefixes()
    for namespace in expiry_sweep.uncached(settings, rules):
        nearest = expiry_sweep.nearest_rules(namespace, rules)
        near = f"; the nearest rule prefixes: {', '.join(nearest)}" if nearest else "; this registry has no rule"
        raise InvalidProperties(
            f"No pull-through cache rule covers {namespace!r}: images deleted there could not be pulled again, "
            f"so Custom::CacheImageExpiry sweeps only a cache's namespace{near}"
        )


# How each part is done


def schedule_name(request: Request) -> str:
    """One name per resource (stack and logical id), within the scheduler's 64 characters."""
    digest = hashlib.sha256(f"{request.stack_id}/{request.logical_id}".encode()).hexdigest()[:20]
    return f"cache-image-expiry-{digest}"


def is_schedule_name(text: str) -> bool:
    return bool(re.fullmatch(r"cache-image-expiry-[0-9a-f]{20}", text))


def schedule_thing(name: str) -> Thing:
    return Thing(expiry_sweep.SCHEDULE_KIND, name)


def _schedule(name: str, wanted: ExpiryProperties, context: RequestContext) -> Schedule:
    request = context.request
    return Schedule(
        name=name,
        expression=wanted.schedule_expression,
        target_arn=context.function_arn,
        payload=expiry_sweep.sweep_event(name, wanted.settings, request.stack_id, request.logical_id),
        description=f"Image expiry for {wanted.settings.prefix}, managed by {request.owner}"[:512],
    )


def _result(name: str, wanted: ExpiryProperties, context: RequestContext) -> Result:
    images, size = _preview(wanted.settings, context)
    data = {
        "RepositoryPrefix": wanted.settings.prefix,
        "ScheduleName": name,
        "ImagesToExpire": images,
        "BytesToFree": size,
    }
    return Result(physical_id=name, data=data, declared=schedule_state(_schedule(name, wanted, context)))


def _preview(settings: ExpirySettings, context: RequestContext) -> tuple[str, str]:
    """A dry run of the sweep, when it fits in PREVIEW_SECONDS of this invocation and needs no image index read
    (ECR counts the read as a pull, which would keep the index for another N days); `unknown` otherwise."""
    budget = min(PREVIEW_SECONDS, max(context.deadline.remaining(), 0.0))
    deadline = Deadline(time.monotonic() + budget, margin_seconds=0.0)
    ecr = EcrGateway(deadline, client=context.ecr.client)
    totals = SweepTotals()
    try:
        protected = expiry_sweep.protected_namespaces(context.ledger, settings, context.request.stack_id)
        in_use = expiry_sweep.images_in_use(settings, deadline, context.function_arn)
        expiry_sweep.sweep(
            ecr,
            replace(settings, dry_run=True),
            datetime.now(UTC),
            Progress(),
            totals,
            protected=protected,
            read_indexes=False,
            in_use=in_use,
        )
    except (ContinueLater, ResourceFailure, expiry_sweep.IndexesNotRead, WorkloadsUnknown) as stopped:
        logger.info("No preview: the dry run did not fit in the invocation", extra={"stopped": str(stopped)})
        return UNKNOWN, UNKNOWN
    return str(totals.images_expired), str(totals.bytes_freed)
