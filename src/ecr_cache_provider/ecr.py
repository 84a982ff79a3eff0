"""The one place that talks to Amazon ECR: the client and its retries, pagination, and error translation."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ecr_cache_provider.resource import ResourceFailure

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

# The most DescribeRepositories returns in one page.
REPOSITORIES_PER_PAGE = 1000

# ECR may not see a secret created moments ago (SecretNotFoundException); retried with growing delays.
SECRET_RETRY_BASE_SECONDS = 1.0
SECRET_RETRY_MAX_SECONDS = 8.0


# The errors that mean "nothing there", which reads and deletes take as an answer rather than a failure.
NOT_FOUND = frozenset(
    {
        "PullThroughCacheRuleNotFoundException",
        "LifecyclePolicyNotFoundException",
        "RepositoryNotFoundException",
        "TemplateNotFoundException",
    }
)


class EcrError(ResourceFailure):
    """An ECR error that is the answer, not a transient fault."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


@dataclass(frozen=True)
class CacheRule:
    """A pull-through cache rule as ECR describes it."""

    ecr_repository_prefix: str
    upstream_registry_url: str
    upstream_registry: str | None
    credential_arn: str | None
    custom_role_arn: str | None
    upstream_repository_prefix: str | None
    registry_id: str
    created_at: datetime | None

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
            created_at=rule.get("createdAt"),
        )


@dataclass(frozen=True)
class Validation:
    is_valid: bool
    failure: str


class EcrGateway:
    """ECR operations the resource types need, each stopping in time for the Lambda to answer."""

    def __init__(self, deadline: Deadline, region: str | None = None, client: Any | None = None) -> None:
        self.deadline = deadline
        self.client = client or boto3.client("ecr", region_name=region or None, config=CLIENT_CONFIG)

    # Pull-through cache rules

    def find_rule(self, prefix: str) -> CacheRule | None:
        response = self._call_unless_missing("DescribePullThroughCacheRules", ecrRepositoryPrefixes=[prefix])
        rules = [CacheRule.from_api(rule) for rule in (response or {}).get("pullThroughCacheRules", [])]
        return next((rule for rule in rules if rule.ecr_repository_prefix == prefix), None)

    def create_rule(self, **arguments: str) -> CacheRule:
        response = self._call_retrying_secret("CreatePullThroughCacheRule", **arguments)
        return CacheRule.from_api(response)

    def update_rule(self, prefix: str, **arguments: str) -> None:
        self._call_retrying_secret("UpdatePullThroughCacheRule", ecrRepositoryPrefix=prefix, **arguments)

    def delete_rule(self, prefix: str) -> bool:
        """Delete the rule; False when there was none."""
        return self._call_unless_missing("DeletePullThroughCacheRule", ecrRepositoryPrefix=prefix) is not None

    def validate_rule(self, prefix: str) -> Validation:
        response = self._call("ValidatePullThroughCacheRule", ecrRepositoryPrefix=prefix)
        return Validation(bool(response.get("isValid")), response.get("failure") or "")

    # Repositories and their lifecycle policies

    def repository_names(self) -> list[str]:
        """The names of every repository in the registry, sorted."""
        names: list[str] = []
        arguments: dict[str, Any] = {"maxResults": REPOSITORIES_PER_PAGE}
        while True:
            response = self._call("DescribeRepositories", **arguments)
            names += [repository["repositoryName"] for repository in response.get("repositories", [])]
            if not response.get("nextToken"):
                break
            arguments["nextToken"] = response["nextToken"]
        return sorted(names)

    def lifecycle_policy(self, repository: str) -> str | None:
        """The repository's lifecycle policy text; None when it has none (or the repository is gone)."""
        response = self._call_unless_missing("GetLifecyclePolicy", repositoryName=repository)
        return str(response["lifecyclePolicyText"]) if response else None

    def put_lifecycle_policy(self, repository: str, text: str) -> None:
        self._call("PutLifecyclePolicy", repositoryName=repository, lifecyclePolicyText=text)

    def delete_lifecycle_policy(self, repository: str) -> None:
        self._call_unless_missing("DeleteLifecyclePolicy", repositoryName=repository)

    # Repository creation templates

    def find_template(self, prefix: str) -> dict[str, Any] | None:
        response = self._call("DescribeRepositoryCreationTemplates", prefixes=[prefix])
        templates = response.get("repositoryCreationTemplates", [])
        return next((template for template in templates if template.get("prefix") == prefix), None)

    def create_template(self, prefix: str, **settings: Any) -> None:
        self._call("CreateRepositoryCreationTemplate", prefix=prefix, **settings)

    def update_template(self, prefix: str, **settings: Any) -> None:
        self._call("UpdateRepositoryCreationTemplate", prefix=prefix, **settings)

    def delete_template(self, prefix: str) -> None:
        self._call_unless_missing("DeleteRepositoryCreationTemplate", prefix=prefix)

    # Plumbing

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        self.deadline.check(f"calling {operation}")
        method: Callable[..., dict[str, Any]] = getattr(self.client, _snake_case(operation))
        try:
            return method(**arguments)
        except ClientError as error:
            details = error.response.get("Error", {})
            raise EcrError(str(details.get("Code", "Unknown")), str(details.get("Message", ""))) from None
        except BotoCoreError as error:
            raise EcrError(type(error).__name__, str(error)) from None

    def _call_unless_missing(self, operation: str, **arguments: Any) -> dict[str, Any] | None:
        """The call's response, or None when ECR says what it names does not exist."""
        try:
            return self._call(operation, **arguments)
        except EcrError as error:
            if error.code in NOT_FOUND:
                return None
            raise

    def _call_retrying_secret(self, operation: str, **arguments: Any) -> dict[str, Any]:
        delay = SECRET_RETRY_BASE_SECONDS
        while True:
            try:
                return self._call(operation, **arguments)
            except EcrError as error:
                if error.code != "SecretNotFoundException" or self.deadline.remaining() < delay * 2:
                    raise
            time.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not cryptography
            delay = min(delay * 2, SECRET_RETRY_MAX_SECONDS)


def _snake_case(operation: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in operation).lstrip("_")
