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
        "RegistryPolicyNotFoundException",
    }
)


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
    created_at: datetime | None = None

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


@dataclass(frozen=True)
class CreationTemplate:
    """A repository creation template, with the settings this provider manages."""

    prefix: str
    description: str = ""
    lifecycle_policy: str = ""
    applied_for: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, template: dict[str, Any]) -> CreationTemplate:
        return cls(
            prefix=template["prefix"],
            description=template.get("description", ""),
            lifecycle_policy=template.get("lifecyclePolicy", ""),
            applied_for=tuple(template.get("appliedFor", ())),
        )


@dataclass(frozen=True)
class ScanningConfiguration:
    """The registry's scanning: BASIC or ENHANCED, and each rule's wildcard filters by scan frequency."""

    scan_type: str
    rules: dict[str, tuple[str, ...]]


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

    def find_template(self, prefix: str) -> CreationTemplate | None:
        response = self._call("DescribeRepositoryCreationTemplates", prefixes=[prefix])
        templates = [
            CreationTemplate.from_api(template) for template in response.get("repositoryCreationTemplates", [])
        ]
        return next((template for template in templates if template.prefix == prefix), None)

    def create_template(self, template: CreationTemplate) -> None:
        applied_for = list(template.applied_for)
        self._call("CreateRepositoryCreationTemplate", **_template_settings(template), appliedFor=applied_for)

    def update_template(self, template: CreationTemplate) -> None:
        """Update the description and lifecycle policy; what the template applies to stays as it was made."""
        self._call("UpdateRepositoryCreationTemplate", **_template_settings(template))

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


def _present(**values: str | None) -> dict[str, str]:
    """The arguments that have a value: ECR takes an absent setting as unset, an empty one as invalid."""
    return {name: value for name, value in values.items() if value}


def _template_settings(template: CreationTemplate) -> dict[str, str]:
    return {
        "prefix": template.prefix,
        "description": template.description,
        "lifecyclePolicy": template.lifecycle_policy,
    }
