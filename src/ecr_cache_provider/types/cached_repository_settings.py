"""Custom::CachedRepositorySettings: the same settings on every repository of a cache namespace, existing and future.

It owns the namespace's repository creation template (future repositories) and brings the repositories already
there to the same settings (existing ones), each setting optional; encryption reaches new repositories only: ECR
cannot change an existing repository's. The physical id is the prefix. Its properties: SCHEMA, and docs/.

For each setting and repository, what is there is ours (what this resource set), none, or someone else's: ours and
none are replaced, someone else's only with OverwriteExistingSettings; Delete removes only what is still ours
(engine/recorded_settings.py). ROOT: engine/backfill.py; the replacement of a Custom::CacheLifecyclePolicy
(TakeOverFrom): engine/take_over.py.
"""

from __future__ import annotations

from typing import Any

from ecr_cache_provider.aws import sdk
from ecr_cache_provider.contract import RequestContext, Result
from ecr_cache_provider.engine.backfill import put_in_place, remove
from ecr_cache_provider.engine.setting_kinds import Settings
from ecr_cache_provider.engine.settings_request import NAMESPACE_PROPERTIES, NamespaceSettings, readable, result
from ecr_cache_provider.failures import InvalidProperties
from ecr_cache_provider.grammar.lifecycle_policy import read_policy
from ecr_cache_provider.grammar.prefix import without_trailing_slash
from ecr_cache_provider.grammar.repository_policy import read_repository_policy
from ecr_cache_provider.properties import parse_properties

RESOURCE_TYPE = "Custom::CachedRepositorySettings"
PURPOSE = "Settings"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["RepositoryPrefix"],
    "properties": NAMESPACE_PROPERTIES
    | {
        "LifecyclePolicyText": {"type": ["string", "object"]},
        "RepositoryPolicyText": {"type": ["string", "object"]},
        "ResourceTags": {
            "type": "array",
            "maxItems": 50,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["Key", "Value"],
                "properties": {
                    "Key": {"type": "string", "minLength": 1, "maxLength": 128},
                    "Value": {"type": "string", "maxLength": 256},
                },
            },
            "description": "a list of {Key, Value}",
        },
        "ImageTagMutability": {"enum": ["MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"]},
        "ImageTagMutabilityExclusionFilters": {
            "type": "array",
            "minItems": 1,
            "maxItems": 5,
            "items": {"type": "string", "pattern": r"^[0-9a-zA-Z._*-]{1,128}\Z"},
            "description": "1 to 5 wildcard tag filters such as latest or dev-*",
        },
        "EncryptionConfiguration": {
            "type": "object",
            "additionalProperties": False,
            "required": ["EncryptionType"],
            "properties": {
                "EncryptionType": {"enum": ["AES256", "KMS", "KMS_DSSE"]},
                "KmsKey": {"type": "string", "minLength": 1, "maxLength": 2048},
            },
            "description": "EncryptionType AES256, KMS or KMS_DSSE, and KmsKey with KMS",
        },
        "CustomRoleArn": {"type": "string", "maxLength": 2048, "pattern": r"^arn:aws[-a-z]*:iam::\d{12}:role/\S+\Z"},
        "OverwriteExistingSettings": {"type": "boolean", "default": False},
        "TakeOverFrom": {"type": "string", "pattern": r"^[A-Za-z0-9]{1,255}\Z"},
    },
}

SETTING_PROPERTIES = (
    "LifecyclePolicyText",
    "RepositoryPolicyText",
    "ResourceTags",
    "ImageTagMutability",
    "EncryptionConfiguration",
)


def read_properties(raw: dict[str, Any]) -> NamespaceSettings:
    values = parse_properties(raw, SCHEMA)
    if not any(name in values for name in SETTING_PROPERTIES):
        raise InvalidProperties(f"No setting given: name at least one of {', '.join(SETTING_PROPERTIES)}")
    return NamespaceSettings(
        prefix=without_trailing_slash(values["RepositoryPrefix"]),
        settings=read_settings(values),
        apply_to_existing=values["ApplyToExistingRepositories"],
        apply_to_new=values["ApplyToNewRepositories"],
        overwrite=values["OverwriteExistingSettings"],
        existing_prefixes=tuple(without_trailing_slash(prefix) for prefix in values["ExistingRepositoryPrefixes"]),
        take_over_from=values.get("TakeOverFrom", ""),
    ).check("the settings")


def read_settings(values: dict[str, Any]) -> Settings:
    """The settings among validated properties; each one absent is not managed."""
    lifecycle, policy = values.get("LifecyclePolicyText"), values.get("RepositoryPolicyText")
    tags = values.get("ResourceTags")
    encryption = values.get("EncryptionConfiguration")
    settings = Settings(
        lifecycle_policy=read_policy(lifecycle) if lifecycle is not None else None,
        repository_policy=read_repository_policy(policy) if policy is not None else None,
        resource_tags=_tags(tags) if tags is not None else None,
        tag_mutability=_tag_mutability(values),
        encryption=_encryption(encryption) if encryption is not None else None,
        custom_role_arn=values.get("CustomRoleArn", ""),
    )
    kms = settings.encryption is not None and dict(settings.encryption)["encryptionType"] != "AES256"
    if (settings.resource_tags or kms) and not settings.custom_role_arn:
        raise InvalidProperties(
            "ResourceTags and KMS encryption in a repository creation template need CustomRoleArn: the role ECR "
            "assumes to tag and encrypt the repositories it creates"
        )
    return settings


def create(context: RequestContext) -> Result:
    """Claim the creation template first, so nothing cached meanwhile is missed, then the existing repositories."""
    wanted = read_properties(context.request.properties)
    _require_sdk(wanted, context)
    return result(wanted, put_in_place(wanted, None, context, PURPOSE))


def update(context: RequestContext) -> Result:
    """New settings reach the template and every repository carrying the old ones (or none), or every repository
    with OverwriteExistingSettings; a setting no longer named is removed where it is still ours. A new
    RepositoryPrefix is a replacement."""
    request = context.request
    wanted = read_properties(request.properties)
    if wanted.prefix != request.physical_id:
        return create(context)
    _require_sdk(wanted, context)
    return result(wanted, put_in_place(wanted, readable(read_properties, request.old_properties), context, PURPOSE))


def delete(context: RequestContext) -> None:
    """Delete the template this resource made, then put back what each repository had before this resource set
    its settings, where the repository still carries them (the ledger records which). Settings someone changed
    since, and repositories this resource never changed, are left alone."""
    remove(context.request.physical_id, readable(read_properties, context.request.properties), context)


def _require_sdk(wanted: NamespaceSettings, context: RequestContext) -> None:
    mutability = wanted.settings.tag_mutability
    if mutability is not None and mutability[1]:
        sdk.require_tag_mutability_exclusions_api(context.ecr.client)


def _tags(tags: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    keys = [tag["Key"] for tag in tags]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InvalidProperties(f"ResourceTags: key {repeated[0]!r} is given more than once")
    return tuple((tag["Key"], tag["Value"]) for tag in tags)


def _tag_mutability(values: dict[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    """ImageTagMutability and its exclusion filters, which go with, and only with, the *_WITH_EXCLUSION forms."""
    setting, filters = values.get("ImageTagMutability"), tuple(values.get("ImageTagMutabilityExclusionFilters", ()))
    if setting is None:
        if filters:
            raise InvalidProperties("ImageTagMutabilityExclusionFilters needs ImageTagMutability *_WITH_EXCLUSION")
        return None
    if setting.endswith("_WITH_EXCLUSION") != bool(filters):
        raise InvalidProperties(
            "ImageTagMutabilityExclusionFilters go with, and only with, ImageTagMutability "
            "IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION"
        )
    return (setting, filters)


def _encryption(configuration: dict[str, str]) -> tuple[tuple[str, str], ...]:
    encryption_type, key = configuration["EncryptionType"], configuration.get("KmsKey")
    if key and encryption_type == "AES256":
        raise InvalidProperties("EncryptionConfiguration: KmsKey goes only with EncryptionType KMS or KMS_DSSE")
    return tuple(sorted({"encryptionType": encryption_type, **({"kmsKey": key} if key else {})}.items()))
