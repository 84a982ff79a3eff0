"""The contract every resource type fulfils: a module with RESOURCE_TYPE, create, update and delete, each handed
one RequestContext (the request, its deadline, AWS clients made on first use). mypy checks each registered module
against ResourceType."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from ecr_cache_provider import sdk
from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.deadline import Deadline
from ecr_cache_provider.ecr import EcrGateway
from ecr_cache_provider.failures import InvalidProperties, ResourceFailure, reason_for
from ecr_cache_provider.ownership import Ledger, Owner, Thing
from ecr_cache_provider.prefix import unmanaged
from ecr_cache_provider.responder import FAILED_CREATE_PREFIX
from ecr_cache_provider.scheduler import SchedulerGateway

logger = logging.getLogger(__name__)

# Set by template.yaml: the namespaces whose repositories the provider's role may manage (comma-separated).
MANAGED_VARIABLE = "MANAGED_REPOSITORY_PREFIXES"


@dataclass(frozen=True)
class Request:
    """One CloudFormation request, as a resource type needs it."""

    request_type: str
    resource_type: str
    logical_id: str
    stack_id: str
    request_id: str
    properties: dict[str, Any]
    old_properties: dict[str, Any]
    physical_id: str
    # When CloudFormation issued the request, read from its pre-signed ResponseURL (never the URL itself).
    issued_at: datetime | None = None
    # Progress handed over by an earlier invocation of the same request; None in the first.
    progress: Progress | None = None
    region: str = field(init=False)
    account_id: str = field(init=False)

    def __post_init__(self) -> None:
        # StackId is arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>
        parts = self.stack_id.split(":")
        object.__setattr__(self, "region", parts[3] if len(parts) > 4 else "")
        object.__setattr__(self, "account_id", parts[4] if len(parts) > 4 else "")

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Request:
        return cls(
            request_type=event["RequestType"],
            resource_type=event.get("ResourceType", ""),
            logical_id=event.get("LogicalResourceId", ""),
            stack_id=event.get("StackId", ""),
            request_id=event.get("RequestId", ""),
            properties=dict(event.get("ResourceProperties") or {}),
            old_properties=dict(event.get("OldResourceProperties") or {}),
            physical_id=event.get("PhysicalResourceId", ""),
            issued_at=issued_at(event.get("ResponseURL", "")),
            progress=Progress.from_event(event),
        )

    @property
    def failed_create_id(self) -> str:
        return FAILED_CREATE_PREFIX + self.request_id

    @property
    def owner(self) -> Owner:
        """This resource, as the ownership ledger records it."""
        return Owner(self.stack_id, self.logical_id, self.request_id)


@dataclass(frozen=True)
class Result:
    """What Create and Update answer: the physical id and the attributes for Fn::GetAtt."""

    physical_id: str
    data: dict[str, str]


class RequestContext:
    """What a resource type is handed: the request, the invocation's deadline, and the AWS clients it uses.

    Each client is made on first use, so a request pays only for the clients it needs. A new client is one
    cached_property here."""

    def __init__(self, request: Request, deadline: Deadline, function_arn: str = "") -> None:
        self.request = request
        self.deadline = deadline
        self.function_arn = function_arn  # this provider function's, for what invokes it again (a schedule)

    @cached_property
    def ecr(self) -> EcrGateway:
        gateway = EcrGateway(self.deadline, self.request.region or None)
        if self.request.request_type != "Delete":  # a Delete uses only long-standing operations: never block it
            sdk.require_ecr_api(gateway.client)
        return gateway

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.deadline)

    def throttled_calls(self) -> int:
        """The ECR calls throttled in this invocation; none when the request did not use ECR."""
        gateway: EcrGateway | None = self.__dict__.get("ecr")  # made by the cached_property on first use
        return gateway.throttled_calls if gateway else 0

    def require_managed(self, namespaces: Iterable[str]) -> None:
        """Refuse, before anything changes, namespaces the provider's role may not manage: the provider stack names
        its caches and ConsumerRepositoryPrefixes in MANAGED_REPOSITORY_PREFIXES, and its role allows exactly
        those. Without the variable (the provider run outside its template) nothing is refused here."""
        managed = os.environ.get(MANAGED_VARIABLE)
        if managed is None:
            return
        holders = [name for name in managed.split(",") if name]
        outside = unmanaged(namespaces, holders)
        if outside:
            raise InvalidProperties(
                f"Namespace {outside[0]!r} is outside those this provider manages ({', '.join(holders) or 'none'}): "
                "name it in the provider stack's ConsumerRepositoryPrefixes parameter"
            )

    def owns(self, thing: Thing) -> bool:
        """Whether this resource holds the thing's claim in the ledger; a thing held by another resource, or by
        none, is left in place (and logged), never deleted."""
        holder = self.ledger.owner_of(thing)
        if holder is None or not holder.is_same_resource(self.request.owner):
            logger.warning("Left in place: not this resource's", extra={"thing": thing.key, "owner": str(holder)})
            return False
        return True

    def remove_if_owned(self, thing: Thing, remove: Callable[[], object]) -> None:
        """Remove the thing, then its claim, when this resource owns it; otherwise leave both as they are."""
        if self.owns(thing):
            remove()
            self.ledger.release(thing, self.request.owner)

    @cached_property
    def scheduler(self) -> SchedulerGateway:
        return SchedulerGateway(self.deadline, self.request.region or None)


class ResourceType(Protocol):
    """A resource-type module: its CloudFormation type name, and what each request type does."""

    RESOURCE_TYPE: str

    def create(self, context: RequestContext) -> Result: ...

    def update(self, context: RequestContext) -> Result: ...

    def delete(self, context: RequestContext) -> None: ...


@contextmanager
def leaves_behind(physical_id: str) -> Iterator[None]:
    """What fails inside may have made something already: the failure names `physical_id`, so that the rollback's
    Delete of a failed Create finds what to remove. A hand-off to a follow-up invocation is no failure: it passes."""
    try:
        yield
    except ContinueLater:
        raise
    except Exception as error:
        raise ResourceFailure(reason_for(error), physical_id) from error


def registry(*resource_types: ResourceType) -> dict[str, ResourceType]:
    """The resource types by name, as handler.py registers them."""
    return {resource_type.RESOURCE_TYPE: resource_type for resource_type in resource_types}


def issued_at(response_url: str) -> datetime | None:
    """The signing time of CloudFormation's pre-signed (SigV4) ResponseURL, or None when it has none."""
    values = parse_qs(urlsplit(response_url).query).get("X-Amz-Date")
    if not values:
        return None
    try:
        return datetime.strptime(values[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
