"""ECR repository policies, checked before anything is changed: a policy document whose statements each have an
Effect, a principal and ECR actions that exist, with Reasons that name the statement and field at fault.

Used by Custom::CachedRepositorySettings for its RepositoryPolicyText property.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from ecr_cache_provider.failures import InvalidProperties
from ecr_cache_provider.properties import compact_json, json_document

# ECR accepts repository policies of up to 10,240 characters (botocore: SetRepositoryPolicy.policyText).
MAX_POLICY_LENGTH = 10240
VERSIONS = ("2012-10-17", "2008-10-17")
STATEMENT_FIELDS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
PRINCIPAL_KINDS = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})

# Every ECR action IAM knows: the operations of the ECR API (the botocore ECR model; tests/unit checks this list
# against it) and the actions that are permissions only, with no API call of their own.
ECR_OPERATIONS = frozenset(
    {
        "BatchCheckLayerAvailability",
        "BatchDeleteImage",
        "BatchGetImage",
        "BatchGetRepositoryScanningConfiguration",
        "CompleteLayerUpload",
        "CreatePullThroughCacheRule",
        "CreateRepository",
        "CreateRepositoryCreationTemplate",
        "DeleteLifecyclePolicy",
        "DeletePullThroughCacheRule",
        "DeleteRegistryPolicy",
        "DeleteRepository",
        "DeleteRepositoryCreationTemplate",
        "DeleteRepositoryPolicy",
        "DeleteSigningConfiguration",
        "DeregisterPullTimeUpdateExclusion",
        "DescribeImageReplicationStatus",
        "DescribeImageScanFindings",
        "DescribeImageSigningStatus",
        "DescribeImages",
        "DescribePullThroughCacheRules",
        "DescribeRegistry",
        "DescribeReplicationBackfillResults",
        "DescribeRepositories",
        "DescribeRepositoryCreationTemplates",
        "GetAccountSetting",
        "GetAuthorizationToken",
        "GetDownloadUrlForLayer",
        "GetLifecyclePolicy",
        "GetLifecyclePolicyPreview",
        "GetRegistryPolicy",
        "GetRegistryScanningConfiguration",
        "GetRepositoryPolicy",
        "GetSigningConfiguration",
        "InitiateLayerUpload",
        "ListImageReferrers",
        "ListImages",
        "ListPullTimeUpdateExclusions",
        "ListReplicationBackfills",
        "ListTagsForResource",
        "PutAccountSetting",
        "PutImage",
        "PutImageScanningConfiguration",
        "PutImageTagMutability",
        "PutLifecyclePolicy",
        "PutRegistryPolicy",
        "PutRegistryScanningConfiguration",
        "PutReplicationConfiguration",
        "PutSigningConfiguration",
        "RegisterPullTimeUpdateExclusion",
        "SetRepositoryPolicy",
        "StartImageScan",
        "StartLifecyclePolicyPreview",
        "StartReplicationBackfill",
        "StopReplicationBackfill",
        "TagResource",
        "UntagResource",
        "UpdateImageStorageClass",
        "UpdatePullThroughCacheRule",
        "UpdateRepositoryCreationTemplate",
        "UploadLayerPart",
        "ValidatePullThroughCacheRule",
    }
)
# IAM-only: a first pull through a cache imports the image (BatchImportUpstreamImage); replication writes with
# ReplicateImage (ECR user guide: pull-through-cache-iam, registry-permissions).
ECR_PERMISSION_ONLY_ACTIONS = frozenset({"BatchImportUpstreamImage", "ReplicateImage"})
ECR_ACTIONS = ECR_OPERATIONS | ECR_PERMISSION_ONLY_ACTIONS


def read_repository_policy(value: str | dict[str, Any]) -> dict[str, Any]:
    """Check a repository policy (JSON text or an object), naming the statement and field at fault."""
    policy = json_document("RepositoryPolicyText", value)
    if not isinstance(policy, dict):
        raise InvalidProperties("RepositoryPolicyText must be a policy document (an object with Statement)")
    unknown = sorted(set(policy) - {"Version", "Id", "Statement"})
    if unknown:
        raise InvalidProperties(f"RepositoryPolicyText: unknown field {', '.join(unknown)}")
    if policy.get("Version", VERSIONS[0]) not in VERSIONS:
        raise InvalidProperties(f"RepositoryPolicyText: Version must be one of {', '.join(VERSIONS)}")
    statements = policy.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise InvalidProperties("RepositoryPolicyText needs at least one statement in Statement")
    for index, statement in enumerate(statements, start=1):
        _check_statement(index, statement)
    compact_json("RepositoryPolicyText", policy, MAX_POLICY_LENGTH)
    return policy


def _check_statement(index: int, statement: Any) -> None:
    where = f"RepositoryPolicyText statement {index}"
    if not isinstance(statement, dict):
        raise InvalidProperties(f"{where} must be an object")
    if isinstance(statement.get("Sid"), str):
        where = f"RepositoryPolicyText statement {statement['Sid']!r}"
    unknown = sorted(set(statement) - STATEMENT_FIELDS)
    if unknown:
        raise InvalidProperties(f"{where}: unknown field {', '.join(unknown)}")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise InvalidProperties(f"{where}: Effect must be Allow or Deny")
    _check_principal(where, _exactly_one(where, statement, "Principal", "NotPrincipal"))
    for action in _strings(where, "Action", _exactly_one(where, statement, "Action", "NotAction")):
        _check_action(where, action)
    if "Condition" in statement and not isinstance(statement["Condition"], dict):
        raise InvalidProperties(f"{where}: Condition must be an object")


def _exactly_one(where: str, statement: dict[str, Any], name: str, negated: str) -> Any:
    present = [key for key in (name, negated) if key in statement]
    if len(present) != 1:
        raise InvalidProperties(f"{where}: needs exactly one of {name} and {negated}")
    return statement[present[0]]


def _check_principal(where: str, principal: Any) -> None:
    if principal == "*":
        return
    if not isinstance(principal, dict) or not principal:
        raise InvalidProperties(f'{where}: Principal must be "*" or an object such as {{"AWS": [...]}}')
    unknown = sorted(set(principal) - PRINCIPAL_KINDS)
    if unknown:
        raise InvalidProperties(f"{where}: unknown principal kind {', '.join(unknown)}")
    for kind, names in principal.items():
        _strings(where, f"Principal.{kind}", names)


def _check_action(where: str, action: str) -> None:
    """An action is ecr:<Action>, or a wildcard that matches at least one ECR action (ecr:*, ecr:Batch*)."""
    if action == "*":
        return
    service, _, name = action.partition(":")
    if service.lower() != "ecr" or not name:
        raise InvalidProperties(f"{where}: {action!r} is not an ECR action (ecr:<Action>)")
    if not any(fnmatch.fnmatchcase(known.lower(), name.lower()) for known in ECR_ACTIONS):
        raise InvalidProperties(f"{where}: ECR has no action {action!r}")


def _strings(where: str, field: str, value: Any) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(item, str) and item for item in values):
        raise InvalidProperties(f"{where}: {field} must be a string or a non-empty list of strings")
    return values
