"""The registry-wide singletons as ECR serves them: the registry policy and the registry scanning configuration.

moto 5.2.5 has both operations, with three gaps this module closes (request handlers replacing moto's):
- Requests are not checked against the botocore model: a rules list over 2, a filter breaking the pattern, or a
  missing ``rules`` reaches the backend (moto then fails with a server error). Here every request is validated
  first (``ValidationException``, like every operation of the extension).
- moto accepts only ``ecr:CreateRepository`` and ``ecr:ReplicateImage`` in a registry policy; ECR's registry
  permissions (user guide, registry-permissions.html) also grant ``ecr:BatchImportUpstreamImage``, which a
  pull-through cache needs. A statement without a ``Principal`` is not a resource policy and is refused too.
- moto stores any scan frequency with any scan type. ECR's API reference (RegistryScanningRule.scanFrequency):
  ENHANCED scanning supports SCAN_ON_PUSH and CONTINUOUS_SCAN, BASIC only SCAN_ON_PUSH (MANUAL is what is left
  unmatched). Two rules of the same frequency are refused as well (assumed: the console offers one per frequency).
  Both answer ``InvalidParameterException``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.ecr.exceptions import RegistryPolicyNotFoundException
from moto.iam.exceptions import MalformedPolicyDocument
from moto.iam.policy_validation import IAMPolicyDocumentValidator

from .exceptions import InvalidParameterException
from .responses import _backend, _request

if TYPE_CHECKING:
    from moto.ecr.responses import ECRResponse

#: The actions a registry policy may grant (ECR user guide, registry-permissions.html).
REGISTRY_POLICY_ACTIONS = frozenset({"ecr:CreateRepository", "ecr:ReplicateImage", "ecr:BatchImportUpstreamImage"})
#: The scan frequencies each scan type supports (API reference, RegistryScanningRule).
FREQUENCIES_BY_SCAN_TYPE = {"BASIC": {"SCAN_ON_PUSH"}, "ENHANCED": {"SCAN_ON_PUSH", "CONTINUOUS_SCAN"}}


def _invalid_policy() -> InvalidParameterException:
    return InvalidParameterException(
        "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'"
    )


def check_registry_policy(text: str) -> None:
    """Raise InvalidParameterException unless ``text`` is a registry policy ECR accepts."""
    try:
        IAMPolicyDocumentValidator(text).validate()
        statements = json.loads(text)["Statement"]
    except (MalformedPolicyDocument, ValueError, KeyError, TypeError):
        raise _invalid_policy() from None
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if "Principal" not in statement or set(actions) - REGISTRY_POLICY_ACTIONS:
            raise _invalid_policy()


def put_registry_policy(self: ECRResponse) -> ActionResult:
    p = _request(self, "PutRegistryPolicy")
    check_registry_policy(p["policyText"])
    backend = _backend(self)
    backend.registry_policy = p["policyText"]
    return ActionResult({"registryId": backend.account_id, "policyText": p["policyText"]})


def get_registry_policy(self: ECRResponse) -> ActionResult:
    _request(self, "GetRegistryPolicy")
    backend = _backend(self)
    if not backend.registry_policy:
        raise RegistryPolicyNotFoundException(backend.account_id)
    return ActionResult({"registryId": backend.account_id, "policyText": backend.registry_policy})


def delete_registry_policy(self: ECRResponse) -> ActionResult:
    _request(self, "DeleteRegistryPolicy")
    backend = _backend(self)
    policy = backend.registry_policy
    if not policy:
        raise RegistryPolicyNotFoundException(backend.account_id)
    backend.registry_policy = None
    return ActionResult({"registryId": backend.account_id, "policyText": policy})


def check_scanning_configuration(scan_type: str, rules: list[dict[str, Any]]) -> None:
    """Raise InvalidParameterException unless ECR accepts these rules with this scan type."""
    frequencies = [rule["scanFrequency"] for rule in rules]
    unsupported = sorted(set(frequencies) - FREQUENCIES_BY_SCAN_TYPE[scan_type])
    if unsupported:
        raise InvalidParameterException(
            f"Invalid parameter at 'rules' failed to satisfy constraint: scan frequency {unsupported[0]} "
            f"is not supported with scan type {scan_type}"
        )
    if len(set(frequencies)) != len(frequencies):
        raise InvalidParameterException(
            "Invalid parameter at 'rules' failed to satisfy constraint: one rule per scan frequency"
        )


def put_registry_scanning_configuration(self: ECRResponse) -> ActionResult:
    p = _request(self, "PutRegistryScanningConfiguration")
    scan_type = p.get("scanType", "BASIC")
    rules = p.get("rules", [])
    check_scanning_configuration(scan_type, rules)
    _backend(self).put_registry_scanning_configuration(scan_type, rules)
    return ActionResult({"registryScanningConfiguration": {"scanType": scan_type, "rules": rules}})


def get_registry_scanning_configuration(self: ECRResponse) -> ActionResult:
    _request(self, "GetRegistryScanningConfiguration")
    backend = _backend(self)
    return ActionResult(
        {"registryId": backend.account_id, "scanningConfiguration": backend.get_registry_scanning_configuration()}
    )


#: Functions attached to ``ECRResponse`` by ``install()``, replacing moto's.
REGISTRY_RESPONSE_METHODS = {
    f.__name__: f
    for f in (
        put_registry_policy,
        get_registry_policy,
        delete_registry_policy,
        put_registry_scanning_configuration,
        get_registry_scanning_configuration,
    )
}
