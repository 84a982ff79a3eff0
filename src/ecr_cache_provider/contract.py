"""The contract every resource type fulfils: a module with RESOURCE_TYPE, create, update and delete, each handed
one RequestContext (the request, its deadline, AWS clients made on first use). mypy checks each module types/
serves against ResourceType.

Invariants: a request becomes its resource's current one before its first call to AWS, and stops at its next step
once a newer request took over or CloudFormation stopped waiting (its ServiceTimeout, counted from the signing time
of its ResponseURL); what fails after something was made names it (`leaves_behind`), so the rollback finds it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from ecr_cache_provider.aws import sdk, stacks
from ecr_cache_provider.aws.ecr import EcrGateway
from ecr_cache_provider.aws.ledger import Ledger, Owner, ResourceRecord, Thing
from ecr_cache_provider.aws.scheduler import SchedulerGateway
from ecr_cache_provider.continuation import ContinueLater, Progress
from ecr_cache_provider.deadline import Deadline
from ecr_cache_provider.failures import InvalidProperties, ResourceFailure, Superseded, reason_for
from ecr_cache_provider.grammar.prefix import unmanaged
from ecr_cache_provider.responder import FAILED_CREATE_PREFIX

logger = logging.getLogger(__name__)

# How long CloudFormation waits for an answer when a custom resource sets no ServiceTimeout (CloudFormation template
# reference, AWS::CloudFormation::CustomResource, ServiceTimeout: 1 to 3,600 seconds, 3,600 by default).
DEFAULT_SERVICE_TIMEOUT_SECONDS = 3600
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
        return Owner(self.stack_id, self.logical_id, self.request_id, self.resource_type)

    @property
    def answer_deadline(self) -> datetime | None:
        """When CloudFormation stops waiting for the answer: ServiceTimeout after it issued the request (its
        ResponseURL's signing time). After that the stack rolls back without it; None when the issue time is
        unknown."""
        if self.issued_at is None:
            return None
        try:
            seconds = int(str(self.properties.get("ServiceTimeout", DEFAULT_SERVICE_TIMEOUT_SECONDS)))
        except ValueError:
            seconds = DEFAULT_SERVICE_TIMEOUT_SECONDS
        return self.issued_at + timedelta(seconds=seconds)


@dataclass(frozen=True)
class Result:
    """What Create and Update answer: the physical id and the attributes for Fn::GetAtt; and the state, besides its
    properties, that the resource declared (a rule's or template's settings), kept in its ledger record."""

    physical_id: str
    data: dict[str, str]
    declared: dict[str, Any] = field(default_factory=dict)


class RequestContext:
    """What a resource type is handed: the request, the invocation's deadline, and the AWS clients it uses.

    Each client is made on first use, so a request pays only for the clients it needs. A new client is one
    cached_property here. Before the first client is handed out, the request becomes its resource's current one
    (`start`): a request refused for its properties (read before any client) has asked AWS nothing."""

    def __init__(self, request: Request, deadline: Deadline, function_arn: str = "") -> None:
        self.request = request
        self.deadline = deadline
        self.function_arn = function_arn  # this provider function's, for what invokes it again (a schedule)
        self.record: ResourceRecord | None = None  # the resource's record, as begin() or ensure_current() read it
        self.reason = ""  # what a Delete that succeeded tells CloudFormation (its Reason), when it has something to
        self._started = False

    @cached_property
    def ecr(self) -> EcrGateway:
        self.start()
        gateway = EcrGateway(self.deadline, self.request.region or None)
        if self.request.request_type != "Delete":  # a Delete uses only long-standing operations: never block it
            sdk.require_ecr_api(gateway.client)
        return gateway

    @cached_property
    def ledger(self) -> Ledger:
        ledger = Ledger(self.deadline)
        self.__dict__["ledger"] = ledger  # what start() uses, before the property has returned
        self.start()
        return ledger

    def start(self) -> None:
        """Once per invocation, before anything is asked of AWS: the first invocation of the request makes it the
        resource's current one (`begin`), a follow-up checks it still is (`ensure_current`)."""
        if self._started:
            return
        self._started = True
        try:
            if self.request.progress is None:
                self.begin()
            else:
                self.ensure_current()
        except Superseded:
            raise
        except ResourceFailure as error:
            if self.request.request_type != "Delete":
                raise
            # A Delete is the way out: a ledger that cannot record it (no dynamodb:UpdateItem, say) does not stop
            # it. Whatever it could have stopped could not have claimed anything either (claims need the same).
            logger.warning("The Delete goes on unrecorded", extra={"error": str(error)})

    # Which request is the resource's current one

    def begin(self) -> None:
        """Make this request the resource's current one before it changes anything (its first invocation): every
        older request's work stops at its next step. Raises Superseded when a newer request came first or
        CloudFormation no longer waits for this one."""
        self._ensure_awaited()
        self.record = self.ledger.begin(
            self.request.owner,
            self.request.request_type,
            self.request.issued_at or datetime.now(UTC),
            stack_undoing=lambda: stacks.is_undoing(self.stack_status),
        )

    def ensure_current(self) -> None:
        """One read before each step of continued work: raises Superseded when a newer request of the resource took
        over, the resource was deleted, or CloudFormation stopped waiting for this request's answer."""
        self._ensure_awaited()
        self.record = self.ledger.ensure_current(self.request.owner, self.request.request_type)

    def _ensure_awaited(self) -> None:
        deadline = self.request.answer_deadline
        if deadline is not None and datetime.now(UTC) > deadline:
            raise Superseded(
                "CloudFormation stopped waiting for this request (its ServiceTimeout passed): it changes nothing more"
            )

    def answered_before(self, physical_id: str, looks_issued: Callable[[str], bool]) -> bool:
        """Whether the provider answered `physical_id` for this resource. The resource's record knows every id
        answered since its Create; for a resource made before the ledger recorded them, an id of the form the type
        issues (`looks_issued`) counts as answered. An id neither answered nor of that form is CloudFormation's own:
        it sends one with the Delete that rolls back a Create it cancelled, or stopped waiting for, before the
        Create answered (cloudformation-coverage-roadmap issue 1814)."""
        ledger = self.ledger  # the request starts (and reads the record) on first use
        record = self.record or ledger.resource(self.request.owner)
        if record is not None and record.issued_complete:
            return physical_id in record.issued
        return looks_issued(physical_id)

    def still_current(self, undo: Callable[[], object]) -> None:
        """After making something: when the request was superseded meanwhile (a Delete of the resource came in,
        CloudFormation stopped waiting), undo it, then raise Superseded: the newer request may already have
        looked for what this one made, and missed it."""
        try:
            self.ensure_current()
        except Superseded:
            undo()
            raise

    def owned_items(self, *kinds: str) -> list[dict[str, Any]]:
        """Every ledger item of these kinds this resource holds that its own resource type recorded."""
        found = []
        for page in self.ledger.owned(self.request.owner, kinds):
            found += [item for item in page if item.get("ResourceType", {}).get("S") == self.request.resource_type]
        return found

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
        self.start()
        return SchedulerGateway(self.deadline, self.request.region or None)

    @cached_property
    def stack_status(self) -> str | None:
        """The stack's status (DescribeStacks), read once; None when CloudFormation cannot say."""
        return stacks.stack_status(self.request.stack_id, self.deadline, self.request.region or None)


class ResourceType(Protocol):
    """A resource-type module: its CloudFormation type name, and what each request type does."""

    RESOURCE_TYPE: str

    def create(self, context: RequestContext) -> Result: ...

    def update(self, context: RequestContext) -> Result: ...

    def delete(self, context: RequestContext) -> None: ...


@contextmanager
def leaves_behind(physical_id: str) -> Iterator[None]:
    """What fails inside may have made something already: the failure names `physical_id`, so that the rollback's
    Delete of a failed Create finds what to remove. A hand-off to a follow-up invocation is no failure: it passes.
    A request a newer one overtook stays Superseded, so that its caller stops rather than undo as after a failure."""
    try:
        yield
    except ContinueLater:
        raise
    except Superseded as superseded:
        raise Superseded(str(superseded), physical_id) from superseded
    except Exception as error:
        raise ResourceFailure(reason_for(error), physical_id) from error


def issued_at(response_url: str) -> datetime | None:
    """The signing time of CloudFormation's pre-signed (SigV4) ResponseURL, or None when it has none."""
    values = parse_qs(urlsplit(response_url).query).get("X-Amz-Date")
    if not values:
        return None
    try:
        return datetime.strptime(values[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
