"""State and business rules for ECR pull-through cache rules and repository creation templates.

State lives on each ``moto.ecr.models.ECRBackend`` instance (one per account and region) in the
attribute ``_moto_ecr_ext``, created lazily, so ``moto``'s backend reset wipes it like the rest of
the ECR state.  :func:`install` in ``emulation.moto_ecr`` attaches the public functions below to
``ECRBackend`` as methods.
"""

from __future__ import annotations

import json
import re
import threading
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow
from moto.ecr.models import ECRBackend, ecr_backends
from moto.ecr.policy_validation import EcrLifecyclePolicyValidator
from moto.secretsmanager.models import secretsmanager_backends

from . import faults
from .exceptions import (
    InvalidParameterException,
    LimitExceededException,
    PullThroughCacheRuleAlreadyExistsException,
    PullThroughCacheRuleNotFoundException,
    SecretNotFoundException,
    TemplateAlreadyExistsException,
    TemplateNotFoundException,
    UnableToAccessSecretException,
    UnsupportedUpstreamRegistryException,
)

if TYPE_CHECKING:
    from datetime import datetime

#: "Pull through cache rules per registry" in the ECR service quotas (not adjustable).
PULL_THROUGH_CACHE_RULE_LIMIT = 50
#: Repository creation templates per registry.  Not in the published quota table; 100 is an
#: assumption chosen to be generous while still letting tests exercise LimitExceededException.
REPOSITORY_CREATION_TEMPLATE_LIMIT = 100
#: Page size when ``maxResults`` is not given (per the API reference of both Describe calls).
DEFAULT_PAGE_SIZE = 100

ROOT = "ROOT"

#: Upstream registry -> full-match pattern of its ``upstreamRegistryUrl``.
UPSTREAM_URL_PATTERNS: dict[str, str] = {
    "ecr-public": r"public\.ecr\.aws",
    "quay": r"quay\.io",
    "k8s": r"registry\.k8s\.io",
    "docker-hub": r"registry-1\.docker\.io",
    "github-container-registry": r"ghcr\.io",
    "gitlab-container-registry": r"registry\.gitlab\.com",
    "azure-container-registry": r"[a-z0-9]+\.azurecr\.io",
    "chainguard": r"cgr\.dev",
    "ecr": r"(?P<account>[0-9]{12})\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?",
}
#: Upstreams that only work with a Secrets Manager secret holding credentials.
UPSTREAMS_REQUIRING_CREDENTIALS = frozenset(
    {
        "docker-hub",
        "github-container-registry",
        "gitlab-container-registry",
        "azure-container-registry",
        "chainguard",
    }
)
_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::(?P<account>[0-9]{12}):role/[\w+=,.@/-]+$")


@dataclass
class PullThroughCacheRule:
    ecr_repository_prefix: str
    upstream_registry_url: str
    upstream_registry: str
    registry_id: str
    credential_arn: str | None = None
    custom_role_arn: str | None = None
    upstream_repository_prefix: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.updated_at is None:
            self.updated_at = self.created_at

    def common_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ecrRepositoryPrefix": self.ecr_repository_prefix, "registryId": self.registry_id}
        if self.credential_arn:
            out["credentialArn"] = self.credential_arn
        if self.custom_role_arn:
            out["customRoleArn"] = self.custom_role_arn
        if self.upstream_repository_prefix:
            out["upstreamRepositoryPrefix"] = self.upstream_repository_prefix
        return out

    def describe(self) -> dict[str, Any]:
        return {
            **self.common_fields(),
            "upstreamRegistryUrl": self.upstream_registry_url,
            "upstreamRegistry": self.upstream_registry,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


@dataclass
class RepositoryCreationTemplate:
    prefix: str
    applied_for: list[str]
    description: str | None = None
    encryption_configuration: dict[str, str] | None = None
    resource_tags: list[dict[str, str]] = field(default_factory=list)
    image_tag_mutability: str = "MUTABLE"
    image_tag_mutability_exclusion_filters: list[dict[str, str]] | None = None
    repository_policy: str | None = None
    lifecycle_policy: str | None = None
    custom_role_arn: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.updated_at is None:
            self.updated_at = self.created_at

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prefix": self.prefix,
            "encryptionConfiguration": self.encryption_configuration or {"encryptionType": "AES256"},
            "resourceTags": list(self.resource_tags),
            "imageTagMutability": self.image_tag_mutability,
            "appliedFor": list(self.applied_for),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        optional = {
            "description": self.description,
            "imageTagMutabilityExclusionFilters": self.image_tag_mutability_exclusion_filters,
            "repositoryPolicy": self.repository_policy,
            "lifecyclePolicy": self.lifecycle_policy,
            "customRoleArn": self.custom_role_arn,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


@dataclass
class ExtensionState:
    rules: dict[str, PullThroughCacheRule] = field(default_factory=dict)
    templates: dict[str, RepositoryCreationTemplate] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


def state_of(backend: ECRBackend) -> ExtensionState:
    """The extension state of one ECR backend (account + region), created on first use."""
    state = backend.__dict__.get("_moto_ecr_ext")
    if state is None:
        state = backend.__dict__.setdefault("_moto_ecr_ext", ExtensionState())
    return state  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- helpers


def _strip_prefix(prefix: str) -> str:
    """ECR always assumes a trailing '/', so 'ecr-public/' and 'ecr-public' are the same prefix."""
    return prefix if prefix == ROOT else prefix.rstrip("/")


def infer_upstream_registry(url: str) -> str | None:
    """The ``upstreamRegistry`` value an ``upstreamRegistryUrl`` belongs to, or None."""
    for registry, pattern in UPSTREAM_URL_PATTERNS.items():
        if re.fullmatch(pattern, url):
            return registry
    return None


def _check_role_arn(backend: ECRBackend, role_arn: str) -> None:
    match = _ROLE_ARN.match(role_arn)
    if not match:
        raise InvalidParameterException(
            f"Invalid parameter at 'customRoleArn' failed to satisfy constraint: 'Invalid role ARN: {role_arn}'"
        )
    if match.group("account") != backend.account_id:
        raise InvalidParameterException(
            "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
            "'The role must be in the same account as the registry'"
        )


def read_secret_credentials(account_id: str, region: str, credential_arn: str) -> dict[str, Any]:
    """Check that a pull-through-cache secret exists and holds usable credentials.

    Mirrors the checks ECR makes on Create/UpdatePullThroughCacheRule:

    * the secret does not exist in Secrets Manager (same account and region) ->
      ``SecretNotFoundException``;
    * the secret exists but cannot be used: deleted/scheduled for deletion, no ``SecretString``,
      not a JSON object, or missing the ``username``/``accessToken`` keys ->
      ``UnableToAccessSecretException``.  The model also has
      ``UnableToDecryptSecretValueException``, but moto has no KMS decryption failure to model,
      and a malformed value is an "unable to access" condition from ECR's point of view, so
      ``UnableToAccessSecretException`` is the closest match.
    """
    sm: Any = secretsmanager_backends[account_id][region]
    secret = sm.secrets.get(credential_arn)
    if secret is None:
        raise SecretNotFoundException(credential_arn)
    if secret.is_deleted():
        raise UnableToAccessSecretException(f"The secret '{credential_arn}' is marked for deletion.")
    try:
        value = sm.get_secret_value(secret_id=credential_arn, version_id=None, version_stage=None)
    except Exception as exc:  # moto raises its own Secrets Manager errors here
        raise UnableToAccessSecretException(f"Unable to access the secret '{credential_arn}': {exc}") from exc
    text = value.get("SecretString")
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data.get("username") or not data.get("accessToken"):
        raise UnableToAccessSecretException(
            f"The secret '{credential_arn}' does not contain valid upstream credentials: its value must be "
            "a JSON object with the keys 'username' and 'accessToken'."
        )
    return data


def _encode_token(last_key: str) -> str:
    return urlsafe_b64encode(json.dumps({"after": last_key}).encode()).decode()


def _decode_token(token: str) -> str:
    try:
        data = json.loads(urlsafe_b64decode(token.encode()))
        after = data["after"]
        if not isinstance(after, str):
            raise TypeError(after)
    except Exception as exc:
        raise InvalidParameterException(
            "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'"
        ) from exc
    return after


def paginate(
    items: list[Any], key: Any, max_results: int | None, next_token: str | None
) -> tuple[list[Any], str | None]:
    """Key-ordered paging with an opaque token naming the last key returned.

    Resuming after a key (instead of an offset) keeps pages stable when items are deleted.
    """
    ordered = sorted(items, key=key)
    if next_token:
        after = _decode_token(next_token)
        ordered = [item for item in ordered if key(item) > after]
    size = max_results or DEFAULT_PAGE_SIZE
    page = ordered[:size]
    token = _encode_token(key(page[-1])) if len(ordered) > size else None
    return page, token


# --------------------------------------------------------------------------- pull through cache rules


def _resolve_upstream(upstream_registry_url: str, upstream_registry: str | None) -> str:
    inferred = infer_upstream_registry(upstream_registry_url)
    if upstream_registry is None:
        if inferred is None:
            raise UnsupportedUpstreamRegistryException(
                f"The upstream registry URL '{upstream_registry_url}' is not a supported upstream registry."
            )
        return inferred
    if inferred != upstream_registry:
        raise InvalidParameterException(
            f"Invalid parameter at 'upstreamRegistryUrl' failed to satisfy constraint: 'The upstream registry "
            f"URL '{upstream_registry_url}' does not match the upstream registry '{upstream_registry}''"
        )
    return upstream_registry


def _check_ecr_upstream(
    self: ECRBackend,
    *,
    prefix: str,
    upstream_registry_url: str,
    credential_arn: str | None,
    custom_role_arn: str | None,
    upstream_repository_prefix: str | None,
) -> str:
    """Rules for an ECR-to-ECR cache; returns the effective upstreamRepositoryPrefix."""
    if credential_arn:
        raise InvalidParameterException(
            "Invalid parameter at 'credentialArn' failed to satisfy constraint: "
            "'credentialArn is not supported for the ecr upstream registry; use customRoleArn'"
        )
    match = re.fullmatch(UPSTREAM_URL_PATTERNS["ecr"], upstream_registry_url)
    upstream_account = match.group("account") if match else None
    if not custom_role_arn and upstream_account != self.account_id:
        raise InvalidParameterException(
            "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
            "'customRoleArn is required when the upstream ECR registry is in another account'"
        )
    upstream_prefix = _strip_prefix(upstream_repository_prefix or ROOT)
    if prefix == ROOT and upstream_prefix != ROOT:
        raise InvalidParameterException(
            "Invalid parameter at 'upstreamRepositoryPrefix' failed to satisfy constraint: "
            "'upstreamRepositoryPrefix can only be set when ecrRepositoryPrefix is not ROOT'"
        )
    return upstream_prefix


def _check_non_ecr_upstream(prefix: str, custom_role_arn: str | None, upstream_repository_prefix: str | None) -> None:
    if prefix == ROOT:
        raise InvalidParameterException(
            "Invalid parameter at 'ecrRepositoryPrefix' failed to satisfy constraint: "
            "'ROOT is only supported for the ecr upstream registry'"
        )
    if upstream_repository_prefix is not None:
        raise InvalidParameterException(
            "Invalid parameter at 'upstreamRepositoryPrefix' failed to satisfy constraint: "
            "'upstreamRepositoryPrefix is only supported for the ecr upstream registry'"
        )
    if custom_role_arn:
        raise InvalidParameterException(
            "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
            "'customRoleArn is only supported for the ecr upstream registry'"
        )


def create_pull_through_cache_rule(
    self: ECRBackend,
    *,
    ecr_repository_prefix: str,
    upstream_registry_url: str,
    upstream_registry: str | None = None,
    credential_arn: str | None = None,
    custom_role_arn: str | None = None,
    upstream_repository_prefix: str | None = None,
) -> dict[str, Any]:
    prefix = _strip_prefix(ecr_repository_prefix)
    upstream_registry = _resolve_upstream(upstream_registry_url, upstream_registry)
    if upstream_registry in UPSTREAMS_REQUIRING_CREDENTIALS and not credential_arn:
        raise UnsupportedUpstreamRegistryException(
            f"The upstream registry '{upstream_registry_url}' ({upstream_registry}) requires authentication. "
            "Specify a credentialArn for a Secrets Manager secret with the upstream credentials."
        )
    if upstream_registry == "ecr":
        upstream_repository_prefix = _check_ecr_upstream(
            self,
            prefix=prefix,
            upstream_registry_url=upstream_registry_url,
            credential_arn=credential_arn,
            custom_role_arn=custom_role_arn,
            upstream_repository_prefix=upstream_repository_prefix,
        )
    else:
        _check_non_ecr_upstream(prefix, custom_role_arn, upstream_repository_prefix)
    if custom_role_arn:
        _check_role_arn(self, custom_role_arn)

    state = state_of(self)
    with state.lock:
        if prefix in state.rules:
            raise PullThroughCacheRuleAlreadyExistsException(prefix, self.account_id)
        if len(state.rules) >= PULL_THROUGH_CACHE_RULE_LIMIT:
            raise LimitExceededException(
                f"The maximum number of pull through cache rules ({PULL_THROUGH_CACHE_RULE_LIMIT}) "
                f"for the registry with id '{self.account_id}' has been reached."
            )
        if credential_arn:
            read_secret_credentials(self.account_id, self.region_name, credential_arn)
        rule = PullThroughCacheRule(
            ecr_repository_prefix=prefix,
            upstream_registry_url=upstream_registry_url,
            upstream_registry=upstream_registry,
            registry_id=self.account_id,
            credential_arn=credential_arn,
            custom_role_arn=custom_role_arn,
            upstream_repository_prefix=upstream_repository_prefix,
        )
        state.rules[prefix] = rule
    out = rule.describe()
    del out["updatedAt"]
    return out


def _get_rule(self: ECRBackend, prefix: str) -> PullThroughCacheRule:
    prefix = _strip_prefix(prefix)
    rule = state_of(self).rules.get(prefix)
    if rule is None:
        raise PullThroughCacheRuleNotFoundException(prefix, self.account_id)
    return rule


def describe_pull_through_cache_rules(
    self: ECRBackend,
    *,
    ecr_repository_prefixes: list[str] | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    state = state_of(self)
    with state.lock:
        if ecr_repository_prefixes:
            rules = list({id(r): r for r in (_get_rule(self, p) for p in ecr_repository_prefixes)}.values())
        else:
            rules = list(state.rules.values())
        page, token = paginate(rules, lambda r: r.ecr_repository_prefix, max_results, next_token)
        return [r.describe() for r in page], token


def update_pull_through_cache_rule(
    self: ECRBackend,
    *,
    ecr_repository_prefix: str,
    credential_arn: str | None = None,
    custom_role_arn: str | None = None,
) -> dict[str, Any]:
    state = state_of(self)
    with state.lock:
        rule = _get_rule(self, ecr_repository_prefix)
        if not credential_arn and not custom_role_arn:
            raise InvalidParameterException(
                "Invalid parameter: at least one of 'credentialArn' or 'customRoleArn' must be specified"
            )
        if credential_arn and rule.upstream_registry == "ecr":
            raise InvalidParameterException(
                "Invalid parameter at 'credentialArn' failed to satisfy constraint: "
                "'credentialArn is not supported for the ecr upstream registry; use customRoleArn'"
            )
        if custom_role_arn:
            if rule.upstream_registry != "ecr":
                raise InvalidParameterException(
                    "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
                    "'customRoleArn is only supported for the ecr upstream registry'"
                )
            _check_role_arn(self, custom_role_arn)
        if credential_arn:
            read_secret_credentials(self.account_id, self.region_name, credential_arn)
            rule.credential_arn = credential_arn
        if custom_role_arn:
            rule.custom_role_arn = custom_role_arn
        rule.updated_at = utcnow()
        return {**rule.common_fields(), "updatedAt": rule.updated_at}


def delete_pull_through_cache_rule(self: ECRBackend, ecr_repository_prefix: str) -> dict[str, Any]:
    state = state_of(self)
    with state.lock:
        rule = _get_rule(self, ecr_repository_prefix)
        del state.rules[rule.ecr_repository_prefix]
    out = rule.describe()
    del out["updatedAt"]
    return out


def validate_pull_through_cache_rule(self: ECRBackend, ecr_repository_prefix: str) -> dict[str, Any]:
    rule = _get_rule(self, ecr_repository_prefix)
    # What ValidatePullThroughCacheRule does, as its API reference says: "retrieve the contents of the AWS Secrets
    # Manager secret, verify the syntax, and then validate that authentication to the upstream registry is
    # successful" (each failure a `failure` reason, isValid false). The upstream's side: a rejection armed for the
    # prefix, or the secret's access token revoked upstream (faults.revoke_upstream_credentials).
    failure = faults.rejected_upstream_credentials(rule.ecr_repository_prefix)
    if failure is None and rule.credential_arn:
        try:
            credentials = read_secret_credentials(self.account_id, self.region_name, rule.credential_arn)
            if faults.upstream_refuses(rule.credential_arn, str(credentials["accessToken"])):  # revoked upstream
                failure = faults.DEFAULT_REJECTION_FAILURE
        except SecretNotFoundException:
            failure = (
                f"Unable to access the secret '{rule.credential_arn}'. The secret does not exist; "
                "update the pull through cache rule with a valid secret ARN."
            )
        except UnableToAccessSecretException as exc:
            failure = f"Unable to access the secret '{rule.credential_arn}'. {exc.message}"
    out = {
        **rule.common_fields(),
        "upstreamRegistryUrl": rule.upstream_registry_url,
        "isValid": failure is None,
    }
    if failure is not None:
        out["failure"] = failure
    return out


# --------------------------------------------------------------------------- repository creation templates


def _check_template(self: ECRBackend, template: RepositoryCreationTemplate) -> None:
    """Semantic checks the model cannot express (run on the merged template for updates)."""
    if not template.applied_for:
        raise InvalidParameterException(
            "Invalid parameter at 'appliedFor' failed to satisfy constraint: 'appliedFor must not be empty'"
        )
    encryption = template.encryption_configuration or {}
    encryption_type = encryption.get("encryptionType", "AES256")
    if encryption_type == "AES256" and encryption.get("kmsKey"):
        raise InvalidParameterException(
            "Invalid parameter at 'encryptionConfiguration' failed to satisfy constraint: "
            "'kmsKey can only be specified when encryptionType is KMS or KMS_DSSE'"
        )
    if (encryption_type in ("KMS", "KMS_DSSE") or template.resource_tags) and not template.custom_role_arn:
        raise InvalidParameterException(
            "Invalid parameter at 'customRoleArn' failed to satisfy constraint: 'customRoleArn is required "
            "when the template uses KMS encryption or resource tags'"
        )
    if template.custom_role_arn:
        _check_role_arn(self, template.custom_role_arn)
    check_mutability: Any = ECRBackend.validate_image_tag_mutability_params_compatibility
    check_mutability(template.image_tag_mutability, template.image_tag_mutability_exclusion_filters)
    if template.lifecycle_policy:
        EcrLifecyclePolicyValidator(template.lifecycle_policy).validate()
    if template.repository_policy:
        try:
            policy = json.loads(template.repository_policy)
        except ValueError:
            policy = None
        if not isinstance(policy, dict):
            raise InvalidParameterException(
                "Invalid parameter at 'repositoryPolicy' failed to satisfy constraint: "
                "'Invalid repository policy provided'"
            )


_TEMPLATE_FIELDS = {
    "description": "description",
    "encryptionConfiguration": "encryption_configuration",
    "resourceTags": "resource_tags",
    "imageTagMutability": "image_tag_mutability",
    "imageTagMutabilityExclusionFilters": "image_tag_mutability_exclusion_filters",
    "repositoryPolicy": "repository_policy",
    "lifecyclePolicy": "lifecycle_policy",
    "customRoleArn": "custom_role_arn",
}


_CLEARABLE_FIELDS = ("description", "repository_policy", "lifecycle_policy", "custom_role_arn")


def create_repository_creation_template(self: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    prefix = _strip_prefix(params["prefix"])
    kwargs = {attr: params[name] for name, attr in _TEMPLATE_FIELDS.items() if params.get(name) not in (None, "")}
    template = RepositoryCreationTemplate(
        prefix=prefix, applied_for=list(dict.fromkeys(params.get("appliedFor") or [])), **kwargs
    )
    state = state_of(self)
    with state.lock:
        if prefix in state.templates:
            raise TemplateAlreadyExistsException(prefix, self.account_id)
        if len(state.templates) >= REPOSITORY_CREATION_TEMPLATE_LIMIT:
            raise LimitExceededException(
                f"The maximum number of repository creation templates ({REPOSITORY_CREATION_TEMPLATE_LIMIT}) "
                f"for the registry with id '{self.account_id}' has been reached."
            )
        _check_template(self, template)
        state.templates[prefix] = template
    return {"registryId": self.account_id, "repositoryCreationTemplate": template.describe()}


def _get_template(self: ECRBackend, prefix: str) -> RepositoryCreationTemplate:
    prefix = _strip_prefix(prefix)
    template = state_of(self).templates.get(prefix)
    if template is None:
        raise TemplateNotFoundException(prefix, self.account_id)
    return template


def describe_repository_creation_templates(
    self: ECRBackend,
    *,
    prefixes: list[str] | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> dict[str, Any]:
    state = state_of(self)
    with state.lock:
        if prefixes:
            wanted = {_strip_prefix(p) for p in prefixes}
            templates = [t for p, t in state.templates.items() if p in wanted]
        else:
            templates = list(state.templates.values())
        page, token = paginate(templates, lambda t: t.prefix, max_results, next_token)
        out: dict[str, Any] = {
            "registryId": self.account_id,
            "repositoryCreationTemplates": [t.describe() for t in page],
        }
    if token:
        out["nextToken"] = token
    return out


def update_repository_creation_template(self: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    state = state_of(self)
    with state.lock:
        current = _get_template(self, params["prefix"])
        changes = {attr: params[name] for name, attr in _TEMPLATE_FIELDS.items() if params.get(name) is not None}
        # An empty policy or role clears it (the model allows 0 characters); a new tag mutability without
        # exclusion filters drops the old filters.
        changes |= {attr: None for attr in _CLEARABLE_FIELDS if changes.get(attr) == ""}
        if "image_tag_mutability" in changes and "image_tag_mutability_exclusion_filters" not in changes:
            changes["image_tag_mutability_exclusion_filters"] = None
        if params.get("appliedFor") is not None:
            changes["applied_for"] = list(dict.fromkeys(params["appliedFor"]))
        candidate = RepositoryCreationTemplate(**{**current.__dict__, **changes, "updated_at": utcnow()})
        _check_template(self, candidate)
        state.templates[candidate.prefix] = candidate
    return {"registryId": self.account_id, "repositoryCreationTemplate": candidate.describe()}


def delete_repository_creation_template(self: ECRBackend, prefix: str) -> dict[str, Any]:
    state = state_of(self)
    with state.lock:
        template = _get_template(self, prefix)
        del state.templates[template.prefix]
    return {"registryId": self.account_id, "repositoryCreationTemplate": template.describe()}


# --------------------------------------------------------------------------- cached pull simulation


class NoMatchingPullThroughCacheRuleError(LookupError):
    """Raised by :func:`simulate_cached_pull` when no pull-through cache rule covers the name."""


def _longest_match(prefixes: list[str], repository_name: str) -> str | None:
    matches = [p for p in prefixes if p != ROOT and repository_name.startswith(p + "/")]
    if matches:
        return max(matches, key=len)
    return ROOT if ROOT in prefixes else None


def simulate_cached_pull(account_id: str, region: str, repository_name: str) -> None:
    """Create ``repository_name`` the way ECR does on the first pull through a cache rule.

    Needs a pull-through cache rule whose ``ecrRepositoryPrefix`` + '/' starts the name (``ROOT``
    matches anything not covered by another rule), else :class:`NoMatchingPullThroughCacheRuleError`.
    The repository creation template applied for ``PULL_THROUGH_CACHE`` with the longest matching
    prefix (``ROOT`` as fallback) supplies imageTagMutability (+ exclusion filters), encryption,
    resourceTags, lifecyclePolicy and repositoryPolicy.  Without a template ECR's defaults apply.
    An existing repository is left untouched, like a later pull.
    """
    backend: Any = ecr_backends[account_id][region]
    state = state_of(backend)
    with state.lock:
        if repository_name in backend.repositories:
            return
        if _longest_match(list(state.rules), repository_name) is None:
            raise NoMatchingPullThroughCacheRuleError(
                f"No pull through cache rule in account {account_id} region {region} matches repository "
                f"'{repository_name}' (rules: {sorted(state.rules) or 'none'})"
            )
        candidates = [p for p, t in state.templates.items() if "PULL_THROUGH_CACHE" in t.applied_for]
        template_prefix = _longest_match(candidates, repository_name)
        template = state.templates[template_prefix] if template_prefix else None

    if template is None:
        backend.create_repository(
            repository_name=repository_name,
            registry_id=None,
            encryption_config=None,
            image_scan_config=None,
            image_tag_mutability="MUTABLE",
            tags=[],
        )
        return
    encryption = dict(template.encryption_configuration) if template.encryption_configuration else None
    backend.create_repository(
        repository_name=repository_name,
        registry_id=None,
        encryption_config=encryption,
        image_scan_config=None,
        image_tag_mutability=template.image_tag_mutability,
        tags=[dict(t) for t in template.resource_tags],
        image_tag_mutability_exclusion_filters=template.image_tag_mutability_exclusion_filters,
    )
    if template.lifecycle_policy:
        backend.put_lifecycle_policy(
            registry_id=None, repository_name=repository_name, lifecycle_policy_text=template.lifecycle_policy
        )
    if template.repository_policy:
        backend.set_repository_policy(
            registry_id=None, repository_name=repository_name, policy_text=template.repository_policy
        )


#: Functions attached to ``ECRBackend`` by ``install()``.
BACKEND_METHODS = {
    f.__name__: f
    for f in (
        create_pull_through_cache_rule,
        describe_pull_through_cache_rules,
        update_pull_through_cache_rule,
        delete_pull_through_cache_rule,
        validate_pull_through_cache_rule,
        create_repository_creation_template,
        describe_repository_creation_templates,
        update_repository_creation_template,
        delete_repository_creation_template,
    )
}
