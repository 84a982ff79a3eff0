"""The one place that asks Lambda and ECS which container images run in this account and Region: the images
Custom::CacheImageExpiry never expires while they are in use (ProtectImagesInUse).

What is read, and why each (botocore's models; AWS API references):
- Lambda: ListFunctions with FunctionVersion ALL (every published version too: an alias may run an older one),
  50 a page (MaxItems; "ListFunctions returns a maximum of 50 items in each response"), then GetFunction for each
  function whose PackageType is Image: its Code.ResolvedImageUri names the digest Lambda resolved the image's tag
  to when the function (version) was made, the image it runs from then on.
- ECS: ListClusters; per cluster ListServices (100 a page) and DescribeServices (10 a call): the task definitions
  of every deployment (a rolling deployment runs two); DescribeTaskDefinition once per task definition: its
  containers' images, by tag (or digest, when pinned); ListTasks (desiredStatus RUNNING, ECS's default; 100 a page)
  and DescribeTasks (100 a call): each running container's imageDigest, which ECS reports once it resolved the
  image (Container.imageDigest, "The container image manifest digest").

Costs are bounded: a call per 50 functions plus one per image function; per cluster a call per 100 services, one
per 10 services, one per distinct task definition and a call per 100 running tasks. Throttling slows the reading
down (jittered backoff, as ECR's); it never fails it, until the deadline. Anything else that stops the reading
(AccessDenied, the deadline) raises WorkloadsUnknown: the sweep then deletes nothing, rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ecr_cache_provider.aws.ecr import THROTTLING, Backoff

if TYPE_CHECKING:
    from ecr_cache_provider.deadline import Deadline

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=10,
    user_agent_extra="ecr-pull-through-cache-provider",
)

FUNCTIONS_PER_PAGE = 50
ECS_PAGE = 100
SERVICES_PER_DESCRIBE = 10
TASKS_PER_DESCRIBE = 100

# <registry>/<repository>[:tag][@digest] (ECR user guide, docker-pull-ecr-image: an image is pulled by tag, or by
# digest as repository@sha256:...). The registry: <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn], or the
# dual-stack <account>.dkr-ecr[-fips].<region>.on.aws that IPv6 networks pull from (ECR user guide, ecr-requests;
# AWS General Reference, ecr.html).
IMAGE_URI = re.compile(
    r"^(?P<account>\d{12})\.(dkr\.ecr(-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?"
    r"|dkr-ecr(-fips)?\.(?P<dual_stack_region>[a-z0-9-]+)\.on\.aws)/"
    r"(?P<repository>[a-z0-9._/-]+?)(:(?P<tag>[\w][\w.-]{0,127}))?(@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


class WorkloadsUnknown(Exception):
    """The images in use could not all be read (a denial, time running out): nothing may be expired on a guess."""


@dataclass(frozen=True)
class ImageReference:
    """An image in use, in this registry: by digest (what runs), or by tag when only the tag is known."""

    repository: str
    digest: str = ""
    tag: str = ""


@dataclass
class ImagesInUse:
    """The images in use in this account and Region, each with who uses it (for the log line)."""

    references: dict[ImageReference, set[str]] = field(default_factory=dict)

    def add(self, uri: str, user: str, account: str, region: str) -> None:
        """Note an image URI when it names a repository of this account's registry in this Region."""
        match = IMAGE_URI.match(uri or "")
        if not match or match["account"] != account or (match["region"] or match["dual_stack_region"]) != region:
            return
        if not (match["digest"] or match["tag"]):
            reference = ImageReference(match["repository"], tag="latest")  # what a pull without a tag takes
        else:
            reference = ImageReference(
                match["repository"], match["digest"] or "", "" if match["digest"] else match["tag"]
            )
        self.references.setdefault(reference, set()).add(user)

    def digests(self, repository: str) -> set[str]:
        return {ref.digest for ref in self.references if ref.repository == repository and ref.digest}

    def tags(self, repository: str) -> set[str]:
        return {ref.tag for ref in self.references if ref.repository == repository and ref.tag}

    def users(self, repository: str, digests: set[str], tags: set[str]) -> list[str]:
        """Who uses the images of `repository` with these digests or tags."""
        found: set[str] = set()
        for ref, users in self.references.items():
            if ref.repository == repository and (ref.digest in digests or ref.tag in tags):
                found |= users
        return sorted(found)


class WorkloadsGateway:
    """Reads the images Lambda functions and ECS services and tasks use, within the deadline less `keep_seconds`."""

    def __init__(self, deadline: Deadline, account: str, region: str | None = None, keep_seconds: float = 0.0) -> None:
        self.deadline = deadline
        self.account = account
        self.region = region or boto3.session.Session().region_name or ""
        self.keep_seconds = keep_seconds
        self._clients: dict[str, Any] = {}

    def images_in_use(self) -> ImagesInUse:
        found = ImagesInUse()
        self._lambda_images(found)
        self._ecs_images(found)
        return found

    # Lambda

    def _lambda_images(self, found: ImagesInUse) -> None:
        for function in self._pages("lambda", "list_functions", "Functions", ("Marker", "NextMarker"),
                                    FunctionVersion="ALL", MaxItems=FUNCTIONS_PER_PAGE):  # fmt: skip
            if function.get("PackageType") != "Image":
                continue
            arn = str(function["FunctionArn"])
            name, version = str(function["FunctionName"]), str(function.get("Version") or "$LATEST")
            code = self._call("lambda", "get_function", FunctionName=name, Qualifier=version).get("Code", {})
            found.add(str(code.get("ResolvedImageUri") or code.get("ImageUri") or ""), f"lambda:{arn}", self.account,
                      self.region)  # fmt: skip

    # ECS

    def _ecs_images(self, found: ImagesInUse) -> None:
        for cluster in self._pages("ecs", "list_clusters", "clusterArns", maxResults=ECS_PAGE):
            task_definitions: dict[str, str] = {}  # task definition -> the first service using it
            services = list(self._pages("ecs", "list_services", "serviceArns", cluster=cluster, maxResults=ECS_PAGE))
            for start in range(0, len(services), SERVICES_PER_DESCRIBE):
                batch = services[start : start + SERVICES_PER_DESCRIBE]
                described = self._call("ecs", "describe_services", cluster=cluster, services=batch)
                for service in described.get("services", []):
                    for deployment in service.get("deployments") or [{"taskDefinition": service.get("taskDefinition")}]:
                        if deployment.get("taskDefinition"):
                            task_definitions.setdefault(str(deployment["taskDefinition"]), str(service["serviceArn"]))
            for task_definition, service_arn in task_definitions.items():
                described = self._call("ecs", "describe_task_definition", taskDefinition=task_definition)
                for container in described.get("taskDefinition", {}).get("containerDefinitions", []):
                    found.add(str(container.get("image", "")), f"ecs:{service_arn}", self.account, self.region)
            tasks = list(self._pages("ecs", "list_tasks", "taskArns", cluster=cluster, maxResults=ECS_PAGE))
            for start in range(0, len(tasks), TASKS_PER_DESCRIBE):
                described = self._call(
                    "ecs", "describe_tasks", cluster=cluster, tasks=tasks[start : start + TASKS_PER_DESCRIBE]
                )
                for task in described.get("tasks", []):
                    for container in task.get("containers", []):
                        image = str(container.get("image", ""))
                        digest = str(container.get("imageDigest") or "")
                        if digest:  # what runs: the repository of its image, at this digest
                            image = re.sub(r"(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$", "", image) + "@" + digest
                        found.add(image, f"ecs:{task['taskArn']}", self.account, self.region)

    # Plumbing

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            make: Any = boto3.client
            self._clients[service] = make(service, region_name=self.region or None, config=CLIENT_CONFIG)
        return self._clients[service]

    def _pages(self, service: str, method: str, key: str, marker: tuple[str, str] = ("nextToken", "nextToken"),
               **arguments: Any) -> Iterator[Any]:  # fmt: skip
        """Every item under `key` of every page; `marker` names the request's and the response's page token."""
        token_in, token_out = marker
        while True:
            response = self._call(service, method, **arguments)
            yield from response.get(key, [])
            if not response.get(token_out):
                return
            arguments[token_in] = response[token_out]

    def _call(self, service: str, method: str, **arguments: Any) -> dict[str, Any]:
        """One call, asked again after a growing pause while the service throttles it (or fails on its side)."""
        backoff = Backoff(self.deadline, self.keep_seconds)
        call: Callable[..., dict[str, Any]] = getattr(self._client(service), method)
        while True:
            if self.deadline.remaining() <= self.keep_seconds:
                raise WorkloadsUnknown(f"no time left to call {service} {method} (the rest is the sweep's)")
            try:
                return call(**arguments)
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", "Unknown"))
                status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                if (code in THROTTLING or status >= 500) and backoff.pause():
                    continue
                raise WorkloadsUnknown(
                    f"{service} {method}: {code}: {error.response.get('Error', {}).get('Message', '')}"
                ) from None
            except BotoCoreError as error:
                if backoff.pause():
                    continue
                raise WorkloadsUnknown(f"{service} {method}: {error}") from None
