"""A registry-wide setting that several resources share: each puts in its own parts and leaves the others alone.

ECR keeps one registry policy and one scanning configuration per registry, and a write replaces the whole of it.
So a change is a read-modify-write: read the setting, put in this resource's parts (policy statements by Sid,
scanning filters by frequency), take out the parts it no longer wants, write, read back. Across stacks the
read-modify-write is serialised by a short lock in the ownership ledger, and every part is claimed there before it
is written: a part is this resource's only when the ledger says so. A part that exists and is not this resource's
is never replaced or removed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from ecr_cache_provider.aws.ecr import EcrGateway
from ecr_cache_provider.aws.ledger import HeldLock, OwnedByAnother, Owner, Thing, stack_name
from ecr_cache_provider.contract import Request, RequestContext, Result
from ecr_cache_provider.failures import ResourceFailure

logger = logging.getLogger(__name__)

State = TypeVar("State")

# Read-modify-writes tried when the setting read back differs from what was written (someone wrote it without
# the lock, e.g. the console or the native resource type).
WRITE_ATTEMPTS = 3


class MergedSetting(Protocol[State]):
    """How one registry-wide setting is read, split into parts, merged and written."""

    part_kind: str  # a part as a person says it, for claims and Reasons: "registry policy statement"
    lock_name: str  # the ledger lock that serialises changes of the whole setting

    def read(self, ecr: EcrGateway) -> State: ...

    def parts(self, state: State) -> set[str]:
        """The keys of the parts the setting holds."""
        ...

    def merged(self, state: State, put: dict[str, Any], remove: set[str]) -> State:
        """The setting with the parts `put` in place (replacing those with the same key) and `remove` taken out;
        raises ResourceFailure when the change is not allowed."""
        ...

    def write(self, ecr: EcrGateway, state: State) -> None: ...


def put_parts[State](
    context: RequestContext,
    setting: MergedSetting[State],
    wanted: dict[str, Any],
    previous: Iterable[str],
    physical_id: str,
) -> None:
    """Make the setting hold exactly `wanted` of this resource's parts: add or replace those, and remove the parts
    of `previous` (this resource's earlier parts) no longer wanted. Everything else is kept as it is.

    A failure before anything was written leaves no new claim behind; one after carries `physical_id`, so that
    the rollback's Delete takes out what was put in."""
    ledger, owner = context.ledger, context.request.owner
    claimed_now: list[Thing] = []
    dropped: set[str] = set()

    def change(state: State) -> State:
        _refuse_others_parts(context, setting, state, wanted)
        dropped.update(key for key in previous if key not in wanted and _is_ours(context, setting, key))
        target = setting.merged(state, wanted, dropped)
        for key in wanted:  # claimed before the write: ownership is recorded before acting
            if ledger.claim(_thing(setting, key), owner) is None:
                claimed_now.append(_thing(setting, key))
        return target

    try:
        with ledger.lock(setting.lock_name, owner) as held:
            rewrite(context.ecr, setting, change, physical_id, held)
    except ResourceFailure as failure:
        if failure.physical_id is None:  # nothing was written: the parts claimed now are free again
            for thing in claimed_now:
                ledger.release(thing, owner)
        raise
    for key in dropped:
        ledger.release(_thing(setting, key), owner)
    if claimed_now:  # a Delete that came in meanwhile (a cancelled Create) may have looked before they were there
        context.still_current(lambda: remove_parts(context, setting, [thing.name for thing in claimed_now]))


def remove_parts[State](context: RequestContext, setting: MergedSetting[State], keys: Iterable[str]) -> None:
    """Take this resource's parts out of the setting, then release their claims. Parts of `keys` that are not
    this resource's (never claimed, or another's) are left as they are."""
    ours = {key for key in keys if _is_ours(context, setting, key)}
    if not ours:
        return
    with context.ledger.lock(setting.lock_name, context.request.owner) as held:
        rewrite(context.ecr, setting, lambda state: setting.merged(state, {}, ours), None, held)
    for key in ours:
        context.ledger.release(_thing(setting, key), context.request.owner)


def rewrite[State](
    ecr: EcrGateway,
    setting: MergedSetting[State],
    change: Callable[[State], State],
    physical_id: str | None,
    held: HeldLock,
) -> None:
    """Read, change, write and read back; again when what is read back differs (someone wrote the setting without
    the lock meanwhile). Nothing is written once the lock is lost. A failure once something was written carries
    `physical_id`."""
    written = False
    try:
        for _ in range(WRITE_ATTEMPTS):
            state = setting.read(ecr)
            target = change(state)
            if target == state:
                return
            held.confirm()
            setting.write(ecr, target)
            written = True
            if setting.read(ecr) == target:
                return
            logger.warning("The setting changed while it was written; merging again", extra={"lock": setting.lock_name})
        raise ResourceFailure(f"The {setting.lock_name} kept changing while it was written ({WRITE_ATTEMPTS} attempts)")
    except ResourceFailure as failure:
        if written and physical_id:
            raise ResourceFailure(str(failure), physical_id) from failure
        raise


def _refuse_others_parts[State](
    context: RequestContext, setting: MergedSetting[State], state: State, wanted: dict[str, Any]
) -> None:
    present = setting.parts(state)
    owner = context.request.owner
    for key in wanted:
        thing = _thing(setting, key)
        holder: Owner | None = context.ledger.owner_of(thing)
        if holder is not None and not holder.is_same_resource(owner):
            raise OwnedByAnother(thing, holder)
        if holder is None and key in present:
            raise ResourceFailure(
                f"The {thing} already exists and is not this resource's: rename ours, or remove that one first"
            )


def _is_ours(context: RequestContext, setting: MergedSetting[Any], key: str) -> bool:
    holder = context.ledger.owner_of(_thing(setting, key))
    return holder is not None and holder.is_same_resource(context.request.owner)


def _thing(setting: MergedSetting[Any], key: str) -> Thing:
    return Thing(setting.part_kind, key)


def put_resource_parts[State](
    context: RequestContext,
    setting: MergedSetting[State],
    wanted: dict[str, Any],
    previous: Iterable[str],
    *,
    id_prefix: str,
    data: dict[str, str],
) -> Result:
    """Create or Update of a resource type made of parts: put them in place and answer its physical id."""
    resource_id = physical_id(id_prefix, context.request)
    put_parts(context, setting, wanted, previous, resource_id)
    return Result(physical_id=resource_id, data=data)


def delete_resource_parts[State](
    context: RequestContext, setting: MergedSetting[State], keys: Iterable[str], id_prefix: str
) -> None:
    """Delete of a resource type made of parts: the parts its properties name that it holds. A physical id it never
    answered is CloudFormation's own (it rolls back a Create it cancelled or stopped waiting for): the parts that
    Create claimed are found in the ledger by owner too."""
    parts = set(keys)
    if not context.answered_before(context.request.physical_id, lambda physical: physical.startswith(id_prefix)):
        parts |= {item["Name"]["S"] for item in context.owned_items(setting.part_kind)}
    remove_parts(context, setting, sorted(parts))


def physical_id(prefix: str, request: Request) -> str:
    """A resource's physical id: its setting, its stack's name and its logical id; the same for every request."""
    return f"{prefix}{stack_name(request.stack_id)}/{request.logical_id}"


def listed(value: Any) -> list[Any]:
    """A list property read leniently (a list, or its JSON text; else empty): the properties of a Delete or an
    Update's old properties name the parts to take out, and are never refused."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else []
