"""The one place that talks to Amazon ECR: the client and its retries, pagination, and error translation. One
module, though long: every ECR call in one place, sharing one client, one retry policy and one error translation.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ecr_cache_provider.failures import EcrError

if TYPE_CHECKING:
    from ecr_cache_provider.deadline import Deadline

# botocore's adaptive mode retries throttling, 5xx and connection errors and slows the client down when
# ECR throttles. Attempts and timeouts keep a call that starts inside the deadline's margin (30 s) likely to end
# inside it too.
CLIENT_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 6},
    connect_timeout=5,
    read_timeout=10,
    user_agent_extra="ecr-pull-through-cache-provider",
)

# The calls of work through a namespace (a backfill, an image expiry sweep): the listing and the calls made for each
# repository. Few attempts each, in standard mode, so that a call ECR keeps throttling comes back within seconds:
# its repository goes back in the queue and engine/batches.py pauses the whole pool. Adaptive mode's client-side rate
# limiter, shared by the threads, can hold one call for minutes under a long burst, past the time kept for handing
# the work on.
BATCH_WORK_OPERATIONS = frozenset(
    {
        "DescribeRepositories",
        "GetLifecyclePolicy",
        "PutLifecyclePolicy",
        "DeleteLifecyclePolicy",
        "GetRepositoryPolicy",
        "SetRepositoryPolicy",
        "DeleteRepositoryPolicy",
        "ListTagsForResource",
        "TagResource",
        "UntagResource",
        "PutImageTagMutability",
        # the image expiry sweep's
        "DescribeImages",
        "BatchGetImage",
        "BatchDeleteImage",
        "DeleteRepository",
    }
)
BATCH_WORK_ATTEMPTS = 3
BATCH_WORK_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": BATCH_WORK_ATTEMPTS},
    connect_timeout=5,
    read_timeout=10,
    user_agent_extra="ecr-pull-through-cache-provider",
)

# The most DescribeRepositories returns in one page.
REPOSITORIES_PER_PAGE = 1000
# The most DescribeImages returns in one page, and the most image ids BatchGetImage and BatchDeleteImage take.
IMAGES_PER_PAGE = 1000
IMAGE_IDS_PER_CALL = 100

# The manifest media types of an image index (a multi-architecture image), which reference other manifests.
INDEX_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)

# ECR may not see a secret created moments ago (SecretNotFoundException); retried with growing delays.
SECRET_RETRY_BASE_SECONDS = 1.0
SECRET_RETRY_MAX_SECONDS = 8.0

# When a call stays throttled past the client's own retries, the work waits longer and longer (with jitter) before
# trying again: 1, 2, 4 ... seconds, at most 20 (as botocore).
THROTTLE_BACKOFF_BASE_SECONDS = 1.0
THROTTLE_BACKOFF_MAX_SECONDS = 20.0

# The error codes that mean "slow down" (ECR answers ThrottlingException; the rest are botocore's list of
# throttling codes across services, in case ECR ever uses one of them).
THROTTLING = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
    }
)


# The errors that mean "nothing there", which reads and deletes take as an answer rather than a failure.
NOT_FOUND = frozenset(
    {
        "PullThroughCacheRuleNotFoundException",
        "LifecyclePolicyNotFoundException",
        "RepositoryNotFoundException",
        "TemplateNotFoundException",
        "RegistryPolicyNotFoundException",
        "RepositoryPolicyNotFoundException",
    }
)
# What a DescribeImages of named images answers when one of them is not (yet) in the repository.
IMAGE_NOT_FOUND = NOT_FOUND | {"ImageNotFoundException"}


@dataclass(frozen=True)
class RuleSettings:
    """What makes a pull-through cache rule: what CreatePullThroughCacheRule takes."""

    ecr_repository_prefix: str
    upstream_registry_url: str
    upstream_registry: str | None = None
    credential_arn: str | None = None
    custom_role_arn: str | None = None
    upstream_repository_prefix: str | None = None

    @property
    def access(self) -> tuple[str | None, str | None]:
        """How ECR authenticates upstream; UpdatePullThroughCacheRule changes this in place."""
        return (self.credential_arn, self.custom_role_arn)


@dataclass(frozen=True)
class CacheRule(RuleSettings):
    """A pull-through cache rule as ECR describes it."""

    registry_id: str = ""

    @classmethod
    def from_api(cls, rule: dict[str, Any]) -> CacheRule:
        return cls(
            ecr_repository_prefix=rule["ecrRepositoryPrefix"],
            upstream_registry_url=rule["upstreamRegistryUrl"],
            upstream_registry=rule.get("upstreamRegistry"),
            credential_arn=rule.get("credentialArn"),
            custom_role_arn=rule.get("customRoleArn"),
            upstream_repository_prefix=rule.get("upstreamRepositoryPrefix"),
            registry_id=rule.get("registryId", ""),
        )


@dataclass(frozen=True)
class Validation:
    is_valid: bool
    failure: str


# A repository's tag mutability when nobody set one: what ECR gives a repository created without a setting.
DEFAULT_TAG_MUTABILITY: tuple[str, tuple[str, ...]] = ("MUTABLE", ())


@dataclass(frozen=True)
class CreationTemplate:
    """A repository creation template, with the settings this provider manages. An empty setting is none."""

    prefix: str
    description: str = ""
    lifecycle_policy: str = ""
    repository_policy: str = ""
    resource_tags: tuple[tuple[str, str], ...] = ()
    tag_mutability: tuple[str, tuple[str, ...]] = DEFAULT_TAG_MUTABILITY
    encryption: tuple[tuple[str, str], ...] = ()  # encryptionType (and kmsKey); none means ECR's default, AES256
    custom_role_arn: str = ""
    applied_for: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, template: dict[str, Any]) -> CreationTemplate:
        return cls(
            prefix=template["prefix"],
            description=template.get("description", ""),
            lifecycle_policy=template.get("lifecyclePolicy", ""),
            repository_policy=template.get("repositoryPolicy", ""),
            resource_tags=tuple((tag["Key"], tag["Value"]) for tag in template.get("resourceTags", ())),
            tag_mutability=_tag_mutability(template),
            encryption=tuple(sorted((template.get("encryptionConfiguration") or {}).items())),
            custom_role_arn=template.get("customRoleArn", ""),
            applied_for=tuple(template.get("appliedFor", ())),
        )


@dataclass(frozen=True)
class RepositoryRecord:
    """A repository as DescribeRepositories reports it: what the settings backfill reads besides its policies."""

    name: str
    arn: str
    tag_mutability: tuple[str, tuple[str, ...]] = DEFAULT_TAG_MUTABILITY
    encryption: tuple[tuple[str, str], ...] = (("encryptionType", "AES256"),)

    @classmethod
    def from_api(cls, repository: dict[str, Any]) -> RepositoryRecord:
        return cls(
            name=repository["repositoryName"],
            arn=repository["repositoryArn"],
            tag_mutability=_tag_mutability(repository),
            encryption=tuple(sorted((repository.get("encryptionConfiguration") or {}).items())),
        )


@dataclass(frozen=True)
class ScanningConfiguration:
    """The registry's scanning: BASIC or ENHANCED, and each rule's wildcard filters by scan frequency."""

    scan_type: str
    rules: dict[str, tuple[str, ...]]


class Backoff:
    """Pauses before trying again what ECR throttled: jittered exponential, never past the deadline less `keep`."""

    def __init__(self, deadline: Deadline, keep_seconds: float = 0.0) -> None:
        self.deadline = deadline
        self.keep_seconds = keep_seconds
        self.attempts = 0

    def pause(self) -> bool:
        """Wait before the next attempt; False, without waiting, when the deadline leaves no time for one."""
        room = self.deadline.remaining() - self.keep_seconds
        if room <= 0:
            return False
        time.sleep(min(room, _jittered(THROTTLE_BACKOFF_BASE_SECONDS, THROTTLE_BACKOFF_MAX_SECONDS, self.attempts)))
        self.attempts += 1
        return True

    def reset(self) -> None:
        """ECR answered again: the next pause starts short."""
        self.attempts = 0


@dataclass(frozen=True)
class ImageRecord:
    """One image (manifest) of a repository, as DescribeImages reports it."""

    digest: str
    pushed_at: datetime
    last_pulled_at: datetime | None = None
    size_bytes: int = 0
    tags: tuple[str, ...] = ()
    media_type: str = ""
    status: str = "ACTIVE"

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def last_used_at(self) -> datetime:
        """The last recorded pull; for an image never pulled since it was cached, when it was cached."""
        return self.last_pulled_at or self.pushed_at

    @classmethod
    def from_api(cls, image: dict[str, Any]) -> ImageRecord:
        return cls(
            digest=image["imageDigest"],
            pushed_at=image["imagePushedAt"],
            last_pulled_at=image.get("lastRecordedPullTime"),
            size_bytes=int(image.get("imageSizeInBytes") or 0),
            tags=tuple(image.get("imageTags", ())),
            media_type=image.get("imageManifestMediaType") or image.get("artifactMediaType") or "",
            status=image.get("imageStatus", "ACTIVE"),
        )


@dataclass(frozen=True)
class DeletedImages:
    """What BatchDeleteImage did: the digests deleted, and per image the failure ECR reported."""

    deleted: tuple[str, ...] = ()
    failures: tuple[tuple[str, str], ...] = ()  # (digest, "failureCode: failureReason")


class EcrGateway:
    """ECR operations the resource types need, each stopping in time for the Lambda to answer.

    Every throttled response is counted, including those botocore retried by itself (`throttled_calls`)."""

    def __init__(self, deadline: Deadline, region: str | None = None, client: Any | None = None) -> None:
        self.deadline = deadline
        self.region = region
        self.throttled_calls = 0
        self._count_lock = threading.Lock()
        self.client = self._counting(client or boto3.client("ecr", region_name=region, config=CLIENT_CONFIG))
        self._batch_work_client = self.client if client else None

    @property
    def batch_work_client(self) -> Any:
        """The client of the backfill's calls, made on first use (before the backfill's threads start)."""
        if self._batch_work_client is None:
            made = boto3.client("ecr", region_name=self.region, config=BATCH_WORK_CLIENT_CONFIG)
            self._batch_work_client = self._counting(made)
        return self._batch_work_client

    def _counting(self, client: Any) -> Any:
        # needs-retry is emitted after every attempt, the ones botocore retries and the last one alike.
        client.meta.events.register("needs-retry.ecr", self._count_throttled)
        return client

    # Pull-through cache rules

    def find_rule(self, prefix: str, backoff: Backoff | None = None) -> CacheRule | None:
        """The rule at `prefix`; None when there is none. With a `backoff`, throttling slows the call down."""
        response = self._call_unless_missing("DescribePullThroughCacheRules", backoff, ecrRepositoryPrefixes=[prefix])
        rules = [CacheRule.from_api(rule) for rule in (response or {}).get("pullThroughCacheRules", [])]
        return next((rule for rule in rules if rule.ecr_repository_prefix == prefix), None)

    def rule_prefixes(self) -> list[str]:
        """The prefix of every pull-through cache rule of the registry (pages of up to 1,000)."""
        prefixes: list[str] = []
        arguments: dict[str, Any] = {"maxResults": 1000}
        while True:
            response = self._call("DescribePullThroughCacheRules", **arguments)
            prefixes += [rule["ecrRepositoryPrefix"] for rule in response.get("pullThroughCacheRules", [])]
            if not response.get("nextToken"):
                return sorted(prefixes)
            arguments["nextToken"] = response["nextToken"]

    def create_rule(self, rule: RuleSettings) -> CacheRule:
        arguments = _present(
            ecrRepositoryPrefix=rule.ecr_repository_prefix,
            upstreamRegistryUrl=rule.upstream_registry_url,
            upstreamRegistry=rule.upstream_registry,
            credentialArn=rule.credential_arn,
            customRoleArn=rule.custom_role_arn,
            upstreamRepositoryPrefix=rule.upstream_repository_prefix,
        )
        return CacheRule.from_api(self._call_retrying_secret("CreatePullThroughCacheRule", **arguments))

    def update_rule_access(self, rule: RuleSettings) -> None:
        """Set the rule's credential and role to those of `rule`; its upstream cannot change in place."""
        access = _present(credentialArn=rule.credential_arn, customRoleArn=rule.custom_role_arn)
        self._call_retrying_secret(
            "UpdatePullThroughCacheRule", ecrRepositoryPrefix=rule.ecr_repository_prefix, **access
        )

    def delete_rule(self, prefix: str) -> bool:
        """Delete the rule; False when there was none."""
        return self._call_unless_missing("DeletePullThroughCacheRule", ecrRepositoryPrefix=prefix) is not None

    def validate_rule(self, prefix: str, backoff: Backoff | None = None) -> Validation:
        """Whether ECR can log in upstream with the rule's credential, and if not, its reason. With a `backoff`,
        throttling slows the call down."""
        arguments = {"ecrRepositoryPrefix": prefix}
        response = (
            self._call_through_transient_errors(backoff, "ValidatePullThroughCacheRule", **arguments)
            if backoff
            else self._call("ValidatePullThroughCacheRule", **arguments)
        )
        return Validation(bool(response.get("isValid")), response.get("failure") or "")

    # Repositories and their lifecycle policies

    def repository_names(self, keep_seconds: float = 0.0) -> list[str]:
        """The names of every repository in the registry, sorted (see `repositories`)."""
        return [repository.name for repository in self.repositories(keep_seconds)]

    def repositories(self, keep_seconds: float = 0.0) -> list[RepositoryRecord]:
        """Every repository in the registry, sorted by name. A page ECR keeps throttling is asked for again,
        after a pause, until the deadline less `keep_seconds`; then the transient EcrError is raised."""
        found: list[RepositoryRecord] = []
        arguments: dict[str, Any] = {"maxResults": REPOSITORIES_PER_PAGE}
        backoff = Backoff(self.deadline, keep_seconds)
        while True:
            response = self._call_through_transient_errors(backoff, "DescribeRepositories", **arguments)
            found += [RepositoryRecord.from_api(repository) for repository in response.get("repositories", [])]
            if not response.get("nextToken"):
                break
            arguments["nextToken"] = response["nextToken"]
        return sorted(found, key=lambda repository: repository.name)

    def repository(self, name: str) -> RepositoryRecord | None:
        """One repository as ECR describes it now; None when it is gone."""
        response = self._call_unless_missing("DescribeRepositories", repositoryNames=[name])
        found = (response or {}).get("repositories", [])
        return RepositoryRecord.from_api(found[0]) if found else None

    def delete_repository(self, repository: str) -> bool:
        """Delete an empty repository (never with force); False when it is not empty or already gone. Asked again
        while ECR throttles it, as the deletions that emptied it are."""
        try:
            deleted = self._call_unless_missing("DeleteRepository", Backoff(self.deadline), repositoryName=repository)
            return deleted is not None
        except EcrError as error:
            if error.code == "RepositoryNotEmptyException":
                return False
            raise

    def delete_repository_with_images(self, repository: str) -> bool:
        """Delete the repository and every image in it (force: "have Amazon ECR delete all of its contents on your
        behalf", API reference, DeleteRepository); False when it is already gone. A throttled call raises the
        transient EcrError: the batch work tries the repository again after a pause."""
        return self._call_unless_missing("DeleteRepository", repositoryName=repository, force=True) is not None

    # Images

    def images(self, repository: str) -> list[ImageRecord]:
        """Every image of the repository, whatever its status, 1,000 a page; none when the repository is gone.

        Without filter.imageStatus ECR returns only ACTIVE images (botocore model, DescribeImagesFilter.imageStatus):
        an index whose manifests a lifecycle policy archived would look like an index alone. ANY returns them all,
        so that an index is judged with every manifest it references."""
        found: list[ImageRecord] = []
        arguments: dict[str, Any] = {
            "repositoryName": repository,
            "maxResults": IMAGES_PER_PAGE,
            "filter": {"imageStatus": "ANY"},
        }
        while True:
            response = self._call_unless_missing("DescribeImages", **arguments)
            if response is None:
                return found
            found += [ImageRecord.from_api(image) for image in response.get("imageDetails", [])]
            if not response.get("nextToken"):
                return found
            arguments["nextToken"] = response["nextToken"]

    def index_children(self, repository: str, index_digests: list[str]) -> dict[str, tuple[str, ...]]:
        """The digests of the manifests each image index references, read from the index manifests
        (BatchGetImage, 100 a call). An index ECR could not return is missing from the answer."""
        children: dict[str, tuple[str, ...]] = {}
        for start in range(0, len(index_digests), IMAGE_IDS_PER_CALL):
            batch = index_digests[start : start + IMAGE_IDS_PER_CALL]
            response = self._call_unless_missing(
                "BatchGetImage",
                repositoryName=repository,
                imageIds=[{"imageDigest": digest} for digest in batch],
                acceptedMediaTypes=list(INDEX_MEDIA_TYPES),
            )
            for image in (response or {}).get("images", []):
                manifest = json.loads(image.get("imageManifest") or "{}")
                references = tuple(entry["digest"] for entry in manifest.get("manifests", []) if "digest" in entry)
                children[image["imageId"]["imageDigest"]] = references
        return children

    # Pulling through the cache (Custom::CacheWarmUp)

    def authorization(self) -> tuple[str, str]:
        """The registry's endpoint and a token for its HTTP API, as GetAuthorizationToken gives them (the token is
        valid 12 hours: ECR user guide, registry_auth.html)."""
        data = self._call("GetAuthorizationToken")["authorizationData"][0]
        return str(data["proxyEndpoint"]), str(data["authorizationToken"])

    def images_present(self, repository: str, digests: list[str]) -> set[str]:
        """Which of the digests DescribeImages reports (ACTIVE). One call a digest: ECR fails a whole call with
        ImageNotFoundException for one image it does not have."""
        present = set()
        for digest in digests:
            image_ids = [{"imageDigest": digest}]
            response = self._call_unless_missing(
                "DescribeImages", missing=IMAGE_NOT_FOUND, repositoryName=repository, imageIds=image_ids
            )
            present |= {image["imageDigest"] for image in (response or {}).get("imageDetails", [])}
        return present

    def layers_available(self, repository: str, digests: list[str]) -> set[str]:
        """Which of the layer digests BatchCheckLayerAvailability reports AVAILABLE (100 a call)."""
        available: set[str] = set()
        for start in range(0, len(digests), IMAGE_IDS_PER_CALL):
            batch = digests[start : start + IMAGE_IDS_PER_CALL]
            response = self._call_unless_missing(
                "BatchCheckLayerAvailability", repositoryName=repository, layerDigests=batch
            )
            layers = (response or {}).get("layers", [])
            available |= {layer["layerDigest"] for layer in layers if layer.get("layerAvailability") == "AVAILABLE"}
        return available

    def delete_images(self, repository: str, digests: list[str]) -> DeletedImages:
        """Delete images by digest, 100 a call. ECR reports a failure per image in its answer (an image an index
        still references, one deleted meanwhile): they are returned, never raised. A call ECR throttles is asked
        again after a pause, so that a repository is not left half swept (until the deadline: then it raises)."""
        deleted: list[str] = []
        failures: list[tuple[str, str]] = []
        backoff = Backoff(self.deadline)
        for start in range(0, len(digests), IMAGE_IDS_PER_CALL):
            batch = digests[start : start + IMAGE_IDS_PER_CALL]
            response = self._call_unless_missing(
                "BatchDeleteImage", backoff, repositoryName=repository, imageIds=[{"imageDigest": d} for d in batch]
            )
            if response is None:
                break  # the repository is gone, and its images with it
            deleted += sorted(
                {image["imageDigest"] for image in response.get("imageIds", []) if "imageDigest" in image}
            )
            failures += [
                (
                    failure.get("imageId", {}).get("imageDigest", ""),
                    f"{failure.get('failureCode', 'Unknown')}: {failure.get('failureReason', '')}",
                )
                for failure in response.get("failures", [])
            ]
        return DeletedImages(tuple(deleted), tuple(failures))

    def lifecycle_policy(self, repository: str) -> str | None:
        """The repository's lifecycle policy text; None when it has none (or the repository is gone)."""
        response = self._call_unless_missing("GetLifecyclePolicy", repositoryName=repository)
        return str(response["lifecyclePolicyText"]) if response else None

    def put_lifecycle_policy(self, repository: str, text: str) -> None:
        self._call("PutLifecyclePolicy", repositoryName=repository, lifecyclePolicyText=text)

    def delete_lifecycle_policy(self, repository: str) -> None:
        self._call_unless_missing("DeleteLifecyclePolicy", repositoryName=repository)

    def repository_policy(self, repository: str) -> str | None:
        """The repository's policy text; None when it has none (or the repository is gone)."""
        response = self._call_unless_missing("GetRepositoryPolicy", repositoryName=repository)
        return str(response["policyText"]) if response else None

    def set_repository_policy(self, repository: str, text: str) -> None:
        self._call("SetRepositoryPolicy", repositoryName=repository, policyText=text)

    def delete_repository_policy(self, repository: str) -> None:
        self._call_unless_missing("DeleteRepositoryPolicy", repositoryName=repository)

    def tags(self, arn: str) -> dict[str, str]:
        """The resource's tags by key; none when it is gone."""
        response = self._call_unless_missing("ListTagsForResource", resourceArn=arn)
        return {tag["Key"]: tag["Value"] for tag in (response or {}).get("tags", [])}

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        self._call("TagResource", resourceArn=arn, tags=[{"Key": key, "Value": value} for key, value in tags.items()])

    def untag(self, arn: str, keys: list[str]) -> None:
        self._call_unless_missing("UntagResource", resourceArn=arn, tagKeys=keys)

    def put_tag_mutability(self, repository: str, mutability: tuple[str, tuple[str, ...]]) -> None:
        setting, filters = mutability
        self._call("PutImageTagMutability", repositoryName=repository, **_mutability_arguments(setting, filters))

    # Repository creation templates

    def find_template(self, prefix: str, backoff: Backoff | None = None) -> CreationTemplate | None:
        """The template for `prefix`; None when there is none. With a `backoff`, throttling slows the call down."""
        response = self._call_unless_missing("DescribeRepositoryCreationTemplates", backoff, prefixes=[prefix]) or {}
        templates = [
            CreationTemplate.from_api(template) for template in response.get("repositoryCreationTemplates", [])
        ]
        return next((template for template in templates if template.prefix == prefix), None)

    def create_template(self, template: CreationTemplate) -> None:
        applied_for = list(template.applied_for)
        self._call("CreateRepositoryCreationTemplate", **_template_arguments(template), appliedFor=applied_for)

    def update_template(self, template: CreationTemplate, current: CreationTemplate | None = None) -> None:
        """Set every setting of the template to `template`'s: those it has, and those `current` (the template as
        it is) has and it has not, which are cleared. What the template applies to stays as it was made."""
        self._call("UpdateRepositoryCreationTemplate", **_template_arguments(template, current))

    def delete_template(self, prefix: str) -> None:
        self._call_unless_missing("DeleteRepositoryCreationTemplate", prefix=prefix)

    # Registry-wide settings: one of each per registry, which a write replaces whole

    def registry_policy(self) -> str | None:
        """The registry policy's text; None when the registry has none."""
        response = self._call_unless_missing("GetRegistryPolicy")
        return str(response["policyText"]) if response else None

    def put_registry_policy(self, text: str) -> None:
        self._call("PutRegistryPolicy", policyText=text)

    def delete_registry_policy(self) -> None:
        self._call_unless_missing("DeleteRegistryPolicy")

    def scanning_configuration(self) -> ScanningConfiguration:
        configuration = self._call("GetRegistryScanningConfiguration").get("scanningConfiguration", {})
        rules = {
            rule["scanFrequency"]: tuple(item["filter"] for item in rule.get("repositoryFilters", []))
            for rule in configuration.get("rules", [])
        }
        return ScanningConfiguration(configuration.get("scanType", "BASIC"), rules)

    def put_scanning_configuration(self, configuration: ScanningConfiguration) -> None:
        rules = [
            {
                "scanFrequency": frequency,
                "repositoryFilters": [{"filter": f, "filterType": "WILDCARD"} for f in filters],
            }
            for frequency, filters in configuration.rules.items()
        ]
        self._call("PutRegistryScanningConfiguration", scanType=configuration.scan_type, rules=rules)

    # Plumbing

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        self.deadline.check(f"calling {operation}")
        client = self.batch_work_client if operation in BATCH_WORK_OPERATIONS else self.client
        method: Callable[..., dict[str, Any]] = getattr(client, _snake_case(operation))
        try:
            return method(**arguments)
        except ClientError as error:
            details = error.response.get("Error", {})
            code = str(details.get("Code", "Unknown"))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            transient = code in THROTTLING or status >= 500
            raise EcrError(code, str(details.get("Message", "")), transient=transient) from None
        except BotoCoreError as error:
            transient = isinstance(error, BotoConnectionError | HTTPClientError)  # no answer reached us
            raise EcrError(type(error).__name__, str(error), transient=transient) from None

    def _call_through_transient_errors(self, backoff: Backoff, operation: str, **arguments: Any) -> dict[str, Any]:
        """A call that is only worth repeating (a read): asked again after each pause while ECR throttles."""
        while True:
            try:
                response = self._call(operation, **arguments)
            except EcrError as error:
                if not error.transient or not backoff.pause():
                    raise
            else:
                backoff.reset()
                return response

    def _count_throttled(self, response: tuple[Any, dict[str, Any]] | None = None, **kwargs: Any) -> None:
        """botocore event hook: count a throttled attempt. Returns None, so it never changes botocore's retries."""
        if response is not None and response[1].get("Error", {}).get("Code") in THROTTLING:
            with self._count_lock:
                self.throttled_calls += 1

    def _call_unless_missing(
        self, operation: str, backoff: Backoff | None = None, missing: frozenset[str] = NOT_FOUND, **arguments: Any
    ) -> dict[str, Any] | None:
        """The call's response, or None when ECR says what it names does not exist. With a `backoff`, a call ECR
        throttles (or fails transiently) is asked again after each pause."""
        try:
            if backoff is not None:
                return self._call_through_transient_errors(backoff, operation, **arguments)
            return self._call(operation, **arguments)
        except EcrError as error:
            if error.code in missing:
                return None
            raise

    def _call_retrying_secret(self, operation: str, **arguments: Any) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                return self._call(operation, **arguments)
            except EcrError as error:
                longest = min(SECRET_RETRY_MAX_SECONDS, SECRET_RETRY_BASE_SECONDS * 2**attempt)
                if error.code != "SecretNotFoundException" or self.deadline.remaining() < longest * 2:
                    raise
            time.sleep(_jittered(SECRET_RETRY_BASE_SECONDS, SECRET_RETRY_MAX_SECONDS, attempt))
            attempt += 1


def _jittered(base: float, cap: float, attempt: int) -> float:
    """Exponential backoff with "equal jitter": between half and all of base * 2**attempt, at most cap."""
    delay: float = min(cap, base * 2.0**attempt)
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography


def _snake_case(operation: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in operation).lstrip("_")


def _present(**values: str | None) -> dict[str, str]:
    """The arguments that have a value: ECR takes an absent setting as unset, an empty one as invalid."""
    return {name: value for name, value in values.items() if value}


def _template_arguments(template: CreationTemplate, current: CreationTemplate | None = None) -> dict[str, Any]:
    """What a template call sends: the prefix, description and lifecycle policy always (as this provider always
    has), and each other setting when it is set, or when `current` has it and it must be cleared."""
    unset = _template_settings(CreationTemplate(prefix=template.prefix))
    now = _template_settings(current) if current else unset
    return {
        name: value
        for name, value in _template_settings(template).items()
        if name in ("prefix", "description", "lifecyclePolicy")
        or value != unset.get(name)
        or now.get(name) != unset.get(name)
    }


def _template_settings(template: CreationTemplate) -> dict[str, Any]:
    """The template's settings as ECR takes them. Empty policies clear them (both may be 0 characters); an empty
    tag list clears the tags; MUTABLE clears the tag mutability, AES256 the encryption, an empty role the role.
    Exclusion filters (botocore 1.39.11) are present only when set."""
    setting, filters = template.tag_mutability
    arguments: dict[str, Any] = {
        "prefix": template.prefix,
        "description": template.description,
        "lifecyclePolicy": template.lifecycle_policy,
        "repositoryPolicy": template.repository_policy,
        "resourceTags": [{"Key": key, "Value": value} for key, value in template.resource_tags],
        **_mutability_arguments(setting, filters),
        "encryptionConfiguration": dict(template.encryption or (("encryptionType", "AES256"),)),
        "customRoleArn": template.custom_role_arn,
    }
    return arguments


def _mutability_arguments(setting: str, filters: tuple[str, ...]) -> dict[str, Any]:
    arguments: dict[str, Any] = {"imageTagMutability": setting}
    if filters:
        arguments["imageTagMutabilityExclusionFilters"] = [{"filter": f, "filterType": "WILDCARD"} for f in filters]
    return arguments


def _tag_mutability(described: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """A repository's or template's tag mutability and its exclusion filters, as one comparable value."""
    filters = tuple(item["filter"] for item in described.get("imageTagMutabilityExclusionFilters") or ())
    return (described.get("imageTagMutability") or "MUTABLE", filters)
