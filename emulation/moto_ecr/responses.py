"""Request handlers added to ``moto.ecr.responses.ECRResponse`` and the fault-injection hook.

moto's ``BaseResponse.call_action`` maps the JSON action name (``X-Amz-Target``) to the
snake_case method of the same name, for ``mock_aws`` and the moto server alike, so adding these
methods to ``ECRResponse`` is all it takes to serve the new operations.  Every request is first
checked against the botocore ECR model (:mod:`emulation.moto_ecr.validation`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult

from . import faults
from .models import paginate
from .validation import validate_request

if TYPE_CHECKING:
    from collections.abc import Callable

    from moto.ecr.responses import ECRResponse


def _request(self: ECRResponse, operation: str) -> dict[str, Any]:
    """The JSON request body, validated against the model of ``operation``."""
    body = self.body
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    params: dict[str, Any] = json.loads(body) if body else {}
    validate_request(operation, params)
    return params


def _backend(self: ECRResponse) -> Any:
    """The account/region ECRBackend; typed Any because the methods are attached at install time."""
    return self.ecr_backend


def create_pull_through_cache_rule(self: ECRResponse) -> ActionResult:
    p = _request(self, "CreatePullThroughCacheRule")
    return ActionResult(
        _backend(self).create_pull_through_cache_rule(
            ecr_repository_prefix=p["ecrRepositoryPrefix"],
            upstream_registry_url=p["upstreamRegistryUrl"],
            upstream_registry=p.get("upstreamRegistry"),
            credential_arn=p.get("credentialArn"),
            custom_role_arn=p.get("customRoleArn"),
            upstream_repository_prefix=p.get("upstreamRepositoryPrefix"),
        )
    )


def describe_pull_through_cache_rules(self: ECRResponse) -> ActionResult:
    p = _request(self, "DescribePullThroughCacheRules")
    rules, token = _backend(self).describe_pull_through_cache_rules(
        ecr_repository_prefixes=p.get("ecrRepositoryPrefixes"),
        max_results=p.get("maxResults"),
        next_token=p.get("nextToken"),
    )
    out: dict[str, Any] = {"pullThroughCacheRules": rules}
    if token:
        out["nextToken"] = token
    return ActionResult(out)


def update_pull_through_cache_rule(self: ECRResponse) -> ActionResult:
    p = _request(self, "UpdatePullThroughCacheRule")
    return ActionResult(
        _backend(self).update_pull_through_cache_rule(
            ecr_repository_prefix=p["ecrRepositoryPrefix"],
            credential_arn=p.get("credentialArn"),
            custom_role_arn=p.get("customRoleArn"),
        )
    )


def delete_pull_through_cache_rule(self: ECRResponse) -> ActionResult:
    p = _request(self, "DeletePullThroughCacheRule")
    return ActionResult(_backend(self).delete_pull_through_cache_rule(p["ecrRepositoryPrefix"]))


def validate_pull_through_cache_rule(self: ECRResponse) -> ActionResult:
    p = _request(self, "ValidatePullThroughCacheRule")
    return ActionResult(_backend(self).validate_pull_through_cache_rule(p["ecrRepositoryPrefix"]))


def create_repository_creation_template(self: ECRResponse) -> ActionResult:
    p = _request(self, "CreateRepositoryCreationTemplate")
    return ActionResult(_backend(self).create_repository_creation_template(p))


def describe_repository_creation_templates(self: ECRResponse) -> ActionResult:
    p = _request(self, "DescribeRepositoryCreationTemplates")
    return ActionResult(
        _backend(self).describe_repository_creation_templates(
            prefixes=p.get("prefixes"), max_results=p.get("maxResults"), next_token=p.get("nextToken")
        )
    )


def update_repository_creation_template(self: ECRResponse) -> ActionResult:
    p = _request(self, "UpdateRepositoryCreationTemplate")
    return ActionResult(_backend(self).update_repository_creation_template(p))


def delete_repository_creation_template(self: ECRResponse) -> ActionResult:
    p = _request(self, "DeleteRepositoryCreationTemplate")
    return ActionResult(_backend(self).delete_repository_creation_template(p["prefix"]))


def describe_repositories(self: ECRResponse) -> ActionResult:
    """moto answers every repository at once; ECR pages them (``maxResults`` 1 to 1,000, 100 by default, and
    ``nextToken``) unless ``repositoryNames`` is given. Paging here keeps callers' pagination honest."""
    p = _request(self, "DescribeRepositories")
    repositories = _backend(self).describe_repositories(
        registry_id=p.get("registryId"), repository_names=p.get("repositoryNames")
    )
    if p.get("repositoryNames"):
        return ActionResult({"repositories": repositories, "failures": []})
    page, token = paginate(repositories, lambda repository: repository.name, p.get("maxResults"), p.get("nextToken"))
    out: dict[str, Any] = {"repositories": page}
    if token:
        out["nextToken"] = token
    return ActionResult(out)


#: Functions attached to ``ECRResponse`` by ``install()``.
RESPONSE_METHODS = {
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
        describe_repositories,
    )
}


def wrap_call_action(original: Callable[[ECRResponse], Any]) -> Callable[[ECRResponse], Any]:
    """Wrap ``ECRResponse.call_action`` so every ECR operation (native or ours) honours faults.

    An injected fault is answered directly in the awsJson1.1 error format (``__type`` + ``message``
    with the fault's HTTP status), so codes absent from the ECR model, like
    ``ThrottlingException``, reach botocore exactly as the real service sends them.
    """

    def call_action(self: ECRResponse) -> Any:
        fault = faults.on_request(self._get_action())
        if fault is None:
            return original(self)
        headers = dict(self.response_headers)
        headers.update(
            {
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amzn-Errortype": fault.code,
                "status": str(fault.status),
            }
        )
        body = json.dumps({"__type": fault.code, "message": fault.message})
        return fault.status, headers, body

    call_action.__wrapped__ = original  # type: ignore[attr-defined]
    call_action._moto_ecr_ext = True  # type: ignore[attr-defined]
    return call_action
