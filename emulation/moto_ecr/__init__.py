"""moto 5 extension: ECR pull-through cache rules, repository creation templates, the registry policy and scanning
configuration as ECR validates them, fault injection.

Usage::

    from emulation import moto_ecr
    from emulation.moto_ecr import faults

    moto_ecr.install()  # idempotent; do it before (or inside) mock_aws / ThreadedMotoServer
    with mock_aws():
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
        moto_ecr.simulate_cached_pull(ACCOUNT, "us-east-1", "ecr-public/library/nginx")
        faults.throttle("DescribeRepositories", times=2)

The extension patches ``moto.ecr.models.ECRBackend`` and ``moto.ecr.responses.ECRResponse`` at
class level, so it serves both ``mock_aws`` and ``ThreadedMotoServer`` (same process).
"""

from __future__ import annotations

import threading
from typing import Any

from moto.ecr.models import ECRBackend
from moto.ecr.responses import ECRResponse

from emulation.registry.tokens import RESPONSE_METHODS as TOKEN_RESPONSE_METHODS

from . import faults
from .images import RESPONSE_METHODS as IMAGE_RESPONSE_METHODS
from .images import image_records, seed_image, seed_image_record
from .models import (
    BACKEND_METHODS,
    PULL_THROUGH_CACHE_RULE_LIMIT,
    REPOSITORY_CREATION_TEMPLATE_LIMIT,
    NoMatchingPullThroughCacheRuleError,
    infer_upstream_registry,
    simulate_cached_pull,
)
from .registry import REGISTRY_RESPONSE_METHODS
from .responses import RESPONSE_METHODS, wrap_call_action

__all__ = [
    "PULL_THROUGH_CACHE_RULE_LIMIT",
    "REPOSITORY_CREATION_TEMPLATE_LIMIT",
    "NoMatchingPullThroughCacheRuleError",
    "faults",
    "image_records",
    "infer_upstream_registry",
    "install",
    "is_installed",
    "seed_image",
    "seed_image_record",
    "simulate_cached_pull",
]

_install_lock = threading.Lock()


def is_installed() -> bool:
    """Whether :func:`install` has patched moto in this process."""
    return bool(getattr(ECRResponse.call_action, "_moto_ecr_ext", False))


def _accept_current_lifecycle_policy_syntax() -> None:
    """moto 5.2 validates lifecycle policies against the 2016 syntax. ECR now also accepts the countTypes
    sinceImagePulled and sinceImageTransitioned, selection.storageClass, and the transition action with
    action.targetStorageClass (ECR user guide, lifecycle_policy_parameters.html)."""
    from moto.ecr import policy_validation as rules

    rules.VALID_SELECTION_COUNT_TYPE_VALUES = {
        "imageCountMoreThan",
        "sinceImagePushed",
        "sinceImagePulled",
        "sinceImageTransitioned",
    }
    rules.VALID_SELECTION_PROPERTIES = {"tagPatternList", "tagPrefixList", "countUnit", "storageClass"} | set(
        rules.REQUIRED_SELECTION_PROPERTIES
    )
    rules.VALID_ACTION_TYPE_VALUES = {"expire", "transition"}
    rules.VALID_ACTION_PROPERTIES = {"type", "targetStorageClass"}


def _check_tag_mutability_filters() -> None:
    """moto 5.2 accepts PutImageTagMutability with IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION and no
    exclusion filters (and filters with IMMUTABLE or MUTABLE); ECR refuses both with InvalidParameterException,
    as moto itself does for CreateRepository."""
    put = ECRBackend.put_image_tag_mutability
    if getattr(put, "_moto_ecr_ext", False):
        return

    def put_image_tag_mutability(self: ECRBackend, registry_id: str, repository_name: str, image_tag_mutability: str,
                                 image_tag_mutability_exclusion_filters: Any = None) -> Any:  # fmt: skip
        check: Any = ECRBackend.validate_image_tag_mutability_params_compatibility
        check(image_tag_mutability, image_tag_mutability_exclusion_filters)
        return put(self, registry_id, repository_name, image_tag_mutability, image_tag_mutability_exclusion_filters)

    put_image_tag_mutability._moto_ecr_ext = True  # type: ignore[attr-defined]
    ECRBackend.put_image_tag_mutability = put_image_tag_mutability  # type: ignore[method-assign]


def install() -> None:
    """Add the operations and the fault hook to moto's ECR classes.  Safe to call repeatedly."""
    with _install_lock:
        methods: dict[type, dict[str, Any]] = {
            ECRBackend: BACKEND_METHODS,
            ECRResponse: RESPONSE_METHODS | REGISTRY_RESPONSE_METHODS | IMAGE_RESPONSE_METHODS | TOKEN_RESPONSE_METHODS,
        }
        for cls, funcs in methods.items():
            for name, func in funcs.items():
                setattr(cls, name, func)
        if not is_installed():
            setattr(ECRResponse, "call_action", wrap_call_action(ECRResponse.call_action))  # noqa: B010
        _accept_current_lifecycle_policy_syntax()
        _check_tag_mutability_filters()
