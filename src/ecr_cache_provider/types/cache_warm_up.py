"""Custom::CacheWarmUp: pull images through a pull-through cache at deployment, so that the cache holds them
before anything needs them (engine/warm_up.py says why and how), and again on a schedule when RefreshSchedule is
given, so that tags that moved upstream are cached too.

Create and Update pull every image and answer once ECR reports each image and layer as cached, continuing in
follow-up invocations when that takes longer than one. An image that cannot be warmed (missing upstream, a login
the upstream refused, a digest alone the cache cannot fetch) fails the request, naming it. The schedule, when
there is one, is claimed in the ownership ledger and made after the images are warm. Delete removes the schedule;
never images: warmed images are ordinary cached images, left to lifecycle policies and expiry.

The physical id is one name per resource (stack and logical id), the schedule's name too. Properties: SCHEMA.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from ecr_cache_provider.aws.ledger import Thing
from ecr_cache_provider.aws.scheduler import Schedule
from ecr_cache_provider.contract import Request, RequestContext, Result, leaves_behind
from ecr_cache_provider.engine import warm_up
from ecr_cache_provider.engine.warm_up import FAILED, WARMED, Outcome, WarmUpSettings
from ecr_cache_provider.failures import InvalidProperties, ResourceFailure
from ecr_cache_provider.grammar.image_reference import BadReference, parse, parse_platform
from ecr_cache_provider.grammar.prefix import PREFIX_PATTERN, ROOT, without_trailing_slash
from ecr_cache_provider.properties import parse_properties

logger = logging.getLogger(__name__)

RESOURCE_TYPE = "Custom::CacheWarmUp"
SCHEDULE_KIND = "warm-up-schedule"
# rate(...) or cron(...), as Custom::CacheImageExpiry takes them.
SCHEDULE_PATTERN = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))\Z"
# What the answer's attributes may take of CloudFormation's 4,096 bytes (the rest: status, ids, Reason).
DATA_BYTES = 2500
REASON_CHARACTERS = 256  # what CloudFormation shows of a Reason (responder.py)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["RepositoryPrefix", "Images"],
    "properties": {
        "RepositoryPrefix": {
            "type": "string",
            "minLength": 1,
            "maxLength": 30,
            "pattern": PREFIX_PATTERN,
            "description": "the prefix of a pull-through cache rule, such as docker-hub",
        },
        "Images": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1, "maxLength": 400},
            "description": "1 to 100 images such as library/nginx:1.27 or library/nginx@sha256:...",
        },
        "Platforms": {
            "type": "array",
            "default": [],
            "maxItems": 20,
            "items": {"type": "string", "maxLength": 64},
            "description": "platforms such as linux/amd64",
        },
        "RefreshSchedule": {
            "type": "string",
            "maxLength": 256,
            "pattern": SCHEDULE_PATTERN,
            "description": "rate(N days|hours|minutes) or cron(...)",
        },
    },
}


def read_properties(raw: dict[str, Any]) -> tuple[WarmUpSettings, str | None]:
    """The settings and the refresh schedule's expression (None without one); InvalidProperties names the image or
    platform at fault."""
    values = parse_properties(raw, SCHEMA)
    prefix = without_trailing_slash(values["RepositoryPrefix"])
    if prefix == ROOT:
        raise InvalidProperties("RepositoryPrefix names a cache rule's prefix; ROOT warms nothing in particular")
    images = []
    for text in values["Images"]:
        try:
            images.append(parse(text, prefix))
        except BadReference as bad:
            raise InvalidProperties(f"Images: {text[:200]!r} is {bad}") from None
    platforms = []
    for text in values["Platforms"]:
        try:
            platforms.append(parse_platform(text))
        except BadReference as bad:
            raise InvalidProperties(f"Platforms: {text[:64]!r} is {bad}") from None
    return WarmUpSettings(prefix, tuple(images), tuple(platforms)), values.get("RefreshSchedule")


def create(context: RequestContext) -> Result:
    return _warm(context)


def update(context: RequestContext) -> Result:
    """Every property changes in place: the images are pulled again (tags may have moved), and the schedule made,
    changed or removed."""
    return _warm(context)


def delete(context: RequestContext) -> None:
    """Delete the schedule, when this resource owns one; never images. By the name of this resource, whatever the
    physical id (CloudFormation may send one of its own after cancelling a Create)."""
    name = resource_name(context.request)
    context.remove_if_owned(schedule_thing(name), lambda: context.scheduler.delete(name))


def _warm(context: RequestContext) -> Result:
    request = context.request
    settings, schedule = read_properties(request.properties)
    context.require_managed([settings.prefix])
    if context.ecr.find_rule(settings.prefix) is None:
        rules = context.ecr.rule_prefixes()
        raise InvalidProperties(
            f"No pull-through cache rule has the prefix {settings.prefix!r}: Custom::CacheWarmUp pulls through a "
            f"cache (this registry's rule prefixes: {', '.join(rules[:10]) or 'none'})"
        )
    name = resource_name(request)
    with leaves_behind(name):
        outcomes = warm_up.warm(context.ecr, settings, context.deadline, request.progress, name)
        failed = [outcome for outcome in outcomes if outcome.state == FAILED]
        if failed:
            raise ResourceFailure(_failure_reason(failed, len(outcomes)), name)
        _keep_schedule(context, name, settings, schedule)
        return Result(physical_id=name, data=attributes(outcomes))


def _keep_schedule(context: RequestContext, name: str, settings: WarmUpSettings, expression: str | None) -> None:
    """Make or change the refresh schedule (claimed first), or remove the one this resource had."""
    request = context.request
    if expression is None:
        if context.scheduler.find(name) is not None:
            context.remove_if_owned(schedule_thing(name), lambda: context.scheduler.delete(name))
        return
    context.ledger.claim(schedule_thing(name), request.owner)
    made = context.scheduler.find(name) is None
    payload = warm_up_refresh_event(name, settings, request)
    description = f"Cache warm-up for {settings.prefix}, managed by {request.owner}"[:512]
    context.scheduler.put(Schedule(name, expression, context.function_arn, payload, description))
    if made:
        context.still_current(
            lambda: context.remove_if_owned(schedule_thing(name), lambda: context.scheduler.delete(name))
        )


# How each part is done


def resource_name(request: Request) -> str:
    """One name per resource (stack and logical id), within the scheduler's 64 characters."""
    digest = hashlib.sha256(f"{request.stack_id}/{request.logical_id}".encode()).hexdigest()[:20]
    return f"cache-warm-up-{digest}"


def schedule_thing(name: str) -> Thing:
    return Thing(SCHEDULE_KIND, name)


def warm_up_refresh_event(name: str, settings: WarmUpSettings, request: Request) -> dict[str, Any]:
    """What the schedule invokes the function with (dispatch.py routes it to warm_up.refresh)."""
    return {
        warm_up.REFRESH_KEY: {
            "schedule": name,
            "prefix": settings.prefix,
            "images": [reference.text for reference in settings.images],
            "platforms": [str(platform) for platform in settings.platforms],
            "stack_id": request.stack_id,
            "logical_id": request.logical_id,
        }
    }


def attributes(outcomes: list[Outcome]) -> dict[str, str]:
    """WarmedImages (how many), Digests (image -> digest) and Failed (image -> reason), within DATA_BYTES: images
    left out of Digests are counted in DigestsNotListed."""
    digests: dict[str, str] = {}
    left_out = 0
    for outcome in outcomes:
        if outcome.state != WARMED:
            continue
        if len(json.dumps({**digests, outcome.image: outcome.digest})) > DATA_BYTES:
            left_out += 1
            continue
        digests[outcome.image] = outcome.digest
    data = {
        "WarmedImages": str(sum(outcome.state == WARMED for outcome in outcomes)),
        "Digests": json.dumps(digests),
        "Failed": "{}",
    }
    if left_out:
        data["DigestsNotListed"] = f"{left_out} images (the answer is limited to 4,096 bytes)"
    return data


def _failure_reason(failed: list[Outcome], total: int) -> str:
    """Every failed image and why, as long as the Reason has room; then how many more."""
    logger.warning("Images not warmed", extra={"failed": {outcome.image: outcome.reason for outcome in failed}})
    head = f"{len(failed)} of {total} images could not be warmed: "
    parts: list[str] = []
    for index, outcome in enumerate(failed):
        part = f"{outcome.image[:100]}: {outcome.reason}"
        if parts and len(head) + len("; ".join([*parts, part])) > REASON_CHARACTERS - 12:
            parts.append(f"and {len(failed) - index} more")
            break
        parts.append(part)
    return head + "; ".join(parts)
